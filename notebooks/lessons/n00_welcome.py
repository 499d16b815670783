"""Lesson 00 support: describe the server a learner's notebook runs on, plus the lesson's exercises."""
from __future__ import annotations

import datetime as _dt
import getpass
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from academy.learn import exercise

NOTEBOOK = "00_welcome"
WALLTIME_ENV = "ACADEMY_WALLTIME_END"
# First match wins: the batch script's explicit scratch, then the site convention, then the job's TMPDIR.
SCRATCH_ENVS = ("ACADEMY_SCRATCH", "SCRATCH", "TMPDIR")
_SLURM_TIME = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$")


@dataclass
class StorageArea:
    """One place a learner can keep files, with its measured free space."""

    name: str
    path: Path
    total_gib: float | None
    free_gib: float | None
    advice: str

    @property
    def exists(self) -> bool:
        return self.total_gib is not None


@dataclass
class ServerInfo:
    """Where this notebook server runs: host, Slurm job, GPUs, time left and storage."""

    user: str
    hostname: str
    python: str
    slurm_job_id: str | None
    slurm_node: str | None
    cuda_visible_devices: str | None
    gpus: list[str] = field(default_factory=list)
    walltime_left_s: int | None = None
    walltime_source: str = "none"
    storage: list[StorageArea] = field(default_factory=list)

    @property
    def under_slurm(self) -> bool:
        return self.slurm_job_id is not None

    def summary(self) -> str:
        """A short human-readable description, one fact a line."""
        lines = [f"user        : {self.user}", f"host        : {self.hostname}", f"python      : {self.python}"]
        if self.under_slurm:
            lines.append(f"slurm job   : {self.slurm_job_id} on node {self.slurm_node or '?'}")
        else:
            lines.append("slurm job   : not running under Slurm (a laptop or a plain server)")
        cvd = self.cuda_visible_devices
        shown = "(unset)" if cvd is None else (cvd or "(empty: no GPU assigned to this job)")
        lines.append(f"CUDA_VISIBLE_DEVICES: {shown}")
        lines.append("GPUs        : " + (", ".join(self.gpus) if self.gpus else "none visible (CPU only)"))
        if self.walltime_left_s is None:
            lines.append("time left   : unknown" + ("" if self.under_slurm else " (not running under Slurm)"))
        else:
            lines.append(f"time left   : {format_duration(self.walltime_left_s)} (from {self.walltime_source})")
        for area in self.storage:
            if area.exists:
                lines.append(f"{area.name:<12}: {area.path}  {area.free_gib:.1f} GiB free of {area.total_gib:.1f} GiB")
            else:
                lines.append(f"{area.name:<12}: {area.path}  (not available here)")
        return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """``3725`` -> ``'1 h 02 min'``; short durations keep their seconds."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def parse_slurm_time(text: str) -> int | None:
    """Seconds in a Slurm ``%L`` time (``2-03:04:05``, ``1:00:00``, ``45:10``); None for UNLIMITED and the like."""
    match = _SLURM_TIME.match(text.strip())
    if not match:
        return None
    days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def walltime_left(env: Mapping[str, str] | None = None, now: float | None = None) -> tuple[int | None, str]:
    """Seconds until the job's walltime ends, and where that figure came from."""
    env = os.environ if env is None else env
    now = time.time() if now is None else now
    end = env.get(WALLTIME_ENV, "").strip()
    if end:
        try:
            return max(0, int(float(end) - now)), WALLTIME_ENV
        except ValueError:
            pass  # a malformed value must not break the welcome notebook; fall back to squeue
    job = env.get("SLURM_JOB_ID")
    if job and job.isdigit() and shutil.which("squeue"):
        try:
            done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None, "none"
        if done.returncode == 0:
            left = parse_slurm_time(done.stdout)
            if left is not None:
                return left, "squeue"
    return None, "none"


def visible_gpus() -> list[str]:
    """Names of the CUDA devices this process may use (what CUDA_VISIBLE_DEVICES leaves visible)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    names = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        names.append(f"cuda:{i} {props.name} ({props.total_memory / 2**30:.0f} GiB)")
    return names


def measure_storage(name: str, path: Path, advice: str) -> StorageArea:
    """Free and total space of the file system holding ``path``."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return StorageArea(name, path, None, None, advice)
    return StorageArea(name, path, usage.total / 2**30, usage.free / 2**30, advice)


