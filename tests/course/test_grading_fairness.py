"""Honest work is never zeroed by the pipeline: odd cells, deep nesting and size are handled, and failures explained.

One `autograde --jobs 2` batch with real kernels and sandboxes: duplicated test cells, forged grade cells and
id-less nbgrader cells are ignored and named (stock nbgrader fails the notebook, jupyter/nbgrader#1083), a
notebook nested thousands of levels deep and a 55 MiB notebook are graded, a submission over the one size
limit fails with the message `submit` gives, and every failure keeps its traceback.
"""
from __future__ import annotations

import copy
import json
import os

import nbformat
import pytest

from academy.course import exchange
from academy.course.grading import limits
from academy.course.autograde import AutogradeRequest, autograde

from testbed import tiny_course
from support.course import place_submission, tiny_release_nb

pytestmark = pytest.mark.grading
GOOD = tiny_course.SOLUTIONS


def _cell_index(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _deep_notebook(nb, depth: int) -> str:
    """The notebook's JSON with an output nested ``depth`` levels deep (json.dumps itself would recurse)."""
    text = nbformat.writes(nb)
    data = json.loads(text)
    marker = "DEEP-PLACEHOLDER"
    data["metadata"]["widget_state"] = marker
    return json.dumps(data).replace(json.dumps(marker), "[" * depth + "]" * depth)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, grader_account):
    from academy.course import release
    from support.course import make_layout
    base = tmp_path_factory.mktemp("fairness")
    tiny_course.write_source(base / "course")
    layout = make_layout(base / "course", base / "state")
    release.release(layout, "t1", publish=False)
    released = tiny_release_nb(layout)
    make = lambda answers=GOOD: tiny_course.make_submission(released, answers)  # noqa: E731
    files = {"control": {"problems.ipynb": make()}}
    nb = make()
    i = _cell_index(nb, "test_squares")
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))  # copy-pasted test cell
    files["duplicated_test"] = {"problems.ipynb": nb}
    nb = make()
    nb.cells.append(nbformat.v4.new_code_cell("pass", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "bonus", "points": 1000,
        "schema_version": 3}}))
    files["forged_grade"] = {"problems.ipynb": nb}
    nb = make()
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"grade": True, "points": 5}}))
    files["idless_cell"] = {"problems.ipynb": nb}
    files["deeply_nested"] = {"problems.ipynb": _deep_notebook(make(), 5000)}
    nb = make()
    nb.cells[0].setdefault("attachments", {})["photo.png"] = {"image/png": "A" * (55 * 1024**2)}
    files["big_honest"] = {"problems.ipynb": nb}
    files["broken"] = {"problems.ipynb": '{"cells": [ this is not json'}
    for student, content in files.items():
        place_submission(layout, student, "t1", content)
    over = layout.step_dir("submitted", "too_large", "t1")
    place_submission(layout, "too_large", "t1", {"problems.ipynb": make()})
    with open(over / "dataset.bin", "wb") as fh:
        fh.truncate(limits.SUBMISSION_MAX_BYTES + 1)  # sparse: no disk needed to be over the limit
    reports = autograde(layout, AutogradeRequest("t1", jobs=2))
    return layout, {r.student: r for r in reports}


@pytest.mark.parametrize("student,fragment", [
    ("duplicated_test", "'test_squares', claiming 2 points) is a copy of another cell"),
    ("forged_grade", "'bonus', claiming 1000 points) is not part of the assignment"),
    ("idless_cell", "has nbgrader metadata without an id"),
    ("deeply_nested", "nested more than 100 levels deep and were removed before grading"),
])
def test_odd_cells_are_ignored_and_the_rest_graded(graded, student, fragment):
    """Does a duplicated, forged or id-less cell, or deep nesting, leave the honest answers their full score?"""
    _, reports = graded
    report = reports[student]
    assert (report.status, report.score, report.max_score) == ("graded", 6.0, 6.0), report
    assert any(fragment in note for note in report.notes), report.notes
    assert fragment in report.message


def test_a_55_mib_notebook_is_graded(graded):
    """Is an honest notebook with a large embedded image graded in full, not reported as missing?"""
    _, reports = graded
    assert (reports["big_honest"].status, reports["big_honest"].score) == ("graded", 6.0), reports["big_honest"]


def test_size_limit_is_the_same_at_submit_collect_and_grading(graded, tmp_path):
    """Does a submission over the limit fail grading with the message submit and collect give?"""
    _, reports = graded
    report = reports["too_large"]
    assert report.status == "failed" and report.score == 0.0
    rule = f"the limit is {limits.SUBMISSION_MAX_FILES} files and {limits.SUBMISSION_MAX_BYTES // 2**20} MiB in all"
    assert report.message.startswith("submission too large") and rule in report.message
    folder = tmp_path / "sub"
    folder.mkdir()
    with open(folder / "dataset.bin", "wb") as fh:
        fh.truncate(limits.SUBMISSION_MAX_BYTES + 1)
    with pytest.raises(exchange.ExchangeError) as err:
        exchange._snapshot(folder)  # what collect reads (submit uses the same check and message)
    assert str(err.value).startswith("submission too large") and rule in str(err.value)
    assert (exchange.MAX_BYTES, exchange.MAX_FILES) == (limits.SUBMISSION_MAX_BYTES, limits.SUBMISSION_MAX_FILES)


def test_failed_submission_keeps_its_traceback(graded):
    """Does a failed submission's report keep the traceback nbgrader's message points at?"""
    layout, reports = graded
    stored = json.loads((layout.reports_dir("t1") / "broken.json").read_text())
    assert stored["status"] == "failed" and "not a notebook" in stored["message"]
    assert "Traceback" in stored["traceback"] and "NotJSONError" in stored["traceback"], stored["traceback"][-2000:]
    assert not os.path.exists(layout.step_dir("autograded", "broken", "t1"))


def test_submit_refuses_an_oversized_folder_with_the_same_message(tmp_path, grader_account):
    """Does a real student's `submit` of a folder over the limit fail with the message the grader gives?"""
    import pwd
    import shutil
    import subprocess

    from support.skip import need
    from support.course import make_layout, run_academy, shared_tiny_course
    student = "academy-s1"
    need(shutil.which("runuser") is not None, "runuser (a real student account)")
    try:
        pwd.getpwnam(student)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", student], check=True)
    shared = shared_tiny_course("academy-size-test-")
    try:
        layout = make_layout(shared / "course", tmp_path / "state", shared / "exchange")
        where = ["course", "--course-dir", str(layout.course_dir), "--exchange-dir", str(layout.exchange_dir)]
        root_where = where + ["--state-dir", str(layout.state_dir)]
        for step in (["setup", "--students", student], ["release", "t1"]):
            proc = run_academy(*root_where, *step)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        home = shared / "home"  # under the world-traversable shared folder
        home.mkdir()
        entry = pwd.getpwnam(student)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        proc = run_academy(*where, "fetch", "t1", user=student, cwd=str(home))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        big = home / "t1" / "dataset.bin"
        with open(big, "wb") as fh:
            fh.truncate(limits.SUBMISSION_MAX_BYTES + 1)
        os.chown(big, entry.pw_uid, entry.pw_gid)
        proc = run_academy(*where, "submit", "t1", user=student, cwd=str(home))
        assert proc.returncode != 0
        rule = f"the limit is {limits.SUBMISSION_MAX_FILES} files and {limits.SUBMISSION_MAX_BYTES // 2**20} MiB in all"
        said = " ".join((proc.stdout + proc.stderr).split())
        assert "submission too large" in said and rule in said, said
        assert not (exchange.course_root(layout) / "inbound" / student / "t1").exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
