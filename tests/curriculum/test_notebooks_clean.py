"""Are the committed curriculum notebooks clean (no outputs) and on the NOTEBOOKS.md skeleton? Fast: no kernels."""
from __future__ import annotations

import ast

import nbformat
import pytest

from support.notebooks import EXPECTED, NOTEBOOKS
from support.skip import need
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


def _calls_backward(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) == "backward"
               for n in ast.walk(node))


def _training_loops(name: str) -> list[str]:
    """The code cells of a notebook with a loop that runs backward passes: its training loops."""
    found = []
    for cell in nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics; no training loop sits in those
            continue
        if any(isinstance(n, (ast.For, ast.While)) and _calls_backward(n) for n in ast.walk(tree)):
            found.append(cell.source)
    return found


@pytest.mark.parametrize("name", FOUND)
def test_training_loops_show_progress(name):
    """Does every training loop in this notebook show a progress bar, so a long run is never silent?"""
    silent = [src.splitlines()[0] for src in _training_loops(name) if "tqdm(" not in src]
    assert silent == [], f"{name}: training loop(s) without a tqdm progress bar, starting: {silent}"


def test_the_progress_check_finds_the_training_loops():
    """Does the training-loop finder see the loops it must (04, 05, 07, 08, 12), so the progress check cannot pass empty?"""
    need(NOTEBOOKS.is_dir(), "notebooks/ directory")
    assert {n[:2] for n in FOUND if _training_loops(n)} >= {"04", "05", "07", "08", "12"}
