"""Lesson 06 support: GPU peak table, synchronised matmul timing, a slow dataset for loader timing, and the exercises."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from academy.learn import exercise

NOTEBOOK = "06_gpu_computing"


@dataclass(frozen=True)
class GpuPeak:
    """A card's dense bf16 tensor-core peak from its datasheet (sparsity figures are twice these)."""

    match: str
    label: str
    bf16_dense_tflops: float


# Most specific first: "H100 PCIe" must win over "H100", "GH200" over "H200", "L40S" over "L4".
GPU_PEAKS = (
    GpuPeak("GH200", "GH200", 989.0),
    GpuPeak("H200 NVL", "H200 NVL", 835.0),
    GpuPeak("H200", "H200 SXM", 989.0),
    GpuPeak("H100 PCIe", "H100 PCIe", 756.0),
    GpuPeak("H100 NVL", "H100 NVL", 835.0),
    GpuPeak("H100", "H100 SXM", 989.0),
    GpuPeak("A100", "A100", 312.0),
    GpuPeak("L40S", "L40S", 362.0),
    GpuPeak("L4", "L4", 121.0),
)


def gpu_peak(device_name: str) -> GpuPeak | None:
    """The peak of the card named like ``torch.cuda.get_device_name()``, or None when it is not in the table."""
    upper = device_name.upper()
    for peak in GPU_PEAKS:
        if peak.match.upper() in upper:
            return peak
    return None