def scratch_dir(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    for var in SCRATCH_ENVS:
        if env.get(var):
            return Path(env[var])
    return None


def storage_areas(env: Mapping[str, str] | None = None) -> list[StorageArea]:
    areas = [measure_storage("home", Path.home(), "small and backed up: notebooks, code, results")]
    scratch = scratch_dir(env)
    if scratch is not None:
        areas.append(measure_storage("scratch", scratch, "large and fast, not backed up: data sets, checkpoints"))
    return areas


def about_my_server(env: Mapping[str, str] | None = None) -> ServerInfo:
    """Everything lesson 00 tells a learner about their server; works with or without Slurm and GPUs."""
    env = os.environ if env is None else env
    left, source = walltime_left(env)
    return ServerInfo(
        user=env.get("JUPYTERHUB_USER") or env.get("USER") or getpass.getuser(),
        hostname=env.get("SLURMD_NODENAME") or socket.gethostname(),
        python=f"{platform.python_version()} ({sys.executable})",
        slurm_job_id=env.get("SLURM_JOB_ID") or None,
        slurm_node=env.get("SLURMD_NODENAME") or None,
        cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
        gpus=visible_gpus(),
        walltime_left_s=left,
        walltime_source=source,
        storage=storage_areas(env),
    )


def install_advice() -> str:
    """How to add a package from this kernel: ``%pip`` in the learner's own environment, else make one first.

    The shared environment is read-only and ``--user`` installs are invisible to its kernels, so the one
    way that works everywhere (hub machine and Slurm jobs alike) is an own environment (academy.envs).
    """
    own = Path(sys.prefix)
    if own.parent.name == "envs" and own.parent.parent.name == ".academy" and os.access(own, os.W_OK):
        return (f"%pip install PACKAGE   (this kernel runs in your own environment '{own.name}'; "
                "restart the kernel afterwards)")
    return ("this kernel uses the shared, read-only environment: make your own first with "
            "`academy env create myenv` in a terminal (or New environment in the Launcher), switch this "
            "notebook to the kernel 'Python (myenv)', then %pip install PACKAGE")


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "free_gib", title="Free space in GiB",
    hint="shutil.disk_usage(path) returns a named tuple with total, used and free, in bytes. One GiB is 2**30 bytes.",
    solution="```python\ndef free_gib(path):\n    return shutil.disk_usage(path).free / 2**30\n```",
)
def free_gib_exercise(fn) -> str:
    home = Path.home()
    got = fn(home)
    assert isinstance(got, (int, float)), f"free_gib should return a number, not {type(got).__name__}."
    usage = shutil.disk_usage(home)
    truth, used = usage.free / 2**30, usage.used / 2**30
    # Other kernels may write files meanwhile, so allow a little drift.
    if abs(got - truth) <= 0.02 * truth + 0.05:
        return f"Your home has {got:.1f} GiB free."
    assert got > 0, "Free space came out zero or negative: did you pick 'free' out of the result?"
    assert got < 1000 * max(truth, 1.0), "That looks like bytes: divide by 2**30 to get GiB."
    assert abs(got - truth * 2**30 / 1e9) > 0.02 * truth, "Close: that is GB (10**9 bytes). A GiB is 2**30 bytes."
    assert abs(got - used) > 0.02 * used + 0.05, "That is the used space; the question asks for the free space."
    raise AssertionError(f"Expected about {truth:.1f} GiB free in your home, got {got:.2f}.")


@exercise(
    NOTEBOOK, "hours_left", title="Hours of walltime left",
    hint="Subtract now from the end time (both in seconds since 1970), divide by 3600, and never return less than 0.",
    solution="```python\ndef hours_left(walltime_end, now):\n    return max(0.0, (walltime_end - now) / 3600)\n```",
)
def hours_left_exercise(fn) -> None:
    now = _dt.datetime(2025, 1, 1, 12, tzinfo=_dt.timezone.utc).timestamp()
    got = fn(now + 5400, now)
    assert isinstance(got, (int, float)), f"hours_left should return a number, not {type(got).__name__}."
    assert abs(got - 5400) > 1e-6, "That is still in seconds: there are 3600 seconds in an hour."
    assert abs(got - 90) > 1e-6, "That is minutes (90); the question asks for hours."
    if abs(got + 1.5) < 1e-6:
        raise AssertionError("The sign is flipped: subtract now from the end time, not the other way round.")
    assert abs(got - 1.5) < 1e-6, f"With 5400 s to go, expected 1.5 hours, got {got}."
    late = fn(now - 60, now)
    assert late == 0, f"When the walltime has already passed, return 0, not {late}: a job cannot have negative time."
