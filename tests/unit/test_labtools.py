"""Session limits (spawner, Slurm allocation, cgroup) and the GPU sampler of the academy.labtools extension.

GPU figures here come from stand-ins (``support.gpus.StandInGpus``, and a fake ``pynvml`` module for the
NVML reader): this machine has no GPU, and a GPU's utilisation cannot be produced for real without one.
The stand-ins only replace NVML; the reader, sampler, energy accounting and busy tracking are production code.
"""
from __future__ import annotations

import json

from academy.labtools import limits
from academy.labtools.gpus import GpuSampler, load_source


def test_spawner_limits_win_then_slurm_allocation():
    """Are MEM_LIMIT/CPU_LIMIT used first, and otherwise the Slurm job's memory and cores?"""
    assert limits.session_limits({"MEM_LIMIT": "1024", "CPU_LIMIT": "2"}) == limits.SessionLimits(1024, 2.0)
    slurm = limits.session_limits({"SLURM_MEM_PER_NODE": "16384", "SLURM_CPUS_PER_TASK": "4"})
    assert slurm == limits.SessionLimits(16 * 1024**3, 4.0)
    per_cpu = limits.session_limits({"SLURM_MEM_PER_CPU": "2000", "SLURM_CPUS_PER_TASK": "3"})
    assert per_cpu.memory_bytes == 6000 * 1024**2


def test_cgroup_v1_and_v2_limits_are_read_from_the_servers_own_group(tmp_path, monkeypatch):
    """Without env limits, are the memory limit, use and CPU quota read from the cgroup the server is in?"""
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/academy/acad-ann\n1:cpu:/academy/acad-ann\n0::/\n")
    mem = tmp_path / "root/memory/academy/acad-ann"
    cpu = tmp_path / "root/cpu/academy/acad-ann"
    mem.mkdir(parents=True)
    cpu.mkdir(parents=True)
    (mem / "memory.limit_in_bytes").write_text("536870912\n")
    (mem / "memory.usage_in_bytes").write_text("1234\n")
    (cpu / "cpu.cfs_quota_us").write_text("150000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    real = limits._own_cgroup_dir
    monkeypatch.setattr(limits, "_own_cgroup_dir", lambda c: real(c, proc, tmp_path / "root"))
    assert limits.cgroup_memory() == (536870912, 1234)
    assert limits.session_limits({}) == limits.SessionLimits(536870912, 1.5)
    assert limits.memory_used_bytes() == 1234
    # cgroup v2: one unified group, "max" meaning unlimited
    proc.write_text("0::/academy/acad-bob\n")
    v2 = tmp_path / "root/academy/acad-bob"
    v2.mkdir(parents=True)
    (v2 / "memory.max").write_text("max\n")
    (v2 / "memory.current").write_text("99\n")
    (v2 / "cpu.max").write_text("200000 100000\n")
    assert limits.cgroup_memory() == (None, 99)
    assert limits.cgroup_cpus() == 2.0


def test_sampler_tracks_energy_since_start_and_last_busy_time(tmp_path, monkeypatch):
    """Does the sampler report energy used since the server started, and remember when a GPU was last busy?"""
    readings = tmp_path / "gpus.json"
    monkeypatch.setenv("ACADEMY_STANDIN_GPUS", str(readings))
    gpu = {"name": "Stand-in H100", "uuid": "GPU-1", "utilization_percent": 0, "memory_used_bytes": 10,
           "memory_total_bytes": 80, "energy_millijoules": 5000.0}
    readings.write_text(json.dumps([gpu]))
    now = [1000.0]
    sampler = GpuSampler(load_source("support.gpus.StandInGpus"), busy_percent=10, clock=lambda: now[0])
    sampler.sample()
    assert sampler.last_busy is None
    readings.write_text(json.dumps([{**gpu, "utilization_percent": 85, "energy_millijoules": 17500.0}]))
    now[0] = 1010.0
    sampler.sample()
    (view,) = sampler.as_json()
    assert view["energy_joules"] == 12.5 and view["utilization_percent"] == 85 and sampler.last_busy == 1010.0
    readings.write_text(json.dumps([{**gpu, "utilization_percent": 3}]))
    now[0] = 1020.0
    sampler.sample()
    assert sampler.last_busy == 1010.0, "an idle reading must not move the last busy time"


def test_a_mig_slice_shows_memory_but_no_utilisation_and_never_counts_as_busy(tmp_path, monkeypatch):
    """Does a MIG slice (NVML: memory only) report null utilisation and energy and leave GPU busy unset?"""
    readings = tmp_path / "gpus.json"
    monkeypatch.setenv("ACADEMY_STANDIN_GPUS", str(readings))
    readings.write_text(json.dumps([{"name": "MIG 1g.18gb", "uuid": "MIG-1", "utilization_percent": None,
                                     "memory_used_bytes": 5, "memory_total_bytes": 18, "energy_millijoules": None,
                                     "mig": True}]))
    sampler = GpuSampler(load_source("support.gpus.StandInGpus"), busy_percent=10)
    sampler.sample()
    (view,) = sampler.as_json()
    assert view["mig"] and view["utilization_percent"] is None and view["energy_joules"] is None
    assert sampler.last_busy is None


class _FakeNvml:
    """A stand-in for the pynvml module (no GPU here): two cards, the second in MIG mode with one slice."""

    class NVMLError(Exception):
        pass

    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(self):
        from types import SimpleNamespace as NS
        self.NS = NS

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("card", i)

    def nvmlDeviceGetMigMode(self, h):
        return (1, 1) if h == ("card", 1) else (0, 0)

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return 2

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, j):
        if j == 1:
            raise self.NVMLError("no such slice")
        return ("mig", h[1], j)

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100" if h[0] == "card" else "MIG 1g.18gb"

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h[1]}" if h[0] == "card" else f"MIG-{h[1]}-{h[2]}"

    def nvmlDeviceGetUtilizationRates(self, h):
        if h[0] == "mig":
            raise self.NVMLError("Not Supported")
        return self.NS(gpu=42)

    def nvmlDeviceGetMemoryInfo(self, h):
        return self.NS(used=1 << 30, total=80 << 30)

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return 123456


def test_nvml_source_lists_cards_and_mig_slices_and_honours_cuda_visible_devices(monkeypatch):
    """Does the NVML reader show a card with utilisation and energy, a MIG slice with memory only, and only the job's devices?"""
    import sys

    from academy.labtools.gpus import NvmlSource

    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    card, mig = NvmlSource().readings()
    assert (card.name, card.utilization_percent, card.energy_millijoules, card.mig) == ("NVIDIA H100", 42.0, 123456.0, False)
    assert (mig.uuid, mig.utilization_percent, mig.energy_millijoules, mig.mig) == ("MIG-1-0", None, None, True)
    assert mig.memory_total_bytes == 80 << 30
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-1-0")
    assert [r.uuid for r in NvmlSource().readings()] == ["MIG-1-0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # physical index on a node whose cards NVML all sees
    assert [r.uuid for r in NvmlSource().readings()] == ["GPU-0"]
