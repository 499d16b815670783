"""The package's house rules, so a newcomer finds them kept: one purpose per module, said, short, one import style."""
from __future__ import annotations

import ast
from pathlib import Path

from academy.probes import PROJECT_ROOT

PACKAGES = [PROJECT_ROOT / "hub" / "academy", PROJECT_ROOT / "notebooks" / "lessons"]
MAX_LINES = 400


def modules() -> dict[str, str]:
    found = {}
    for root in PACKAGES:
        for path in root.rglob("*.py") if root.exists() else []:
            if "labextensions" not in path.parts and "__pycache__" not in path.parts:
                found[str(path.relative_to(PROJECT_ROOT))] = path.read_text()
    assert len(found) > 50  # the walk found the package at all
    return found


def test_every_module_says_its_one_purpose():
    """Does every module open with a docstring?"""
    assert [name for name, src in modules().items() if not ast.get_docstring(ast.parse(src))] == []


def test_every_module_stays_short():
    """Does every module stay under ~400 lines (split by purpose beyond that)?"""
    assert {name: src.count("\n") for name, src in modules().items() if src.count("\n") > MAX_LINES} == {}


def test_one_import_style_absolute():
    """Is every import absolute (`from academy.course.grading.pool import …`), never relative?"""
    relative = {name: [n.lineno for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom) and n.level]
                for name, src in modules().items()}
    assert {name: lines for name, lines in relative.items() if lines} == {}
