"""A trainer's own course repository, written for the tests: notebooks named and laid out as trainers do, not as the Academy does.

``foreign_tree(root)`` writes it and returns what each notebook should come to; the
benchmark (benchmarks/curriculum.py) runs the same tree.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

PYTHON = {"name": "python3", "display_name": "Python 3", "language": "python"}
HANGS_CELL = 3  # index of the cell of broken/hangs.ipynb that never finishes
RAISES_CELL = 4  # index of the failing cell of broken/Raises Here.ipynb (its injected parameters not counted)

WIDGET_CELL = "\n".join(
    ["import ipywidgets as widgets", "from ipywidgets import interact", "", "def explore(rate=0.1, steps=10, shape='linear', noisy=False):"]
    + [f"    # step {i}: a trainer's long explanation of what the slider does ({i})" for i in range(60)]
    + ["    return rate * steps", "", "interact(explore, rate=(0.01, 1.0, 0.01), steps=(1, 100), shape=['linear', 'cosine'], noisy=False)"]
)


def _nb(cells, *, kernelspec=PYTHON, ids: bool = True) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells, metadata={"kernelspec": kernelspec} if kernelspec else {})
    if not ids:  # nbformat 4.4: cells carry no ids at all
        nb.nbformat_minor = 4
        for cell in nb.cells:
            cell.pop("id", None)
    return nb


def _write(path: Path, nb: nbformat.NotebookNode) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if nb.nbformat_minor < 5:  # nbformat.write would validate against 4.5 and add ids back
        import json

        path.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    else:
        nbformat.write(nb, path)


def foreign_tree(root: Path, *, hang_pid_file: Path | None = None) -> dict[str, str]:
    """Write the tree under ``root``; return {name relative to root: expected status}."""
    md, code = new_markdown_cell, new_code_cell
    (root / "week1" / "data").mkdir(parents=True)
    (root / "week1" / "data" / "points.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "week2" / "data").mkdir(parents=True)
    (root / "week2" / "data" / "points.csv").write_text("x,y\n10,20\n30,40\n50,60\n")
    (root / "week2" / "helpers.py").write_text("def mean(values):\n    return sum(values) / len(values)\n")
    expected = {}

    _write(root / "Intro to Python.ipynb", _nb([md("# Welcome"), code("words = 'hello world'.split()"), code("assert len(words) == 2\nprint(words)")], ids=False))
    expected["Intro to Python.ipynb"] = "PASS"

    _write(root / "week1" / "Loading data.ipynb", _nb([
        md("# Week 1"), code("import csv\nrows = list(csv.DictReader(open('data/points.csv')))"),
        code("assert len(rows) == 2, f'week1 has 2 rows, read {len(rows)}'\nassert 'smoke' not in globals(), 'no parameters cell, so nothing is injected'"),
    ]))  # fmt: skip
    expected["week1/Loading data.ipynb"] = "PASS"

    _write(root / "week2" / "analysis-v2.ipynb", _nb([
        code("n_rows = 0\nlabel = 'default'", metadata={"tags": ["parameters"]}),
        code("import csv\nfrom helpers import mean\nrows = list(csv.DictReader(open('data/points.csv')))"),
        code("assert len(rows) == 3, f'week2 has its own data with 3 rows, read {len(rows)}'\nassert mean([float(r['x']) for r in rows]) == 30.0"),
        code("assert label == 'nightly', label"),
    ]))  # fmt: skip
    expected["week2/analysis-v2.ipynb"] = "PASS"

    _write(root / "week2" / "errors_on_purpose.ipynb", _nb([
        md("Errors are part of the lesson."), code("x = 1"),
        code("1 / 0  # shows learners a ZeroDivisionError", metadata={"tags": ["raises-exception"]}),
        code("raise RuntimeError('never run in tests')", metadata={"tags": ["skip-execution"]}),
        code("assert x == 1\nprint('after the expected error')"),
    ]))  # fmt: skip
    expected["week2/errors_on_purpose.ipynb"] = "PASS"

    _write(root / "other" / "stats_in_r.ipynb", _nb([code("x = 2\nprint(x)")], kernelspec={"name": "ir", "display_name": "R", "language": "R"}))
    expected["other/stats_in_r.ipynb"] = "ERROR"

    _write(root / "widgets" / "Explore the learning rate.ipynb", _nb([md("# Sliders"), code(WIDGET_CELL), code("print('after the widget')")]))
    expected["widgets/Explore the learning rate.ipynb"] = "PASS"

    committed = _nb([code("print('committed with its output')"), code("y = 2")])
    committed.cells[0].outputs = [new_output("stream", name="stdout", text="committed with its output\n")]
    committed.cells[0].execution_count = 1
    _write(root / "week1" / "with outputs.ipynb", committed)
    expected["week1/with outputs.ipynb"] = "PASS"  # DIRTY only with --require-clean

    pid = f"open({str(hang_pid_file)!r}, 'w').write(str(os.getpid()))\n" if hang_pid_file else ""
    _write(root / "broken" / "hangs.ipynb", _nb([
        md("Waits for a server that never answers."), code("import os, time"), code("ready = False"),
        code(f"{pid}time.sleep(3600)  # waiting for the server"), code("print('never')"),
    ], ids=False))  # fmt: skip
    expected["broken/hangs.ipynb"] = "TIMEOUT"

    _write(root / "broken" / "Raises Here.ipynb", _nb([
        md("# Broken"), code("epochs = 1", metadata={"tags": ["parameters"]}), code("history = []"), md("Now train:"),
        code("loss = history[-1]  # the training loop was deleted\nprint(loss)"), code("print('unreached')"),
    ]))  # fmt: skip
    expected["broken/Raises Here.ipynb"] = "FAIL"

    # Never run: checkpoints, hidden folders, and (with --exclude 'drafts') drafts.
    for skipped in (".ipynb_checkpoints/Intro to Python-checkpoint.ipynb", ".hidden/secret.ipynb", "week1/.scratch.ipynb", "drafts/wip.ipynb"):
        _write(root / skipped, _nb([code("raise SystemExit('this notebook must not run')")]))
    return expected
