"""The session's memory and CPU limits and memory use: the job's allocation or the server's own cgroup.

On the local backend the spawner exports ``MEM_LIMIT``/``CPU_LIMIT`` (the profile's cgroup limits);
under Slurm the job's allocation is in ``SLURM_MEM_PER_NODE``/``SLURM_MEM_PER_CPU`` and
``SLURM_CPUS_PER_TASK``.  Failing both, the cgroup the server runs in says what the kernel enforces.
jupyter-resource-usage is configured from :func:`session_limits` (hub/singleuser/jupyter_server_config.py),
so its status-bar figures and our ``academy/api/resources`` agree.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v1 reports "no limit" as a huge page-aligned number; anything above this is unlimited.
_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class SessionLimits:
    """What this session may use; ``None`` where nothing limits it."""

    memory_bytes: int | None
    cpus: float | None


def _own_cgroup_dir(controller: str, proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = CGROUP_ROOT) -> Path | None:
    """This process's cgroup directory for ``controller`` (v1), or its unified (v2) directory."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return root / controller / path.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            return root / line[3:].lstrip("/")
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max" or not text.lstrip("-").isdigit():
        return None
    value = int(text)
    return None if value <= 0 or value >= _UNLIMITED else value


def cgroup_memory() -> tuple[int | None, int | None]:
    """(limit, current use) in bytes of the memory cgroup this server runs in; None where unknown."""
    d = _own_cgroup_dir("memory")
    if d is None:
        return None, None
    v2_limit, v2_current = _read_int(d / "memory.max"), _read_int(d / "memory.current")
    if v2_limit is not None or v2_current is not None:
        return v2_limit, v2_current
    return _read_int(d / "memory.limit_in_bytes"), _read_int(d / "memory.usage_in_bytes")


def cgroup_cpus() -> float | None:
    d = _own_cgroup_dir("cpu")
    if d is None:
        return None
    try:
        quota, period = (d / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass  # not cgroup v2 (or not readable): try v1
    quota, period = _read_int(d / "cpu.cfs_quota_us"), _read_int(d / "cpu.cfs_period_us")
    return quota / period if quota and period else None


def _env_number(env: dict, name: str) -> float | None:
    try:
        value = float(env.get(name, "") or 0)
    except ValueError:
        return None
    return value if value > 0 else None


def session_limits(env: dict | None = None) -> SessionLimits:
    """The session's limits: spawner-exported, else the Slurm allocation, else the cgroup."""
    env = os.environ if env is None else env
    memory = _env_number(env, "MEM_LIMIT")
    cpus = _env_number(env, "CPU_LIMIT")
    if memory is None:
        per_node = _env_number(env, "SLURM_MEM_PER_NODE")  # MB, as Slurm exports it
        per_cpu = _env_number(env, "SLURM_MEM_PER_CPU")
        slurm_cpus = _env_number(env, "SLURM_CPUS_PER_TASK") or _env_number(env, "SLURM_CPUS_ON_NODE")
        if per_node:
            memory = per_node * 1024**2
        elif per_cpu and slurm_cpus:
            memory = per_cpu * slurm_cpus * 1024**2
    if cpus is None:
        cpus = _env_number(env, "SLURM_CPUS_PER_TASK") or _env_number(env, "SLURM_CPUS_ON_NODE")
    if memory is None:
        memory = cgroup_memory()[0]
    if cpus is None:
        cpus = cgroup_cpus()
    return SessionLimits(int(memory) if memory else None, cpus)


def memory_used_bytes() -> int:
    """Memory this session uses: the cgroup's count when the server has its own group, else the RSS of its tree.

    The cgroup figure is what the OOM killer compares with the limit (it includes page cache);
    the process-tree RSS is jupyter-resource-usage's own measure.
    """
    limit, current = cgroup_memory()
    if limit is not None and current is not None:
        return current
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


class CpuMeter:
    """CPU use of the server and its kernels in percent of one core (100 = one core busy).

    psutil measures CPU between two calls on the same ``Process`` object, so the objects are kept.
    """

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def percent(self) -> float:
        me = psutil.Process()
        current = [me, *me.children(recursive=True)]
        total = 0.0
        seen = {}
        for proc in current:
            known = self._procs.get(proc.pid, proc)
            seen[proc.pid] = known
            try:
                total += known.cpu_percent(interval=None)
            except psutil.Error:
                continue
        self._procs = seen
        return round(total, 1)
