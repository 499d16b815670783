"""Batch job skeleton: the training script that project.ipynb runs step by step and job.sh runs unattended.

What makes a script fit for a batch job: parameters as command-line options, progress as log
lines, a checkpoint that the next job resumes from (a job that hits its time limit loses nothing),
and a JSON result to read afterwards. The model is a small network fitting a generated regression
task (``data/`` gets the data on the first run); swap in your own model and data loading.
Run ``python train.py --help``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_data(data_dir: Path, samples: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``data/regression.npz`` (x, y), generated there on the first run: y = sin(3·x₀) + x₁² + noise."""
    path = Path(data_dir) / "regression.npz"
    # Generated data (marked) is made again when a run needs more samples; a file of yours is never overwritten.
    if not path.exists() or ("generated" in np.load(path) and len(np.load(path)["x"]) < samples):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, size=(samples, 8)).astype(np.float32)
        y = (np.sin(3 * x[:, 0]) + x[:, 1] ** 2 + rng.normal(0, 0.05, samples)).astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=x, y=y, generated=np.array(True))
    data = np.load(path)
    return torch.as_tensor(data["x"][:samples]), torch.as_tensor(data["y"][:samples]).unsqueeze(1)


def make_model(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def train(steps: int, samples: int = 4096, hidden: int = 64, batch_size: int = 128, lr: float = 3e-3,
          data_dir: Path = Path("data"), checkpoint: Path | None = Path("results/checkpoint.pt"),
          out: Path | None = Path("results/result.json"), device: str = "cpu", log_every: int = 100, log=print) -> dict:
    """Train up to ``steps`` in total, resuming from ``checkpoint`` when it exists; write the result and checkpoint."""
    start = time.perf_counter()
    torch.manual_seed(0)
    x, y = load_data(data_dir, samples)
    model = make_model(hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step, losses = 0, []
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, losses = state["step"], state["losses"]
        log(f"resumed from {checkpoint} at step {step}")
    resumed_at = step
    gen = torch.Generator().manual_seed(step)
    while step < steps:
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        loss = F.mse_loss(model(x[idx].to(device)), y[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % log_every == 0 or step == steps:
            log(f"step {step}/{steps} loss {np.mean(losses[-log_every:]):.4f}")
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "losses": losses}, checkpoint)
    result = {"steps": step, "resumed_at": resumed_at, "loss_first": losses[0] if losses else None,
              "loss_last": float(np.mean(losses[-20:])) if losses else None,
              "seconds": round(time.perf_counter() - start, 2), "device": device}
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a quick, small run (for a test): 200 steps, 1024 samples")
    parser.add_argument("--steps", type=int, default=None, help="total training steps (default 5000; 200 with --smoke)")
    parser.add_argument("--samples", type=int, default=None, help="training samples (default 100000; 1024 with --smoke)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden layer width")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    parser.add_argument("--data", type=Path, default=Path("data"), help="the data folder (default: data)")
    parser.add_argument("--checkpoint", type=Path, default=Path("results/checkpoint.pt"), help="resume from / save to")
    parser.add_argument("--out", type=Path, default=Path("results/result.json"), help="the result file (JSON)")
    args = parser.parse_args(argv)
    steps = args.steps or (200 if args.smoke else 5000)
    samples = args.samples or (1024 if args.smoke else 100_000)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    return train(steps, samples, 32 if args.smoke else args.hidden, data_dir=args.data, checkpoint=args.checkpoint,
                 out=args.out, device=device, log_every=max(1, steps // 5), log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
