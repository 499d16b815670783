"""A tiny nbgrader assignment generated on the fly, so pipeline tests do not depend on course content.

``t1/problems.ipynb`` has two solution cells and three test cells (two with hidden tests, 6 points).
:func:`make_submission` fills the released notebook's solution cells with chosen code.
``w1/essay.ipynb`` (written only by :func:`write_written_source`, so ``t1``'s users never see it) holds one
written answer: a manually graded markdown cell that only a trainer can score.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ASSIGNMENT = "t1"
NOTEBOOK = "problems"
MAX_SCORE = 6.0

SOLUTIONS = {
    "squares": "def squares(n):\n    return [i * i for i in range(n)]",
    "mean": "def mean(xs):\n    return sum(xs) / len(xs)",
}
WRONG = {
    "squares": "def squares(n):\n    return [i * i for i in range(1, n + 1)]",
    "mean": "def mean(xs):\n    return sum(xs) / (len(xs) + 1)",
}
#: points of each test cell and the solution it checks
TESTS = {"test_squares": ("squares", 2), "test_mean": ("mean", 3), "test_mean_empty": ("mean", 1)}
HIDDEN_LINE = 'assert squares(6) == [0, 1, 4, 9, 16, 25], "hidden squares check"'


def _meta(grade_id, *, solution=False, grade=False, points=0, locked=False):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def write_source(course_dir: Path) -> Path:
    """Create ``course_dir/source/t1/problems.ipynb`` and a minimal nbgrader_config.py."""
    cells = [
        new_markdown_cell("# Tiny assignment", metadata=_meta("intro", locked=True)),
        new_code_cell("def squares(n):\n    ### BEGIN SOLUTION\n    return [i * i for i in range(n)]\n"
                      "    ### END SOLUTION", metadata=_meta("squares", solution=True)),
        new_code_cell("assert squares(3) == [0, 1, 4]\n### BEGIN HIDDEN TESTS\n" + HIDDEN_LINE +
                      "\n### END HIDDEN TESTS", metadata=_meta("test_squares", grade=True, points=2, locked=True)),
        new_code_cell("def mean(xs):\n    ### BEGIN SOLUTION\n    return sum(xs) / len(xs)\n    ### END SOLUTION",
                      metadata=_meta("mean", solution=True)),
        new_code_cell("assert mean([1, 2, 3]) == 2\n### BEGIN HIDDEN TESTS\n"
                      "assert abs(mean([0.5, 1.5]) - 1.0) < 1e-12, 'hidden mean check'\n### END HIDDEN TESTS",
                      metadata=_meta("test_mean", grade=True, points=3, locked=True)),
        new_code_cell("assert mean([4]) == 4", metadata=_meta("test_mean_empty", grade=True, points=1, locked=True)),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    nb = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    folder = course_dir / "source" / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")
    (course_dir / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'tiny'\nc.Execute.timeout = 10\n")
    return folder


def make_submission(release_nb: Path, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with the given solution cells filled in (others left blank)."""
    nb = nbformat.read(release_nb, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def expected_score(answers: dict[str, str]) -> float:
    """Points a submission earns: a test passes when the solution it checks is the correct one."""
    return float(sum(points for sol, points in TESTS.values() if answers.get(sol) == SOLUTIONS[sol]))


WRITTEN_ASSIGNMENT = "w1"
WRITTEN_NOTEBOOK = "essay"
WRITTEN_ID = "explain"
WRITTEN_POINTS = 4.0


def write_written_source(course_dir: Path) -> Path:
    """Create ``course_dir/source/w1/essay.ipynb``: a question and a written answer cell (markdown, graded by hand)."""
    cells = [
        new_markdown_cell("Explain in one sentence why a GPU speeds up training.", metadata=_meta("question", locked=True)),
        new_markdown_cell("A model answer: it runs the many independent multiply-adds of a layer in parallel.",
                          metadata=_meta(WRITTEN_ID, solution=True, grade=True, points=WRITTEN_POINTS)),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"essay-{i}"
    nb = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    folder = course_dir / "source" / WRITTEN_ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{WRITTEN_NOTEBOOK}.ipynb")
    return folder
