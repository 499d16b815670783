"""Requiring a real component, CI-strictly: a missing one skips locally and fails under CI=true."""
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

