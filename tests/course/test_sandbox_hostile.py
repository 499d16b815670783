"""Hostile submissions: each is graded to a defined result in bounded time, the grader and gradebook intact.

All cases are graded together in ONE `autograde --jobs 2` run (5 s per cell, 20 s per notebook), next to
an honest control submission, exactly as they would arrive in a real batch.
"""
from __future__ import annotations

import json
import os
import sqlite3

import nbformat
import pytest

from academy.course import hidden
from academy.course.autograde import AutogradeRequest, autograde
from academy.course.feedback import feedback

from testbed import tiny_course
from support.course import REPO, place_submission, tiny_release_nb

CELL_TIMEOUT, NOTEBOOK_LIMIT = 5, 20
GOOD = tiny_course.SOLUTIONS
SQUARES = GOOD["squares"]

# student -> (code for the `squares` answer cell, expected status, expected score, message fragment)
CODE_CASES = {
    "loop": ("while True:\n    pass", "graded", 4.0, ""),
    "loop_print": ("while True:\n    print('spam ' * 200)", "graded", 4.0, ""),
    "flood_then_fail": ("print('x' * (5 * 1024**2))\n" + tiny_course.WRONG["squares"], "graded", 4.0, ""),
    "memory_bomb": ("hog = []\nwhile True:\n    hog.append(bytearray(64 * 1024**2))", "graded", 4.0, ""),
    "sys_exit": ("import sys\nsys.exit(3)", "graded", 4.0, ""),
    "os_exit": ("import os\nos._exit(0)", "failed", 0.0, "kernel died"),
    "self_kill": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "failed", 0.0, "kernel died"),
    "ignores_interrupt": ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                          "failed", 0.0, "ignored the interrupt"),
    # The integrity check removes the hook before the first test cell, so it cannot stretch the notebook.
    "slow_cells": (SQUARES + "\nimport time\ntime.sleep(4)\nget_ipython().events.register('pre_run_cell', "
                   "lambda info: time.sleep(4.8))", "graded", 6.0, "flagged for the trainer"),
    "hides_tracebacks": ("get_ipython().showtraceback = lambda *a, **k: None\n"
                         "get_ipython()._showtraceback = lambda *a, **k: None\n" + tiny_course.WRONG["squares"],
                         "graded", 4.0, ""),
    "echoes_cells": (SQUARES + "\nget_ipython().events.register('pre_run_cell', "
                     "lambda info: print(info.raw_cell))", "graded", 6.0, ""),
}
# student -> (expected status, expected score, message fragment) for cases built below
OTHER_CASES = {
    "control": ("graded", 6.0, ""),
    "deleted_grade_cell": ("graded", 6.0, ""),
    "edited_test_cell": ("graded", 4.0, ""),
    "changed_points": ("graded", 6.0, ""),
    "unknown_kernelspec": ("graded", 6.0, ""),
    "snoop": ("graded", 6.0, ""),
    "not_a_notebook": ("failed", 0.0, "not a notebook"),
    "missing_notebook": ("failed", 0.0, "no notebook"),
    "slow_notebook": ("failed", 0.0, "wall-time limit"),
}
EXPECTED = {s: (st, sc, msg) for s, (_, st, sc, msg) in CODE_CASES.items()} | OTHER_CASES


def _nb(released, answers):
    return tiny_course.make_submission(released, answers)


def _secret_paths(layout) -> list[str]:
    return [
        layout.db_url[len("sqlite:///"):],
        str(layout.source_dir / "t1" / "problems.ipynb"),
        str(layout.step_dir("submitted", "control", "t1") / "problems.ipynb"),
        str(REPO / "course" / "source"),
        str(layout.state_dir),
        "/root",
        "/home",
    ]


