"""Fine-tune a small transformer: the code that project.ipynb and job.sh share.

No weights or data are downloaded: ``pretrain`` trains a tiny transformer on next-token prediction
over generated token sequences (it stands in for a pretrained model), and ``finetune`` puts a
classification head on it and trains it on a small labelled set. The data is generated once into
``data/`` (replace it with your own: see README.md). Run ``python train.py --help``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    """Sizes of one run; ``Config.smoke()`` is a quick run on a CPU."""

    vocab: int = 32
    seq_len: int = 32
    d_model: int = 128
    heads: int = 4
    layers: int = 4
    pretrain_steps: int = 1500
    finetune_steps: int = 600
    batch_size: int = 64
    lr: float = 1e-3
    n_unlabelled: int = 20000
    n_labelled: int = 2000
    seed: int = 0

    @classmethod
    def smoke(cls) -> "Config":
        return cls(seq_len=24, d_model=32, heads=2, layers=1, pretrain_steps=60, finetune_steps=80,
                   n_unlabelled=1000, n_labelled=400)


class TinyTransformer(nn.Module):
    """A causal transformer encoder: token and position embeddings, ``layers`` blocks, an LM head."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, 4 * cfg.d_model, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        mask = torch.triu(torch.full((n, n), float("-inf"), device=x.device), diagonal=1)
        return self.blocks(self.tok(x) + self.pos(torch.arange(n, device=x.device)), mask=mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.hidden(x))


class Classifier(nn.Module):
    """The (pre)trained transformer with a linear head on its mean hidden state."""

    def __init__(self, base: TinyTransformer, classes: int) -> None:
        super().__init__()
        self.base = base
        self.head = nn.Linear(base.lm_head.in_features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.base.hidden(x).mean(dim=1))


