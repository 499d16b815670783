"""Lesson 12's training script: a small regression MLP trained with DistributedDataParallel, run by ``python`` or ``torchrun``.

Standalone on purpose (only torch and the standard library), so it can be copied next to a batch
script and run on any node:

    python n12_ddp_train.py --steps 200 --out result.json                      # one process
    torchrun --standalone --nproc_per_node=2 n12_ddp_train.py --out r.json      # data-parallel

Backend ``auto`` picks NCCL with one GPU per process when there are enough GPUs, else gloo on CPU.
Rank 0 writes a JSON result: losses, the largest weight difference between ranks, timings.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

N_FEATURES = 8


def make_data(n_samples: int, seed: int = 0) -> TensorDataset:
    """A fixed synthetic regression task: every rank builds the same data and takes its own shard."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, N_FEATURES, generator=g)
    w = torch.linspace(-1.0, 1.0, N_FEATURES)
    y = torch.sin(x @ w).unsqueeze(1) + 0.5 * x[:, :1] * x[:, 1:2] + 0.05 * torch.randn(n_samples, 1, generator=g)
    return TensorDataset(x, y)


class TinyMLP(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=_positive(int), default=200, help="optimiser steps per process")
    p.add_argument("--batch-size", type=_positive(int), default=64, help="samples per step per process")
    p.add_argument("--lr", type=_positive(float), default=3e-3, help="Adam learning rate")
    p.add_argument("--hidden", type=_positive(int), default=64, help="hidden layer width")
    p.add_argument("--samples", type=_positive(int), default=4096, help="size of the synthetic data set")
    p.add_argument("--seed", type=int, default=0, help="seed for data and initial weights")
    p.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto", help="process-group backend")
    p.add_argument("--out", type=Path, default=Path("result.json"), help="where rank 0 writes the JSON result")
    p.add_argument("--checkpoint", type=Path, default=None, help="save here at the end; resume from it when it exists")
    p.add_argument("--log-every", type=_positive(int), default=50, help="print the loss every N steps")
    return p.parse_args(argv)


def setup(backend: str) -> tuple[int, int, torch.device, str]:
    """(rank, world size, device, backend); a plain ``python`` run is a world of one without a process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    enough_gpus = torch.cuda.is_available() and torch.cuda.device_count() >= local_world
    if backend == "auto":
        backend = "nccl" if enough_gpus else "gloo"
    if backend == "nccl" and not enough_gpus:
        raise SystemExit(f"nccl needs one GPU per process: {local_world} processes, "
                         f"{torch.cuda.device_count() if torch.cuda.is_available() else 0} GPUs visible")
    device = torch.device(f"cuda:{local_rank}") if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group(backend=backend)
        return dist.get_rank(), world, device, backend
    return 0, 1, device, backend


def _mean_over_ranks(value: float, world: int, device: torch.device) -> float:
    if world == 1:
        return value
    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world


def _max_weight_difference(model: nn.Module, world: int) -> float:
    """Gather every rank's flattened weights and compare: DDP promises they stay identical."""
    flat = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    if world == 1:
        return 0.0
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    return float(max((c - copies[0]).abs().max().item() for c in copies))


def train(args: argparse.Namespace) -> dict:
    rank, world, device, backend = setup(args.backend)
    start = time.perf_counter()
    torch.manual_seed(args.seed)  # same initial weights everywhere; DDP also broadcasts rank 0's
    data = make_data(args.samples, args.seed)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=args.seed, drop_last=True)
    loader = DataLoader(data, batch_size=args.batch_size, sampler=sampler, drop_last=True)
    if len(loader) == 0:
        raise SystemExit(f"--samples {args.samples} is too small for {world} processes x batch {args.batch_size}")
    model = TinyMLP(args.hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    if args.checkpoint is not None and args.checkpoint.exists():
        state = torch.load(args.checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        if rank == 0:
            print(f"resumed from {args.checkpoint} at step {step}", flush=True)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if world > 1 else model

    losses: list[float] = []
    epoch = 0
    while step < args.steps:
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        for x, y in loader:
            if step >= args.steps:
                break
            loss = F.mse_loss(ddp(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # DDP averages the gradients of all ranks here
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if rank == 0 and (step % args.log_every == 0 or step == args.steps):
                print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
        epoch += 1

    window = max(1, min(10, len(losses) // 4))
    first = _mean_over_ranks(sum(losses[:window]) / window, world, device) if losses else float("nan")
    last = _mean_over_ranks(sum(losses[-window:]) / window, world, device) if losses else float("nan")
    max_diff = _max_weight_difference(model, world)
    result = {
        "world_size": world, "backend": backend, "device": str(device), "steps": step, "steps_this_run": len(losses),
        "first_loss": first, "last_loss": last, "max_weight_diff": max_diff,
        "samples_per_rank_per_epoch": len(sampler), "seconds": time.perf_counter() - start,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "host": os.uname().nodename,
    }
    if rank == 0:
        if args.checkpoint is not None:
            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, args.checkpoint)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"done: {world} process(es), {backend} on {device}; loss {first:.4f} -> {last:.4f}; "
              f"max weight difference between ranks {max_diff:g}", flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def main(argv: list[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # gloo on CPU sometimes aborts in its C++ teardown after a clean finish ("terminate called
        # without an active exception"), which torchrun reports as a failed rank. Everything is
        # written and the group is destroyed by now, so leave without running those destructors.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
