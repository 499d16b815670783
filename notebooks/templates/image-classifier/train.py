"""Image classifier: the code that project.ipynb and job.sh share.

A small convolutional network learns to tell shapes apart in generated greyscale images. Put
your own images in ``data/images.npz`` (arrays ``images`` N×H×W in [0, 1], ``labels`` 0..K-1 and
``classes``, the class names) and the same code trains on them; without that file it is generated
once. Run ``python train.py --help``.
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

CLASSES = ("circle", "square", "triangle", "cross")


@dataclass
class Config:
    """Sizes of one run; ``Config.smoke()`` is a quick run on a CPU."""

    size: int = 32
    n_images: int = 8000
    epochs: int = 10
    batch_size: int = 128
    channels: int = 32
    lr: float = 5e-3
    seed: int = 0

    @classmethod
    def smoke(cls) -> "Config":
        return cls(size=16, n_images=800, epochs=6, batch_size=32, channels=16)


def _draw(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    cx, cy, r = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(0.35, 0.6)
    x, y = xx - cx, yy - cy
    if shape == "circle":
        img = (x**2 + y**2) < r**2
    elif shape == "square":
        img = (np.abs(x) < r * 0.8) & (np.abs(y) < r * 0.8)
    elif shape == "triangle":
        img = (y < r * 0.7) & (y > -r * 0.9 + 1.8 * np.abs(x))
    else:
        img = ((np.abs(x) < r * 0.25) | (np.abs(y) < r * 0.25)) & (np.abs(x) < r) & (np.abs(y) < r)
    return np.clip(img * rng.uniform(0.6, 1.0) + rng.normal(0, 0.15, (size, size)), 0, 1)


def load_data(cfg: Config, data_dir: Path) -> dict[str, np.ndarray]:
    """``data/images.npz`` when it is there (your images), else generated shapes written there first."""
    path = Path(data_dir) / "images.npz"
    if path.exists():
        data = dict(np.load(path, allow_pickle=False))
        # Generated data (marked) is made again when a bigger run needs more; yours is used as it is.
        if "generated" not in data or len(data["images"]) >= cfg.n_images:
            return data
    rng = np.random.default_rng(cfg.seed)
    labels = rng.integers(0, len(CLASSES), size=cfg.n_images)
    images = np.stack([_draw(CLASSES[k], cfg.size, rng) for k in labels]).astype(np.float32)
    data = {"images": images, "labels": labels, "classes": np.array(CLASSES), "generated": np.array(True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    return data


class SmallCNN(nn.Module):
    """Two convolution blocks, global average pooling, one linear layer."""

    def __init__(self, classes: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.head = nn.Linear(2 * channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.head(x.mean(dim=(2, 3)))


def run(cfg: Config, data_dir: Path = Path("data"), device: str = "cpu", out: Path | None = None, log=print) -> dict:
    """Train on 80% of the images, score the other 20%, and write the result (JSON) and weights beside ``out``."""
    start = time.perf_counter()
    data = load_data(cfg, data_dir)
    torch.manual_seed(cfg.seed)
    x = torch.as_tensor(data["images"], dtype=torch.float32).unsqueeze(1)
    y = torch.as_tensor(data["labels"], dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed))
    split = int(0.8 * len(x))
    train_idx, test_idx = order[:split], order[split:]
    model = SmallCNN(len(data["classes"]), cfg.channels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for batch in train_idx[torch.randperm(len(train_idx))].split(cfg.batch_size):
            loss = F.cross_entropy(model(x[batch].to(device)), y[batch].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        log(f"epoch {epoch}/{cfg.epochs} loss {np.mean(losses[-10:]):.3f}")
    model.eval()
    with torch.no_grad():
        predicted = model(x[test_idx].to(device)).argmax(1).cpu()
    truth = y[test_idx]
    k = len(data["classes"])
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((truth, predicted), torch.ones_like(truth), accumulate=True)
    result = {"accuracy": float((predicted == truth).float().mean()), "test_size": len(test_idx),
              "classes": [str(c) for c in data["classes"]], "confusion": confusion.tolist(),
              "loss_first": losses[0], "loss_last": float(np.mean(losses[-10:])),
              "seconds": round(time.perf_counter() - start, 2), "device": device, "config": asdict(cfg)}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        torch.save(model.state_dict(), out.with_suffix(".pt"))
    log(f"accuracy {result['accuracy']:.3f} on {result['test_size']} held-out images")
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