def _chain(vocab: int, rng: np.random.Generator) -> np.ndarray:
    """A random Markov chain over the vocabulary whose rows favour a few next tokens (a 'style')."""
    logits = rng.normal(size=(vocab, vocab)) * 3.0
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def make_data(cfg: Config, data_dir: Path) -> dict[str, np.ndarray]:
    """Generated token sequences of two 'styles': unlabelled for pretraining, labelled (style 0/1) for fine-tuning.

    Written to ``data/sequences.npz`` on the first run and read from there afterwards, so the
    notebook and the batch job train on the same data (delete the file to generate it again). A file
    you put there yourself is never overwritten.
    """
    path = Path(data_dir) / "sequences.npz"
    if path.exists():
        data = dict(np.load(path, allow_pickle=False))
        fits = data["unlabelled"].shape[1] == cfg.seq_len and len(data["unlabelled"]) >= cfg.n_unlabelled
        if fits:
            return data
        if "generated" not in data:  # your data: never overwritten, so say what does not fit
            raise ValueError(f"{path}: sequences of length {data['unlabelled'].shape[1]} (Config.seq_len is {cfg.seq_len}) "
                             f"and {len(data['unlabelled'])} unlabelled (Config.n_unlabelled is {cfg.n_unlabelled})")
    rng = np.random.default_rng(cfg.seed)
    chains = [_chain(cfg.vocab, rng), _chain(cfg.vocab, rng)]

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 2, size=n)
        seqs = np.empty((n, cfg.seq_len), dtype=np.int64)
        seqs[:, 0] = rng.integers(0, cfg.vocab, size=n)
        for t in range(1, cfg.seq_len):
            for style in (0, 1):
                rows = labels == style
                p = chains[style][seqs[rows, t - 1]]
                seqs[rows, t] = (p.cumsum(1) > rng.random((rows.sum(), 1))).argmax(1)
        return seqs, labels

    unlabelled, _ = sample(cfg.n_unlabelled)
    seqs, labels = sample(cfg.n_labelled)
    # "generated" marks data this function made, which a bigger run may make again.
    data = {"unlabelled": unlabelled, "sequences": seqs, "labels": labels, "generated": np.array(True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    return data


def _batches(n: int, size: int, steps: int, gen: torch.Generator):
    for _ in range(steps):
        yield torch.randint(0, n, (size,), generator=gen)


def pretrain(cfg: Config, data: dict, device: str, log=print) -> tuple[TinyTransformer, list[float]]:
    """Next-token training on the unlabelled sequences (a stand-in for downloading pretrained weights)."""
    torch.manual_seed(cfg.seed)
    model = TinyTransformer(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    x_all = torch.as_tensor(data["unlabelled"][: cfg.n_unlabelled])
    losses = []
    gen = torch.Generator().manual_seed(cfg.seed)
    for step, idx in enumerate(_batches(len(x_all), cfg.batch_size, cfg.pretrain_steps, gen), 1):
        x = x_all[idx].to(device)
        loss = F.cross_entropy(model(x[:, :-1]).reshape(-1, cfg.vocab), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % max(1, cfg.pretrain_steps // 5) == 0:
            log(f"pretrain step {step}/{cfg.pretrain_steps} loss {np.mean(losses[-20:]):.3f}")
    return model, losses


def finetune(cfg: Config, base: TinyTransformer, data: dict, device: str, log=print) -> tuple[Classifier, dict]:
    """Train a classification head (and the base, at a lower rate) on 80% of the labelled set; score the rest."""
    torch.manual_seed(cfg.seed)
    x_all, y_all = torch.as_tensor(data["sequences"][: cfg.n_labelled]), torch.as_tensor(data["labels"][: cfg.n_labelled])
    split = int(0.8 * len(x_all))
    model = Classifier(base, 2).to(device)
    opt = torch.optim.AdamW([{"params": model.base.parameters(), "lr": cfg.lr / 3},
                             {"params": model.head.parameters(), "lr": cfg.lr * 3}])
    losses = []
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    model.train()
    for step, idx in enumerate(_batches(split, cfg.batch_size, cfg.finetune_steps, gen), 1):
        loss = F.cross_entropy(model(x_all[idx].to(device)), y_all[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % max(1, cfg.finetune_steps // 5) == 0:
            log(f"finetune step {step}/{cfg.finetune_steps} loss {np.mean(losses[-20:]):.3f}")
    model.eval()
    with torch.no_grad():
        predicted = model(x_all[split:].to(device)).argmax(1).cpu()
    accuracy = float((predicted == y_all[split:]).float().mean())
    return model, {"accuracy": accuracy, "finetune_losses": losses, "test_size": len(x_all) - split}


def run(cfg: Config, data_dir: Path = Path("data"), device: str = "cpu", out: Path | None = None, log=print) -> dict:
    """Generate or read the data, pretrain, fine-tune, and write the result (JSON) and weights beside ``out``."""
    start = time.perf_counter()
    data = make_data(cfg, data_dir)
    base, pre_losses = pretrain(cfg, data, device, log)
    model, scores = finetune(cfg, base, data, device, log)
    result = {"accuracy": scores["accuracy"], "test_size": scores["test_size"],
              "pretrain_loss_first": pre_losses[0], "pretrain_loss_last": float(np.mean(pre_losses[-10:])),
              "finetune_loss_last": float(np.mean(scores["finetune_losses"][-10:])),
              "seconds": round(time.perf_counter() - start, 2), "device": device, "config": asdict(cfg)}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        torch.save(model.state_dict(), out.with_suffix(".pt"))
    log(f"accuracy {result['accuracy']:.3f} on {result['test_size']} held-out sequences")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a quick, small run (for a test)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    parser.add_argument("--data", type=Path, default=Path("data"), help="the data folder (default: data)")
    parser.add_argument("--out", type=Path, default=Path("results/result.json"), help="the result file (JSON)")
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    return run(Config.smoke() if args.smoke else Config(), args.data, device, args.out, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
