"""Shared pieces of the lesson-module tests: the shipped data dir, per-test fixtures and check helpers.

Test modules import the fixtures by name, which makes them autouse for that module only.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parents[2] / "notebooks" / "data"


@pytest.fixture(autouse=True)
def progress(tmp_path, monkeypatch):
    monkeypatch.setenv("ACADEMY_PROGRESS_FILE", str(tmp_path / "progress.jsonl"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Tiny models on a shared 2-core runner are many times slower with two spinning threads.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def outcome(ex, *args):
    """Run a check the way a notebook does; return (passed, message)."""
    passed = ex.check(*args)
    return passed, ex.results[-1].message


def not_attempted(*_args):
    raise NotImplementedError
