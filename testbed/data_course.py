"""A tiny nbgrader course whose assignment reads data from sub-folders, kept in a custom source folder.

The course's ``nbgrader_config.py`` sets ``CourseDirectory.source_directory = 'instructor'``.  Assignment
``d1`` ships ``data/n.txt`` and ``data/deep/m.csv`` beside ``reader.ipynb``; the test cells read them, and
one reads ``work/answer.txt``, a file the student adds in a sub-folder of their own (3 points in all).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ASSIGNMENT = "d1"
NOTEBOOK = "reader"
SOURCE_DIRECTORY = "instructor"
DATA = {"data/n.txt": "7\n", "data/deep/m.csv": "1,2,3\n"}
#: What the solution cell computes from DATA: 7 + 1 + 2 + 3.
TOTAL = 13
SOLUTION = ("def total():\n    n = int(open('data/n.txt').read())\n"
            "    return n + sum(int(x) for x in open('data/deep/m.csv').read().split(','))")
#: The student's own file in a sub-folder, worth 1 point.
ANSWER_FILE, ANSWER = "work/answer.txt", "42\n"


def _meta(grade_id, *, solution=False, grade=False, points=0):
    meta = {"grade": grade, "grade_id": grade_id, "locked": grade, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def write_source(course_dir: Path) -> Path:
    """Create ``course_dir/instructor/d1/`` (notebook and data) and the course's nbgrader_config.py."""
    cells = [
        new_code_cell(SOLUTION.replace("def total():\n", "def total():\n    ### BEGIN SOLUTION\n")
                      + "\n    ### END SOLUTION", metadata=_meta("total", solution=True)),
        new_code_cell(f"assert total() == {TOTAL}, 'data files read'",
                      metadata=_meta("test_total", grade=True, points=2)),
        new_code_cell(f"assert open({ANSWER_FILE!r}).read().strip() == {ANSWER.strip()!r}, 'own file'",
                      metadata=_meta("test_answer_file", grade=True, points=1)),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"reader-{i}"
    nb = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    folder = course_dir / SOURCE_DIRECTORY / ASSIGNMENT
    for rel, text in DATA.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")
    (course_dir / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'datacourse'\n"
        f"c.CourseDirectory.source_directory = {SOURCE_DIRECTORY!r}\nc.Execute.timeout = 20\n")
    return folder


def make_submission(release_nb: Path) -> nbformat.NotebookNode:
    """The released notebook with the solution filled in."""
    nb = nbformat.read(release_nb, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "total":
            cell.source = SOLUTION
    return nb
