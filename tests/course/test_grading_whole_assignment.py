"""Grading sees the whole assignment: data in sub-folders, a custom source folder, hostile trees, exit codes.

One module-scoped run: the data course (testbed/data_course.py, sources in ``instructor/``) is graded by
stock serial ``nbgrader autograde`` and by ``academy course autograde --jobs 2`` (the CLI, for its exit
code), then ``academy course feedback`` runs on ours.
"""
from __future__ import annotations

import os

import pytest

from academy.course import release
from academy.course.grading import limits

from testbed import data_course
from support.course import gradebook_rows, make_layout, place_submission, run_academy, scores, stock_autograde

A = data_course.ASSIGNMENT
NB = f"{data_course.NOTEBOOK}.ipynb"
HONEST = ("ann", "ben")


def _submissions(layout) -> None:
    released = layout.step_dir("release", ".", A) / NB
    answer = data_course.make_submission(released)
    for student, folder in (("ann", "work"), ("ben", "data")):
        (layout.step_dir("submitted", student, A) / folder).mkdir(parents=True)
    place_submission(layout, "ann", A, {NB: answer, data_course.ANSWER_FILE: data_course.ANSWER})
    # A file named like a released one: nbgrader restores the course's version before grading.
    place_submission(layout, "ben", A, {NB: answer, "data/n.txt": "100\n"})


def _hostile(layout) -> None:
    released = layout.step_dir("release", ".", A) / NB
    answer = data_course.make_submission(released)
    cat = place_submission(layout, "cat", A, {NB: answer, "...": "dots are a name, not a way up"})
    (cat / "work").mkdir()
    # A link to another student's file (the answer cat did not write), and one out of the course.
    os.symlink(layout.step_dir("submitted", "ann", A) / data_course.ANSWER_FILE, cat / data_course.ANSWER_FILE)
    os.symlink("/etc", cat / "etc")
    # A folder named like the notebook, holding the notebook: nothing to grade, and it must say so.
    eve = layout.step_dir("submitted", "eve", A) / NB
    eve.mkdir(parents=True)
    place_submission(layout, "eve", A, {f"{NB}/{NB}": answer})
    dan = place_submission(layout, "dan", A, {NB: answer})
    (dan / "many").mkdir()
    for i in range(limits.SUBMISSION_MAX_FILES + 1):
        (dan / "many" / f"{i}.txt").write_text("x")


@pytest.fixture(scope="module")
def data_course_graded(tmp_path_factory, grader_account):
    """The data course graded by stock nbgrader (honest students) and by our CLI (everyone)."""
    base = tmp_path_factory.mktemp("data_course")
    data_course.write_source(base / "course")
    layouts = {}
    for name in ("stock", "ours"):
        layout = make_layout(base / "course", base / name)
        release.release(layout, A, publish=False)
        _submissions(layout)
        layouts[name] = layout
    _hostile(layouts["ours"])
    stock = stock_autograde(layouts["stock"], A)
    assert stock.returncode == 0, stock.stderr[-2000:]
    where = ["course", "--course-dir", str(base / "course"), "--state-dir", str(layouts["ours"].state_dir)]
    autograde = run_academy(*where, "autograde", A, "--jobs", "2")
    feedback = run_academy(*where, "feedback", A, "--no-return")
    return layouts, autograde, feedback


@pytest.mark.grading
def test_sub_folder_data_and_source_directory_grade_as_stock_nbgrader(data_course_graded):
    """Do data files in sub-folders, from a custom source_directory, score exactly as stock nbgrader, field by field?"""
    layouts, autograde, _ = data_course_graded
    assert layouts["ours"].source_dir == layouts["ours"].course_dir / data_course.SOURCE_DIRECTORY
    stock = gradebook_rows(layouts["stock"].db_url, A)
    ours = {k: v for k, v in gradebook_rows(layouts["ours"].db_url, A).items() if k[0] in HONEST}
    assert len(stock) >= 2 * 4 and ours == stock
    assert scores(layouts["stock"].db_url, A) == {"ann": 3.0, "ben": 2.0}  # ben's own data/n.txt was replaced
    assert "ann" in autograde.stdout and "3/3" in autograde.stdout, autograde.stdout


@pytest.mark.grading
def test_links_are_ignored_and_huge_trees_or_notebook_folders_refused(data_course_graded):
    """Are links (to another student's file) left out and named; a huge tree or a notebook-named folder refused?"""
    layouts, autograde, _ = data_course_graded
    got = scores(layouts["ours"].db_url, A)
    assert got["cat"] == 2.0  # the data test passes; ann's answer file never reached cat's sandbox
    assert got["dan"] == got["eve"] == 0.0
    out = " ".join(autograde.stdout.split())
    assert "2 link(s) or special file(s) in the submission were ignored" in out, autograde.stdout
    assert "submission too large" in out, autograde.stdout
    assert "a submitted notebook's name is a folder, not a notebook file" in out, autograde.stdout
    assert (layouts["ours"].step_dir("submitted", "ann", A) / data_course.ANSWER_FILE).read_text() == data_course.ANSWER
    # Nothing lost: the refused submissions stay collected as they were, for the trainer to look at.
    kept = layouts["ours"].step_dir("submitted", "dan", A) / "many"
    assert len(list(kept.iterdir())) == limits.SUBMISSION_MAX_FILES + 1
    assert (layouts["ours"].step_dir("submitted", "cat", A) / data_course.ANSWER_FILE).is_symlink()


@pytest.mark.grading
def test_autograde_and_feedback_exit_1_naming_the_ungraded_submission(data_course_graded):
    """Do `course autograde` and `course feedback` both exit 1 and name the submission that could not be graded?"""
    _, autograde, feedback = data_course_graded
    assert autograde.returncode == 1, autograde.stdout + autograde.stderr
    last = autograde.stderr.strip().splitlines()[-1]
    assert last == "academy course autograde: 2 of 5 submission(s) failed to grade: dan, eve", autograde.stderr
    assert feedback.returncode == 1, feedback.stdout + feedback.stderr
    last = feedback.stderr.strip().splitlines()[-1]
    assert last == ("academy course feedback: no feedback returned for 2 student(s): "
                    "dan (not graded), eve (not graded)"), feedback.stderr
    assert "generated" in feedback.stdout