def sync(device: str) -> None:
    """Wait for queued GPU work: CUDA calls return before the kernel has run, so timings need this."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


@dataclass
class MatmulResult:
    """The best of several timed n×n matrix products."""

    n: int
    dtype: str
    device: str
    seconds: float
    tflops: float


def measure_matmul(n: int, dtype: torch.dtype = torch.float32, device: str = "cpu", repeats: int = 10,
                   warmup: int = 2, synchronize: bool = True, min_time_s: float = 0.05) -> MatmulResult:
    """Best time of ``a @ b`` for n×n matrices over at least ``repeats`` runs and ``min_time_s`` seconds.

    The best run is the least disturbed by other work on a shared node. ``synchronize=False``
    reproduces the classic mistake of timing a GPU without waiting for it.
    """
    if n < 1 or repeats < 1:
        raise ValueError(f"n and repeats must be positive, got n={n}, repeats={repeats}")
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    for _ in range(warmup):
        a @ b  # first calls pick kernels and allocate workspace: keep them out of the timing
    sync(device)
    best, runs, spent = float("inf"), 0, 0.0
    while runs < repeats or (spent < min_time_s and runs < 100 * repeats):
        start = time.perf_counter()
        a @ b
        if synchronize:
            sync(device)
        took = time.perf_counter() - start
        best, runs, spent = min(best, took), runs + 1, spent + took
    sync(device)
    return MatmulResult(n, str(dtype).removeprefix("torch."), str(device), best, 2 * n**3 / best / 1e12)


def copy_bandwidth(megabytes: int, pinned: bool, device: str, repeats: int = 5) -> float:
    """Host-to-device copy speed in GB/s; pinned (page-locked) host memory lets the GPU copy by DMA directly."""
    if not str(device).startswith("cuda"):
        raise ValueError("copy bandwidth is only meaningful towards a CUDA device")
    host = torch.empty(megabytes * 2**20, dtype=torch.uint8, pin_memory=pinned)
    host.to(device)
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        host.to(device, non_blocking=pinned)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return megabytes * 2**20 / best / 1e9


class SlowDataset(Dataset):
    """Items that take ``delay_s`` to "load", like images decoded from a network file system."""

    def __init__(self, n_items: int = 128, delay_s: float = 0.01, shape: tuple[int, ...] = (3, 64, 64)):
        if n_items < 1 or delay_s < 0:
            raise ValueError(f"need n_items >= 1 and delay_s >= 0, got {n_items}, {delay_s}")
        self.n_items, self.delay_s, self.shape = n_items, delay_s, shape

    def __len__(self) -> int:
        return self.n_items

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        time.sleep(self.delay_s)
        gen = torch.Generator().manual_seed(i)
        return torch.rand(self.shape, generator=gen), i % 10


class _Timed(Dataset):
    """A dataset whose items carry when their loading started and ended.

    ``time.monotonic`` reads CLOCK_MONOTONIC, which all processes share, so the times from
    different workers can be compared.
    """

    def __init__(self, inner: Dataset):
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        start = time.monotonic()
        item = self.inner[i]
        return item, torch.tensor([start, time.monotonic()], dtype=torch.float64)


def max_parallel(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an interval ending as another starts does not overlap it)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@dataclass
class LoaderResult:
    """One full pass over a dataset through a DataLoader, batches moved to the device.

    ``max_parallel_loads`` is how many items were loading at the same instant: it shows whether
    workers overlapped their waits, however busy the machine was, where ``seconds`` depends on it.
    """

    num_workers: int
    pin_memory: bool
    seconds: float
    items_per_s: float
    items: int = 0
    max_parallel_loads: int = 0


def loader_pass(dataset: Dataset, num_workers: int, pin_memory: bool = False, batch_size: int = 16,
                device: str = "cpu") -> LoaderResult:
    """Time one epoch of loading, including worker start-up, as a training loop would see it."""
    pin = pin_memory and str(device).startswith("cuda")  # pinning needs a GPU to copy to
    loader = DataLoader(_Timed(dataset), batch_size=batch_size, num_workers=num_workers, pin_memory=pin)
    intervals: list[tuple[float, float]] = []
    start = time.perf_counter()
    for (xb, _), times in loader:
        xb.to(device, non_blocking=pin)
        intervals.extend((float(a), float(b)) for a, b in times.tolist())
    sync(device)
    seconds = time.perf_counter() - start
    return LoaderResult(num_workers, pin, seconds, len(dataset) / seconds, len(intervals), max_parallel(intervals))


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "matmul_flops", title="Counting FLOPs",
    hint="Each of the n·m outputs of an (n, k) @ (k, m) product is a sum of k products: k multiplications and k additions.",
    solution="```python\ndef matmul_flops(n, k, m):\n    return 2 * n * k * m\n```",
)
def matmul_flops_exercise(fn) -> str:
    got = fn(3, 4, 5)
    assert got is not None, "matmul_flops returned None: did you forget to `return`?"
    assert got != 60, "That counts the multiplications only; every multiply comes with an add, so count 2 FLOPs each."
    assert got != 2 * 3 * 5, "The inner dimension k matters: each output needs k multiply-adds."
    assert got == 120, f"An (3, 4) @ (4, 5) product takes 120 FLOPs, got {got}."
    big = fn(8192, 8192, 8192)
    assert big == 2 * 8192**3, f"Right for (3, 4, 5) but 8192³ gives {big}: use all three sizes n, k and m."
    return f"An 8192³ product is {big / 1e12:.1f} TFLOP: about a millisecond on an H100."


@exercise(
    NOTEBOOK, "achieved_tflops", title="Throughput in TFLOP/s",
    hint="TFLOP/s = FLOPs / seconds / 1e12, and an n×n by n×n product takes 2·n³ FLOPs.",
    solution="```python\ndef achieved_tflops(n, seconds):\n    return 2 * n**3 / seconds / 1e12\n```",
)
def achieved_tflops_exercise(fn) -> None:
    got = fn(4096, 0.001)
    assert got is not None, "achieved_tflops returned None: did you forget to `return`?"
    want = 2 * 4096**3 / 0.001 / 1e12
    assert abs(got - want / 2) > 1e-6, "Half of the expected value: an n×n product takes 2·n³ FLOPs, not n³."
    assert abs(got - want * 1e3) > 1e-3, "That is GFLOP/s; divide by 1e12 for TFLOP/s."
    assert abs(got - 0.001 * 1e12 / 2 / 4096**3) > 1e-9, "Upside down: divide the FLOPs by the seconds."
    assert abs(got - want) < 1e-6 * want, f"4096³ matmul in 1 ms is {want:.1f} TFLOP/s, got {got}."


@exercise(
    NOTEBOOK, "autocast_matmul", title="Matmul under autocast",
    hint="Wrap the product in `with torch.autocast(device_type=device_type, dtype=torch.bfloat16):` and return a @ b; "
         "the inputs stay float32, autocast casts them for the matmul.",
    solution="```python\ndef bf16_matmul(a, b, device_type):\n    with torch.autocast(device_type=device_type, dtype=torch.bfloat16):\n"
             "        return a @ b\n```",
)
def autocast_matmul_exercise(fn) -> str:
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(64, 32, generator=gen), torch.randn(32, 16, generator=gen)
    got = fn(a.clone(), b.clone(), "cpu")
    assert isinstance(got, torch.Tensor), f"Return the product tensor, not {type(got).__name__}."
    assert got.shape == (64, 16), f"A (64, 32) @ (32, 16) product has shape (64, 16), got {tuple(got.shape)}."
    assert got.dtype == torch.bfloat16, f"The result is {got.dtype}: inside autocast with dtype=torch.bfloat16 a matmul returns bfloat16."
    rel = ((got.float() - a @ b).norm() / (a @ b).norm()).item()
    assert rel < 0.05, f"The bf16 result differs from float32 by {rel:.1%}; it should be within about 1 %."
    return f"bf16 result within {rel:.2%} of float32."
