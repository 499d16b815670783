"""Helpers shared by the test suite: requiring a real component, CI-strictly; telling whether a process exited."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(available: bool, what: str) -> None:
    """Skip when a real component is missing locally; fail under CI=true, where nothing may skip."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required component missing in CI: {what}", pytrace=False)
    pytest.skip(f"missing component: {what}")


def exited(pid: int) -> bool:
    """Has ``pid`` ended?  A zombie (ended, not yet reaped by its parent) counts as ended."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
