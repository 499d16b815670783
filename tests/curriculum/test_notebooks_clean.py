"""Are the committed curriculum notebooks clean (no outputs) and on the NOTEBOOKS.md skeleton? Fast: no kernels."""
from __future__ import annotations

import nbformat
import pytest

from _curriculum_nb import EXPECTED, NOTEBOOKS
from _support import need
from academy.curriculum import discover, lint

FOUND = [p.stem for p in discover.curriculum_notebooks(NOTEBOOKS)] if NOTEBOOKS.is_dir() else []


@pytest.mark.parametrize("name", sorted(set(EXPECTED) | set(FOUND)))
def test_notebook_is_clean_and_on_skeleton(name):
    """Is this notebook committed without outputs and does it follow the skeleton (headings, parameters, learning check)?"""
    path = NOTEBOOKS / f"{name}.ipynb"
    need(path.exists(), f"curriculum notebook {path.name}")
    assert name in EXPECTED, f"{path.name} is not in the curriculum list of NOTEBOOKS.md"
    nbformat.validate(nbformat.read(path, as_version=4))
    problems = lint.lint(path)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems) + "\n(fix: academy curriculum clean " + name + ")"


def test_no_stray_notebooks():
    """Does notebooks/ hold only NN_slug.ipynb curriculum notebooks (no Untitled.ipynb, no checkpoints committed)?"""
    need(NOTEBOOKS.is_dir(), "notebooks/ directory")
    strays = [p.name for p in discover.stray_notebooks(NOTEBOOKS)]
    assert strays == []
    assert not (NOTEBOOKS / ".ipynb_checkpoints").exists()
