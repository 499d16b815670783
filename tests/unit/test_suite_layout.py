"""The suite's own layout: what pytest's import of test modules by basename needs."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename():
    """Are test module names unique across folders? (tests/ is on sys.path, so a second
    test_x.py elsewhere fails collection with "import file mismatch".)"""
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)
    assert [n for n, count in names.items() if count > 1] == []
