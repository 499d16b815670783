"""Per-submission limits: one cgroup per graded kernel for processes, memory and CPU, and how to explain a hit.

Rlimits belong to a process (``RLIMIT_AS``) or to a whole account (``RLIMIT_NPROC``): forked children
together could hold several times the memory limit, and one submission's fork bomb used up the grader
account's process limit, so a submission graded at the same time could not start its kernel.  Each
kernel therefore runs in its own cgroup (``academy/grade-<id>``, reusing :mod:`academy.spawners.local.cgroups`
for memory and CPU on cgroup v1 and v2, plus the ``pids`` controller here).  Memory-backed files
(``/tmp``, ``/dev/shm`` inside the sandbox are tmpfs) are charged to the memory cgroup of the process
that wrote them, so they count against the same limit.  When the kernel ends, :meth:`SubmissionGroup.end`
kills whatever is left in the group, removes it and returns the peaks, from which :func:`explain` makes
the line a student and trainer read ("hit its process limit: 256 of 256 processes").

Without writable cgroups (not root, e.g. Slurm tasks running as the student) nothing is created: the
rlimits of :mod:`academy.course.grading.sandbox` still apply, and under Slurm the job's own cgroup and the
student's own uid already make the limits per submission.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from academy.spawners.local import cgroups

MiB = 1024**2
#: The one size limit of a submission: ``submit`` refuses more, collect and the grader say the same.
SUBMISSION_MAX_FILES = 200
SUBMISSION_MAX_BYTES = 100 * MiB


def too_large(files: int, nbytes: int) -> str:
    """The message for a submission over the size limit, the same at submit, collect and grading."""
    return (f"submission too large: {files} files, {nbytes / MiB:.1f} MiB (at least); the limit is "
            f"{SUBMISSION_MAX_FILES} files and {SUBMISSION_MAX_BYTES // MiB} MiB in all; remove large "
            "embedded images or data files and submit again")


#: Name prefix of every grading cgroup under ``academy/`` (``grade-<run tag>-<id>``).
PREFIX = "grade-"


def leftover_groups(run_tag: str = "", root: Path = cgroups.ROOT) -> list[Path]:
    """Grading cgroups still present (of one run, or of any run when ``run_tag`` is empty)."""
    found = []
    for controller in ("", "memory", "cpu", "pids"):
        base = root / controller / cgroups.PARENT if controller else root / cgroups.PARENT
        if base.is_dir() and (controller or (root / "cgroup.controllers").exists()):
            found += sorted(p for p in base.glob(f"{PREFIX}{run_tag}*") if p.is_dir())
    return found


def remove_groups(run_tag: str, root: Path = cgroups.ROOT) -> None:
    """Kill whatever is left in one run's grading cgroups (a crashed worker's kernel) and remove them."""
    import signal
    import time
    for _ in range(50):
        groups = leftover_groups(run_tag, root)
        if not groups:
            return
        for group in groups:
            for pid in _read(group / "cgroup.procs").split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            try:
                group.rmdir()
            except OSError:
                pass
        time.sleep(0.05)


@dataclass
class Usage:
    """What a submission's cgroup saw, read just before it is removed."""

    memory_limit: int = 0
    memory_peak: int = 0
    memory_hits: int = 0  # times an allocation was refused or reclaimed at the limit
    oom_kills: int = 0
    pids_limit: int = 0
    pids_peak: int = 0
    pids_refused: int = 0  # forks refused at the limit

    def to_event(self) -> dict:
        return dict(asdict(self), event="cgroup_usage")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


class SubmissionGroup(cgroups.UserGroup):
    """The cgroup(s) of one graded kernel: memory and CPU through UserGroup, plus a process limit."""

    def __init__(self, run_tag: str = "", root: Path = cgroups.ROOT, kind: str | None = None):
        super().__init__(f"{PREFIX}{run_tag}-{uuid.uuid4().hex[:12]}", root, kind)
        name = self.dirs[0].name
        self.pids_dir = self.dirs[0] if self.kind == "v2" else root / "pids" / cgroups.PARENT / name

    @staticmethod
    def available(root: Path = cgroups.ROOT) -> bool:
        kind = cgroups.version(root)
        if kind == "v1":
            return os.access(root / "pids", os.W_OK)
        if kind == "v2":
            return "pids" in _read(root / "cgroup.controllers").split()
        return False

    def apply_submission(self, memory_bytes: int, max_processes: int, cpus: float) -> None:
        if self.kind == "v2":
            for path in (self._v2_root, self._v2_root / cgroups.PARENT):
                path.mkdir(exist_ok=True)
                (path / "cgroup.subtree_control").write_text("+memory +cpu +pids")
        self.apply(cgroups.Limits(memory_bytes, cpus))  # UserGroup knows the memory and cpu dirs only
        if self.kind == "v1":
            self.dirs.append(self.pids_dir)
            self.pids_dir.mkdir(parents=True, exist_ok=True)
            # Swap would let a submission hold more than its limit; count it where the kernel allows.
            memsw = self.dirs[0] / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                try:
                    memsw.write_text(str(memory_bytes))
                except OSError:
                    pass
        (self.pids_dir / "pids.max").write_text(str(max_processes))

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def usage(self) -> Usage:
        use = Usage()
        mem = self.dirs[0]
        if self.kind == "v2":
            use.memory_limit = _int(_read(mem / "memory.max"))
            use.memory_peak = _int(_read(mem / "memory.peak"))
            events = _keyed(_read(mem / "memory.events"))
            use.memory_hits, use.oom_kills = events.get("max", 0), events.get("oom_kill", 0)
        else:
            use.memory_limit = _int(_read(mem / "memory.limit_in_bytes"))
            use.memory_peak = _int(_read(mem / "memory.max_usage_in_bytes"))
            use.memory_hits = _int(_read(mem / "memory.failcnt"))
            use.oom_kills = _keyed(_read(mem / "memory.oom_control")).get("oom_kill", 0)
        use.pids_limit = _int(_read(self.pids_dir / "pids.max"))
        use.pids_peak = _int(_read(self.pids_dir / "pids.peak"))
        use.pids_refused = _keyed(_read(self.pids_dir / "pids.events")).get("max", 0)
        return use

    def end_with_usage(self) -> Usage:
        use = self.usage()
        self.end()
        return use


def explain(events: list[dict]) -> list[str]:
    """One line per limit a submission hit, naming the limit and what it used."""
    lines = []
    for e in events:
        if e.get("event") == "cgroup_usage":
            if e.get("oom_kills") or (e.get("memory_hits") and e.get("memory_peak", 0) >= 0.95 * e.get("memory_limit", 1)):
                lines.append(f"hit its memory limit of {e['memory_limit'] // MiB} MiB (used {e['memory_peak'] // MiB} MiB,"
                             f" files in /tmp and /dev/shm included)")
            if e.get("pids_refused"):
                peak = f"{e['pids_peak']} of " if e.get("pids_peak") else ""
                lines.append(f"hit its process limit: {peak}{e['pids_limit']} processes"
                             f" ({e['pids_refused']} process starts refused)")
        elif e.get("event") == "scratch_full":
            lines.append(f"hit its scratch space limit of {e['limit'] // MiB} MiB (a write failed: no space left)")
    return list(dict.fromkeys(lines))
