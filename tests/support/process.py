"""Telling whether a process has ended, for tests that check nothing outlived what they stopped."""
from __future__ import annotations


def exited(pid: int) -> bool:
    """Has ``pid`` ended?  A zombie (ended, not yet reaped by its parent) counts as ended."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