def _snoop_code(paths: list[str]) -> str:
    return (f"import os\nfor p in {paths!r}:\n"
            "    try:\n"
            "        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(1)\n"
            "        print('READ', p)\n"
            "    except OSError:\n"
            "        print('BLOCKED', p)\n" + SQUARES)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, grader_account):
    from support.course import make_layout
    from academy.course import release
    base = tmp_path_factory.mktemp("hostile")
    tiny_course.write_source(base / "course")
    layout = make_layout(base / "course", base / "state")
    release.release(layout, "t1", publish=False)
    released = tiny_release_nb(layout)
    files = {}
    for student, (code, *_rest) in CODE_CASES.items():
        files[student] = {"problems.ipynb": _nb(released, {"squares": code, "mean": GOOD["mean"]})}
    files["control"] = {"problems.ipynb": _nb(released, GOOD)}
    nb = _nb(released, GOOD)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_mean"]
    files["deleted_grade_cell"] = {"problems.ipynb": nb}
    nb = _nb(released, {"squares": tiny_course.WRONG["squares"], "mean": GOOD["mean"]})
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_squares":
            cell.source = "pass"
    files["edited_test_cell"] = {"problems.ipynb": nb}
    nb = _nb(released, GOOD)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata.nbgrader.points = 100
    files["changed_points"] = {"problems.ipynb": nb}
    nb = _nb(released, GOOD)
    nb.metadata.kernelspec = {"name": "evil-kernel", "display_name": "Evil", "language": "python"}
    files["unknown_kernelspec"] = {"problems.ipynb": nb}
    files["snoop"] = {"problems.ipynb": _nb(released, {"squares": _snoop_code(_secret_paths(layout)),
                                                        "mean": GOOD["mean"]})}
    files["not_a_notebook"] = {"problems.ipynb": b"PK\x03\x04 this is a zip, not a notebook"}
    files["missing_notebook"] = {"notes.txt": "I forgot to upload the notebook"}
    nb = _nb(released, GOOD)
    nb.cells += [nbformat.v4.new_code_cell("import time\ntime.sleep(4.5)") for _ in range(5)]  # each under 5 s
    files["slow_notebook"] = {"problems.ipynb": nb}
    for student, content in files.items():
        place_submission(layout, student, "t1", content)
    settings = {"Execute.timeout": CELL_TIMEOUT, "SandboxKernelManager.notebook_time_limit": NOTEBOOK_LIMIT}
    reports = autograde(layout, AutogradeRequest("t1", jobs=2, settings=settings, slack_s=30))
    return layout, {r.student: r for r in reports}


@pytest.mark.grading
@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_hostile_submission_gets_its_defined_result(hostile, student):
    """Is each hostile submission graded to its defined status, score and message, within its deadline?"""
    layout, reports = hostile
    status, score, message = EXPECTED[student]
    report = reports[student]
    assert (report.status, report.score, report.max_score) == (status, score, tiny_course.MAX_SCORE), report
    assert message in report.message
    if status == "failed":
        assert report.message, "a failed submission needs a reason"
    assert report.seconds <= NOTEBOOK_LIMIT + 30


@pytest.mark.grading
def test_grader_and_gradebook_survive_the_batch(hostile):
    """After the hostile batch, is the gradebook intact, complete and the control graded in full?"""
    layout, reports = hostile
    assert set(reports) == set(EXPECTED)
    db = sqlite3.connect(layout.db_url[len("sqlite:///"):])
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = dict(db.execute("SELECT student.id, COUNT(grade.id) FROM submitted_assignment "
                           "JOIN student ON student.id = submitted_assignment.student_id "
                           "JOIN submitted_notebook ON submitted_notebook.assignment_id = submitted_assignment.id "
                           "JOIN grade ON grade.notebook_id = submitted_notebook.id GROUP BY student.id"))
    assert rows == {s: len(tiny_course.TESTS) for s in EXPECTED}
    flagged = db.execute("SELECT COUNT(*) FROM grade WHERE needs_manual_grade = 1").fetchone()[0]
    assert flagged == len(tiny_course.TESTS) * sum(1 for s, _, _ in EXPECTED.values() if s == "failed")


def _outputs(layout, student) -> str:
    nb = nbformat.read(layout.step_dir("autograded", student, "t1") / "problems.ipynb", as_version=4)
    return hidden.notebook_text(nb)


@pytest.mark.grading
def test_student_code_cannot_see_gradebook_solutions_or_other_students(hostile):
    """Can student code read the gradebook, the source notebooks, another submission, the repo or homes?"""
    layout, _ = hostile
    text = _outputs(layout, "snoop")
    for path in _secret_paths(layout):
        assert f"BLOCKED {path}" in text
    assert "READ " not in text


@pytest.mark.grading
def test_print_flood_is_capped(hostile):
    """Does an endless print loop leave a bounded autograded notebook?"""
    layout, _ = hostile
    path = layout.step_dir("autograded", "loop_print", "t1") / "problems.ipynb"
    assert path.stat().st_size < 6 * 1024**2
    assert "truncated" in _outputs(layout, "loop_print")


@pytest.mark.grading
def test_cell_echo_trick_does_not_leak_hidden_tests_into_feedback(hostile):
    """If student code prints every later cell's source, does feedback still hide the hidden tests?"""
    layout, _ = hostile
    assert tiny_course.HIDDEN_LINE in _outputs(layout, "echoes_cells")  # the trick really ran
    [result] = feedback(layout, "t1", students=["echoes_cells"], send=False)
    assert result.status == "generated", result.message
    text = hidden.html_text(result.files[0].read_text())
    assert hidden.find_leaks(text, hidden.hidden_lines(layout.db_url, "t1")) == []
    assert "hidden tests are not shown" in text


@pytest.mark.grading
def test_failed_submission_reports_are_readable(hostile):
    """Does every failed submission have a report file with a one-line reason and no feedback?"""
    layout, reports = hostile
    for student, report in reports.items():
        stored = json.loads((layout.reports_dir("t1") / f"{student}.json").read_text())
        assert stored["status"] == report.status
        if report.status == "failed":
            assert "\n" not in stored["message"]
            assert not os.path.exists(layout.step_dir("autograded", student, "t1"))
