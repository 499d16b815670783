"""Waiting on the test cluster's daemons (slurm_cluster.py, slurm_accounting.py): a pidfile's live process, a polled condition."""
from __future__ import annotations

import os
import time
from pathlib import Path


def pid_alive(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` if that process still runs, else None."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def wait_for(predicate, timeout: float, message: str, step: float = 0.2) -> None:
    """Poll ``predicate`` every ``step`` s until true; ``RuntimeError(message)`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise RuntimeError(message)
