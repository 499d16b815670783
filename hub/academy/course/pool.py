"""The local backend: run worker jobs N at a time in forked processes, each under a hard deadline.

Processes come from a ``forkserver`` that has already imported nbgrader, nbconvert and the worker, so a
job starts in milliseconds instead of paying Python's import cost per submission (the serial baseline
pays it once).  Each job is its own process and session: when its deadline passes the whole process
group is killed (the sandboxed kernel follows through bubblewrap's ``--die-with-parent``) and the job is
reported as timed out; no other job is disturbed and the pool keeps going.  Results travel through the
job's ``result.json`` rather than a pipe, so a killed job cannot leave a half-read message behind.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Iterable, Iterator

from .worker import JobSpec, run_job

_PRELOAD = ["academy.course.worker"]


@dataclass(frozen=True)
class JobOutcome:
    """How a job's process ended; the worker's own verdict is in its result.json."""

    spec: JobSpec
    exitcode: int | None
    timed_out: bool
    seconds: float


def _child(spec: JobSpec) -> None:
    os.setsid()  # own process group, so a deadline kill takes the job and nothing else
    result = run_job(spec)
    os._exit(0 if result.status == "graded" else 1)


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def run_local(specs: Iterable[JobSpec], jobs: int, deadline_s: float) -> Iterator[JobOutcome]:
    """Yield each job's outcome as soon as it ends, keeping at most ``jobs`` running."""
    if jobs < 1:
        raise ValueError("--jobs must be at least 1")
    ctx = _context()
    pending = list(specs)
    running: dict[int, tuple] = {}  # sentinel -> (process, spec, started)
    try:
        while pending or running:
            _fill(ctx, pending, running, jobs)
            nearest = min(started + deadline_s for _, _, started in running.values())
            ready = wait(list(running), timeout=max(0.0, nearest - time.monotonic()))
            now = time.monotonic()
            finished = []
            for sentinel in list(running):
                proc, spec, started = running[sentinel]
                timed_out = sentinel not in ready and now >= started + deadline_s
                if sentinel not in ready and not timed_out:
                    continue
                if timed_out:
                    _kill_group(proc.pid)
                    proc.kill()  # in case the deadline hit before the child made its own group
                proc.join()
                del running[sentinel]
                finished.append(JobOutcome(spec=spec, exitcode=proc.exitcode, timed_out=timed_out,
                                           seconds=round(now - started, 3)))
            # Refill the free slots before handing results over: the caller's merge then overlaps grading.
            _fill(ctx, pending, running, jobs)
            yield from finished
    finally:
        for proc, _, _ in running.values():
            _kill_group(proc.pid)
            proc.kill()
            proc.join()


def _fill(ctx, pending: list[JobSpec], running: dict, jobs: int) -> None:
    while pending and len(running) < jobs:
        spec = pending.pop(0)
        proc = ctx.Process(target=_child, args=(spec,), name=f"grade-{spec.student}")
        proc.start()
        running[proc.sentinel] = (proc, spec, time.monotonic())


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
