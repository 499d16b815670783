"""Per-learner CPU and memory limits for the local backend, through the kernel's cgroups (v1 or v2).

Under Slurm a profile's cores and memory are the job's allocation.  On the local backend nothing held a
learner to them, so one runaway notebook could starve or OOM the whole workshop machine.  When the hub
runs as root and the cgroup controllers are writable, each learner's server, and everything it starts,
runs in ``academy/<account>`` with the profile's memory limit and CPU quota; the kernel's OOM killer
then stops that learner's biggest process, not someone else's.  Stopping the server ends whatever is
still in the group, as the end of a Slurm job does.  Elsewhere (no root, read-only cgroups) limits are
skipped and the spawn form says they are not enforced.
"""
from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "academy"
CPU_PERIOD_US = 100_000
# The kernel's default CPU weights: cgroup v1's cpu.shares and v2's cpu.weight.
V1_SHARES, V2_WEIGHT = 1024, 100
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Limits:
    """What one learner's server may use."""

    memory_bytes: int
    cpus: float


def parse_memory(text: str) -> int:
    """Bytes in a profile's memory field ("16G"; binary units, as Slurm reads them)."""
    match = re.fullmatch(r"([1-9][0-9]*)([KMGT])", text.strip())
    if not match:
        raise ValueError(f"memory {text!r}: expected a number with a K, M, G or T suffix")
    return int(match.group(1)) * _UNITS[match.group(2)]


def machine_memory() -> int:
    """Bytes of physical memory on this machine: more than this as a limit would promise what is not there."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def machine_cpus() -> int:
    """Cores the hub (and so every server it starts) may run on: a CPU quota beyond them holds nothing back."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Machine:
    """What this machine has, against which the local backend caps a profile's limits."""

    memory_bytes: int
    cpus: int


def this_machine() -> Machine:
    return Machine(machine_memory(), machine_cpus())


def capped(limits: Limits, memory_bytes: int, cpus: int | None = None) -> Limits:
    """``limits`` with memory at most ``memory_bytes`` and cores at most ``cpus`` (what the machine has)."""
    return Limits(min(limits.memory_bytes, memory_bytes), limits.cpus if cpus is None else float(min(limits.cpus, cpus)))


def shortfall(memory: str, cpus: float, machine: Machine) -> str | None:
    """What a profile asks beyond ``machine``, in the words of the form and doctor; None when it fits.

    "128 GiB asked, this machine has 23 GiB: capped": the learner reads what they will really get.
    """
    parts = []
    if parse_memory(memory) > machine.memory_bytes:
        parts.append(f"{gib(parse_memory(memory))} asked, this machine has {gib(machine.memory_bytes)}: capped")
    if cpus > machine.cpus:
        parts.append(f"{cpus:g} cores asked, this machine has {machine.cpus}: capped")
    return "; ".join(parts) or None


def gib(n_bytes: int) -> str:
    """Bytes as the GiB a learner reads on the form ("23 GiB", "23.4 GiB").

    Rounded down: a machine with 23.96 GiB must not be said to have the 24 GiB a profile asks.
    """
    tenths = n_bytes * 10 // 1024**3
    return f"{tenths // 10} GiB" if tenths % 10 == 0 else f"{tenths / 10:.1f} GiB"


def version(root: Path = ROOT) -> str | None:
    """"v2", "v1" or None, whichever this process can use to limit memory and CPU."""
    if os.geteuid() != 0:
        return None
    if (root / "cgroup.controllers").exists():
        wanted = {"memory", "cpu"}
        return "v2" if wanted <= set((root / "cgroup.controllers").read_text().split()) and os.access(
            root, os.W_OK) else None
    if all((root / c / "cgroup.procs").exists() and os.access(root / c, os.W_OK) for c in ("memory", "cpu")):
        return "v1"
    return None


def _let_owner_read(parent: Path, group: Path) -> None:
    """The learner's server reads its own limits and use (academy.labtools), as a Slurm job can.

    The hub runs with umask 077, which would leave the groups root-only; others may traverse the
    parent but not list who else has a group.
    """
    os.chmod(parent, 0o711)
    os.chmod(group, 0o755)


class UserGroup:
    """The cgroup(s) of one learner: created with limits, joined by the server, emptied on stop."""

    def __init__(self, account: str, root: Path = ROOT, kind: str | None = None):
        if not _NAME_RE.match(account):
            raise ValueError(f"{account!r} is not a Unix account name")
        self.kind = kind or version(root)
        if self.kind is None:
            raise OSError("no writable memory and cpu cgroup controllers (needs root)")
        if self.kind == "v2":
            self.dirs = [root / PARENT / account]
            self._v2_root = root
        else:
            self.dirs = [root / "memory" / PARENT / account, root / "cpu" / PARENT / account]

    def apply(self, limits: Limits) -> None:
        if self.kind == "v2":
            for path, controllers in ((self._v2_root, "+memory +cpu"), (self._v2_root / PARENT, "+memory +cpu")):
                path.mkdir(exist_ok=True)
                (path / "cgroup.subtree_control").write_text(controllers)
            group = self.dirs[0]
            group.mkdir(exist_ok=True)
            _let_owner_read(self._v2_root / PARENT, group)
            (group / "memory.max").write_text(str(limits.memory_bytes))
            (group / "cpu.max").write_text(f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
            return
        memory, cpu = self.dirs
        for group in (memory, cpu):
            group.mkdir(parents=True, exist_ok=True)
            _let_owner_read(group.parent, group)
        (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
        (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * CPU_PERIOD_US)))

    def weigh(self, factor: int) -> None:
        """Weight this group's claim on busy cores ``factor`` times the default (1: back to normal).

        When a class starts at once, the servers that already run keep every core busy with their
        kernels, and a starting server, one group among many of equal weight, gets a sliver of a core
        for its seconds of imports: a start then takes minutes.  Weighted up while it starts, it gets
        the cores it needs sooner; a weight only matters when cores are contended, and it caps nothing.
        """
        if factor < 1:
            raise ValueError("a CPU weight factor is at least 1")
        if self.kind == "v2":
            (self.dirs[0] / "cpu.weight").write_text(str(min(V2_WEIGHT * factor, 10_000)))
        else:
            (self.dirs[1] / "cpu.shares").write_text(str(V1_SHARES * factor))

    def join(self, pid: int | None = None) -> None:
        """Move ``pid`` (default: the calling process, e.g. from a preexec_fn) into every group."""
        for group in self.dirs:
            (group / "cgroup.procs").write_text(str(pid or os.getpid()))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for group in self.dirs:
            try:
                found.update(int(p) for p in (group / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
        return sorted(found)

    def end(self, timeout: float = 5.0) -> list[int]:
        """SIGKILL everything still in the group, then remove it; returns the pids that were left."""
        left = self.pids()
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for group in self.dirs:
            try:
                group.rmdir()
            except OSError:  # still busy (a process in uninterruptible sleep): the next start reuses it
                pass
        return left
