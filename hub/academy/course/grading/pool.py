"""The local backend: N long-lived grading processes, each job under a hard deadline.

Workers come from a ``forkserver`` that has already imported nbgrader, nbconvert and the worker and paid
their first-use costs (:mod:`academy.course.grading.warm`); :func:`warm_up` starts that server before the parent
imports nbgrader itself, so the two imports (over a second each) run side by side on two cores.  Each
worker then grades one submission after another, as serial ``nbgrader autograde`` does in its single
process: a fresh fork per submission would pay copy-on-write page faults and warm-up again every time.
Student code never runs in a worker; it runs in the sandboxed kernel each job starts and stops.

Each worker is its own process session.  When a job's deadline passes, the parent kills that worker's
whole process group (the sandboxed kernel follows through bubblewrap's ``--die-with-parent``), reports
the job as timed out and starts a replacement worker; no other job is disturbed.  A worker is also
replaced after ``RECYCLE_AFTER`` jobs, so nothing a long batch leaks can pile up.  Results travel
through each job's ``result.json``; the pipe carries only "job done", so a killed worker cannot leave a
half-read result behind.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import wait
from typing import Callable, Iterable, Iterator

from academy.course.grading.jobs import JobSpec

_PRELOAD = ["academy.course.grading.worker", "academy.course.grading.warm"]

#: Jobs one worker process grades before it is replaced by a fresh one.
RECYCLE_AFTER = 50


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended from the pool's side; the worker's own verdict is in its result.json."""

    spec: JobSpec
    exitcode: int | None
    timed_out: bool
    seconds: float


def _serve(conn, runner: Callable | None = None) -> None:
    """Worker main loop: grade each spec received, answer with an exit-code-like status, stop on None."""
    os.setsid()  # own process group, so a deadline kill takes this worker and nothing else
    if runner is None:
        # already imported by the forkserver's preload: free here
        from academy.course.grading.worker import run_job as runner

    while True:
        try:
            spec = conn.recv()
        except EOFError:
            return
        if spec is None:
            return
        result = runner(spec)
        conn.send(0 if result.status == "graded" else 1)


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def warm_up() -> None:
    """Start the forkserver now; it imports and warms the worker in the background while the caller goes on."""
    _context()
    forkserver.ensure_running()


class _Worker:
    """One grading process and the job it is on, if any."""

    def __init__(self, ctx, number: int, runner: Callable | None):
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child_conn, runner), name=f"grader-{number}", daemon=True)
        self.proc.start()
        child_conn.close()
        self.spec: JobSpec | None = None
        self.started = 0.0
        self.done = 0

    def give(self, spec: JobSpec) -> None:
        self.spec, self.started = spec, time.monotonic()
        self.conn.send(spec)

    def finish(self) -> tuple[JobSpec, float]:
        spec, seconds = self.spec, round(time.monotonic() - self.started, 3)
        self.spec = None
        self.done += 1
        return spec, seconds

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.kill()  # in case it had not made its own group yet
        self.proc.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


def run_local(specs: Iterable[JobSpec], jobs: int, deadline_s: float,
              runner: Callable | None = None) -> Iterator[JobOutcome]:
    """Yield each job's outcome as soon as it ends, keeping at most ``jobs`` running.

    ``runner`` (default :func:`academy.course.grading.worker.run_job`) must be a module-level function, since it
    travels to the workers by name; tests use it to stand in for a hung or crashing grader."""
    if jobs < 1:
        raise ValueError("--jobs must be at least 1")
    ctx = _context()
    pending = list(specs)
    workers: list[_Worker] = []
    made = 0

    def hand_out() -> None:
        nonlocal made
        while pending and (len(workers) < jobs or any(w.spec is None for w in workers)):
            idle = next((w for w in workers if w.spec is None), None)
            if idle is None:
                made += 1
                idle = _Worker(ctx, made, runner)
                workers.append(idle)
            try:
                idle.give(pending[0])
            except OSError:  # it died between jobs: replace it, nothing was lost
                idle.spec = None
                idle.kill()
                workers.remove(idle)
                continue
            pending.pop(0)

    try:
        hand_out()
        while any(w.spec is not None for w in workers):
            busy = [w for w in workers if w.spec is not None]
            nearest = min(w.started + deadline_s for w in busy)
            waitables = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
            ready = set(wait(waitables, timeout=max(0.0, nearest - time.monotonic())))
            finished = []
            for worker in busy:
                if worker.conn in ready or worker.proc.sentinel in ready:
                    try:
                        exitcode = worker.conn.recv() if worker.conn.poll() else None
                    except (EOFError, OSError):
                        exitcode = None
                    healthy = exitcode is not None
                    if not healthy:  # it died in the middle of the job: report how
                        worker.proc.join(timeout=5)
                        exitcode = worker.proc.exitcode
                    spec, seconds = worker.finish()
                    finished.append(JobOutcome(spec=spec, exitcode=exitcode, timed_out=False, seconds=seconds))
                    if healthy and worker.done < RECYCLE_AFTER:
                        continue  # it takes the next job
                    retire = worker.stop if healthy else worker.kill
                elif time.monotonic() >= worker.started + deadline_s:
                    spec, seconds = worker.finish()
                    finished.append(JobOutcome(spec=spec, exitcode=None, timed_out=True, seconds=seconds))
                    retire = worker.kill
                else:
                    continue
                retire()
                workers.remove(worker)
            # Hand out the next jobs before yielding: the caller's merge then overlaps grading.
            hand_out()
            yield from finished
    finally:
        for worker in workers:
            if worker.spec is not None:
                worker.kill()
            else:
                worker.stop()
