"""Progress of a workshop's course-work action (``status.json``) and the lock that allows one action at a time.

``Tracker`` rewrites the status file atomically at every step and result, so the workshop page
(and its JSON API) can show progress while a background thread, the CLI or teardown runs the
action. ``exclusive`` is a ``flock`` on a file in the same private folder: it holds across threads
and processes, and is released by the kernel when its holder dies, which is how a run cut off by a
service restart is told apart (*interrupted*) from one still running.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from academy.workshop.forms import InvalidRequest, Problem


@dataclass
class Status:
    """The running or last course-work action of a workshop, as the page shows it."""

    action: str = ""
    state: str = "idle"  # idle, running, done, failed, interrupted
    actor: str = ""
    step: str = ""
    total: int = 0
    done: int = 0
    message: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    results: list = field(default_factory=list)


class Tracker:
    """Writes progress to ``status.json`` (atomically) and, for the CLI, echoes each result."""

    def __init__(self, ctx, slug: str, action: str, actor: str, echo: Callable[[str], None] | None = None):
        self.path, self.echo = _work_dir(ctx, slug) / "status.json", echo
        self.status = Status(action=action, state="running", actor=actor, started_at=time.time())
        self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.status)))
        os.replace(tmp, self.path)

    def begin(self, step: str, total: int) -> None:
        self.status.step, self.status.total, self.status.done = step, total, 0
        self._save()

    def advance(self, result) -> None:
        self.status.done += 1
        self.status.results = [*self.status.results, asdict(result)][-200:]
        self._save()
        if self.echo:
            self.echo(f"{self.status.step} {result.assignment} {result.participant}: {result.status}"
                      + (f" ({result.detail})" if result.detail else ""))

    def finish(self, state: str, message: str) -> None:
        self.status.state, self.status.message, self.status.finished_at = state, message, time.time()
        self._save()
        if self.echo:
            self.echo(message)


def read_status(ctx, slug: str) -> Status:
    path = _work_dir(ctx, slug) / "status.json"
    try:
        status = Status(**{k: v for k, v in json.loads(path.read_text()).items() if k in Status.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return Status()
    if status.state == "running" and not _busy(ctx, slug):
        # Nobody holds the lock: the process running it ended (a service restart) before it finished.
        status.state, status.message = "interrupted", "the run ended before it finished; start it again"
    return status


def _busy(ctx, slug: str) -> bool:
    try:
        with exclusive(ctx, slug, wait=False):  # leaving it drops a lock taken just for the probe
            return False
    except InvalidRequest:
        return True


@contextlib.contextmanager
def exclusive(ctx, slug: str, wait: bool = True):
    """Hold the workshop's course-work lock; with ``wait=False`` raise InvalidRequest when it is taken."""
    fd = os.open(_work_dir(ctx, slug) / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise InvalidRequest([Problem("coursework", "another course-work action of this workshop is running; wait for it")]) from None
        yield
    finally:
        os.close(fd)




def _work_dir(ctx, slug: str):
    from academy.workshop.coursework import work_dir

    return work_dir(ctx, slug)
