"""Per-GPU figures for the session from NVML (nvidia-ml-py), and a sampler that remembers GPU activity.

``NvmlSource`` reads what NVML can see from inside the job: whole cards, or, on a MIG-enabled card,
the MIG slices (NVML gives a slice's memory but no utilisation or energy, so those are ``None``).
When ``CUDA_VISIBLE_DEVICES`` names devices by UUID (Slurm does for MIG) or by physical index on a
node whose cards NVML all sees, only those are shown.
Energy is the card's counter now minus its value when this server started.

``GpuSampler`` reads the source every few seconds and keeps the last time any GPU was busy, which
the culler asks for (``academy/api/activity``): a server whose notebooks look idle but whose GPU is
busy (a training script in a terminal, a background thread) is kept.  Other sources (the stand-in
the tests use) are chosen by ``AcademyLabTools.gpu_source_class``; production uses NVML.
"""
from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass


@dataclass
class GpuReading:
    """One GPU (or MIG slice) as the resources API reports it."""

    index: int
    name: str
    uuid: str
    utilization_percent: float | None
    memory_used_bytes: int
    memory_total_bytes: int
    energy_millijoules: float | None
    mig: bool = False


class NvmlSource:
    """The real source: NVML through nvidia-ml-py."""

    def __init__(self) -> None:
        import pynvml

        self.nvml = pynvml
        pynvml.nvmlInit()

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def readings(self) -> list[GpuReading]:
        n = self.nvml
        out: list[GpuReading] = []
        wanted = {v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()}
        by_uuid = any(v.startswith(("GPU-", "MIG-")) for v in wanted)
        count = n.nvmlDeviceGetCount()
        # Without Slurm's device cgroup NVML sees the whole node and CUDA_VISIBLE_DEVICES holds the
        # job's physical indices; with it, NVML sees only the job's cards (renumbered from 0).
        by_index = bool(wanted) and all(v.isdigit() for v in wanted) and count > len(wanted)
        for i in range(count):
            if by_index and str(i) not in wanted:
                continue
            handle = n.nvmlDeviceGetHandleByIndex(i)
            mig_mode = self._call(n.nvmlDeviceGetMigMode, handle)
            if mig_mode and mig_mode[0] == n.NVML_DEVICE_MIG_ENABLE:
                for j in range(self._call(n.nvmlDeviceGetMaxMigDeviceCount, handle) or 0):
                    mig = self._call(n.nvmlDeviceGetMigDeviceHandleByIndex, handle, j)
                    if mig is not None:
                        out.append(self._reading(len(out), mig, mig=True))
            else:
                out.append(self._reading(len(out), handle, mig=False))
        if by_uuid:
            out = [r for r in out if r.uuid in wanted]
            for k, r in enumerate(out):
                r.index = k
        return out

    def _reading(self, index: int, handle, mig: bool) -> GpuReading:
        n = self.nvml
        name = self._call(n.nvmlDeviceGetName, handle) or "GPU"
        uuid = self._call(n.nvmlDeviceGetUUID, handle) or ""
        util = self._call(n.nvmlDeviceGetUtilizationRates, handle)
        mem = self._call(n.nvmlDeviceGetMemoryInfo, handle)
        energy = None if mig else self._call(n.nvmlDeviceGetTotalEnergyConsumption, handle)
        return GpuReading(
            index=index,
            name=name.decode() if isinstance(name, bytes) else str(name),
            uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
            utilization_percent=float(util.gpu) if util is not None else None,
            memory_used_bytes=int(mem.used) if mem is not None else 0,
            memory_total_bytes=int(mem.total) if mem is not None else 0,
            energy_millijoules=float(energy) if energy is not None else None,
            mig=mig,
        )


def load_source(spec: str):
    """``"nvml"`` or ``"module.Class"``; returns an object with ``readings()``, or raises why it cannot."""
    if spec in ("", "nvml"):
        return NvmlSource()
    module, _, cls = spec.rpartition(".")
    return getattr(importlib.import_module(module), cls)()


class GpuSampler:
    """Keeps the latest readings, energy since start, and the last time a GPU was busy."""

    def __init__(self, source, busy_percent: float, clock=time.time) -> None:
        self.source = source
        self.busy_percent = busy_percent
        self.clock = clock
        self.started = clock()
        self.latest: list[GpuReading] = []
        self.last_busy: float | None = None
        self._energy_start: dict[str, float] = {}
        self.error: str | None = None

    def sample(self) -> list[GpuReading]:
        try:
            self.latest = self.source.readings()
            self.error = None
        except Exception as exc:  # a driver hiccup must not take the server extension down
            self.error = f"GPU readings unavailable: {exc}"
            return self.latest
        for r in self.latest:
            if r.energy_millijoules is not None:
                self._energy_start.setdefault(r.uuid or str(r.index), r.energy_millijoules)
        if any(r.utilization_percent is not None and r.utilization_percent >= self.busy_percent for r in self.latest):
            self.last_busy = self.clock()
        return self.latest

    def energy_joules(self, r: GpuReading) -> float | None:
        if r.energy_millijoules is None:
            return None
        start = self._energy_start.get(r.uuid or str(r.index), r.energy_millijoules)
        return round((r.energy_millijoules - start) / 1000.0, 1)

    def as_json(self) -> list[dict]:
        return [
            {
                "index": r.index,
                "name": r.name,
                "utilization_percent": r.utilization_percent,
                "memory_used_bytes": r.memory_used_bytes,
                "memory_total_bytes": r.memory_total_bytes,
                "energy_joules": self.energy_joules(r),
                "mig": r.mig,
            }
            for r in self.latest
        ]
