"""The `academy course` pipeline: parallel autograde vs stock nbgrader, gradebook integrity, feedback, export."""
from __future__ import annotations

import csv
import shutil
import sqlite3

import pytest

from academy.course import hidden, release
from academy.course.autograde import AutogradeRequest, autograde
from academy.course.grading.slurm import SlurmBackend
from academy.course.grading.jobs import JobSpec

from testbed import course_golden
from testbed import tiny_course
from support.course import (A1, gradebook_rows, make_layout, place_submission, run_academy, scores, stock_autograde,
                      tiny_release_nb, REPO)

A1_CASES = course_golden.GOLDEN_CASES[A1]


@pytest.fixture(scope="module")
def a1_graded(tmp_path_factory, grader_account):
    """The a1 golden submissions graded twice: stock serial nbgrader and `autograde --jobs 2`."""
    base = tmp_path_factory.mktemp("a1")
    layouts = {}
    for name in ("stock", "parallel"):
        layout = make_layout(REPO / "course", base / name)
        release.release(layout, A1, publish=False)
        released = layout.step_dir("release", ".", A1) / f"{A1}.ipynb"
        for case in A1_CASES:
            place_submission(layout, case.student, A1, {f"{A1}.ipynb": course_golden.build_submission(case, released)})
        layouts[name] = layout
    proc = stock_autograde(layouts["stock"], A1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = autograde(layouts["parallel"], AutogradeRequest(A1, jobs=2))
    return layouts, reports


@pytest.mark.grading
def test_parallel_autograde_equals_serial_nbgrader(a1_graded):
    """Does `autograde --jobs 2` write exactly what serial `nbgrader autograde` writes, field by field?"""
    layouts, reports = a1_graded
    assert {r.status for r in reports} == {"graded"}, [r.message for r in reports]
    stock = gradebook_rows(layouts["stock"].db_url, A1)
    parallel = gradebook_rows(layouts["parallel"].db_url, A1)
    assert len(stock) > len(A1_CASES) * 5
    assert parallel == stock


@pytest.mark.grading
def test_parallel_autograde_gives_golden_scores(a1_graded):
    """Do the golden submissions (solution, blank, partials) get their hand-computed scores in parallel?"""
    layouts, reports = a1_graded
    expected = {case.student: case.expected_score for case in A1_CASES}
    assert scores(layouts["parallel"].db_url, A1) == pytest.approx(expected)
    assert {r.student: r.score for r in reports} == pytest.approx(expected)


@pytest.mark.grading
def test_a1_feedback_has_no_hidden_tests(a1_graded):
    """Does feedback for every a1 submission render without a single hidden-test line?"""
    from academy.course.feedback import feedback
    layouts, _ = a1_graded
    layout = layouts["parallel"]
    results = feedback(layout, A1, send=False)
    assert [r.status for r in results] == ["generated"] * len(A1_CASES)
    lines = hidden.hidden_lines(layout.db_url, A1)
    assert len(lines) > 10
    for result in results:
        text = hidden.html_text(result.files[0].read_text())
        assert hidden.find_leaks(text, lines) == []
        assert "BEGIN HIDDEN TESTS" not in text
    naive = next(r for r in results if r.student == "naive_softmax")
    assert "Tests failed: AssertionError" in hidden.html_text(naive.files[0].read_text())


@pytest.mark.grading
def test_gradebook_stays_consistent_on_regrade(tiny):
    """Does regrading keep a trainer's manual score, add no duplicate rows and leave SQLite intact?"""
    from nbgrader.api import Gradebook
    released = tiny_release_nb(tiny)
    answers = {"alice": tiny_course.SOLUTIONS, "bob": {"squares": tiny_course.SOLUTIONS["squares"]}}
    for student, ans in answers.items():
        place_submission(tiny, student, "t1", {"problems.ipynb": tiny_course.make_submission(released, ans)})
    first = autograde(tiny, AutogradeRequest("t1", jobs=2))
    assert {r.student: r.score for r in first} == {s: tiny_course.expected_score(a) for s, a in answers.items()}
    with Gradebook(tiny.db_url) as gb:
        gb.find_grade("test_mean", "problems", "t1", "bob").manual_score = 1.5
        gb.db.commit()
    second = autograde(tiny, AutogradeRequest("t1", jobs=2))
    assert [r.status for r in second] == ["graded", "graded"]
    with Gradebook(tiny.db_url) as gb:
        grade = gb.find_grade("test_mean", "problems", "t1", "bob")
        assert grade.manual_score == 1.5 and grade.needs_manual_grade
        assert len(gb.find_assignment("t1").submissions) == 2
    db = sqlite3.connect(tiny.db_url[len("sqlite:///"):])
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT COUNT(*) FROM grade").fetchone()[0] == 2 * len(tiny_course.TESTS)


@pytest.mark.grading
def test_cli_runs_the_whole_pipeline(tiny):
    """Do `academy course autograde/feedback/export/status` work end to end from the command line?"""
    released = tiny_release_nb(tiny)
    answers = {"ann": tiny_course.SOLUTIONS, "ben": tiny_course.WRONG,
               "cas": {"squares": tiny_course.WRONG["squares"], "mean": tiny_course.SOLUTIONS["mean"]}}
    for student, ans in answers.items():
        place_submission(tiny, student, "t1", {"problems.ipynb": tiny_course.make_submission(released, ans)})
    where = ["course", "--course-dir", str(tiny.course_dir), "--state-dir", str(tiny.state_dir)]
    proc = run_academy(*where, "autograde", "t1", "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 graded, 0 failed" in proc.stdout
    proc = run_academy(*where, "feedback", "t1", "--no-return")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (tiny.step_dir("feedback", "ben", "t1") / "problems.html").read_text()
    assert tiny_course.HIDDEN_LINE not in hidden.html_text(html)
    proc = run_academy(*where, "export", "--out", str(tiny.state_dir / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tiny.state_dir / "out" / "grades.csv") as fh:
        grades = {row["student_id"]: float(row["score"]) for row in csv.DictReader(fh)}
    assert grades == {s: tiny_course.expected_score(a) for s, a in answers.items()}
    with open(tiny.state_dir / "out" / "tests.csv") as fh:
        tests = list(csv.DictReader(fh))
    assert len(tests) == len(answers) * len(tiny_course.TESTS)
    cas = {row["grade_id"]: float(row["score"]) for row in tests if row["student_id"] == "cas"}
    assert cas == {"test_squares": 0.0, "test_mean": 3.0, "test_mean_empty": 1.0}
    assert {row["status"] for row in tests} == {"graded"}
    proc = run_academy(*where, "status")
    assert proc.returncode == 0 and "t1" in proc.stdout and "3" in proc.stdout


@pytest.mark.grading
def test_release_refuses_a_leaky_notebook(tiny):
    """Does the release check stop a student version that still contains hidden tests?"""
    rel_dir = tiny.step_dir("release", ".", "t1")
    assert release.check_release(tiny, "t1", rel_dir) == ["problems"]
    shutil.copyfile(tiny.source_dir / "t1" / "problems.ipynb", rel_dir / "problems.ipynb")
    with pytest.raises(release.ReleaseError, match="would leak hidden tests"):
        release.check_release(tiny, "t1", rel_dir)


def test_cli_rejects_path_like_ids(tmp_path):
    """Is an assignment id that could escape a folder refused with one clear line and exit code 2?"""
    tiny_course.write_source(tmp_path / "course")
    proc = run_academy("course", "--course-dir", str(tmp_path / "course"), "--state-dir", str(tmp_path / "s"),
                       "autograde", "../t1")
    assert proc.returncode == 2
    assert "academy course autograde: invalid assignment '../t1'" in proc.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.db"))


def test_slurm_array_script_and_arguments(tmp_path):
    """Does the Slurm backend render one array task per submission, quoted, and refuse unsafe options?"""
    backend = SlurmBackend(extra_options=["--partition=grading", "--account=course-101"])
    run_dir = str(tmp_path / "run dir")
    script = backend.render(run_dir, tasks=40, parallel=8, deadline_s=330)
    assert "#SBATCH --array=0-39%8" in script
    assert "#SBATCH --time=6" in script
    assert "#SBATCH --partition=grading" in script and "#SBATCH --account=course-101" in script
    assert f"-m academy.course.grading.worker '{run_dir}'/task-\"${{SLURM_ARRAY_TASK_ID}}\".json" in script
    assert backend.sbatch_argv("/x/autograde.sbatch") == ["sbatch", "--parsable", "/x/autograde.sbatch"]
    with pytest.raises(Exception, match="unsafe option"):
        SlurmBackend(extra_options=["--partition=x; rm -rf /"])
    spec = JobSpec(student="ann", assignment="t1", submitted_dir="/s", job_dir=str(tmp_path), snapshot_db="/d",
                   config_file="/c", sandbox_user="ann", settings={"Execute.timeout": 5})
    spec.dump(str(tmp_path / "task-0.json"))
    assert JobSpec.load(str(tmp_path / "task-0.json")) == spec


@pytest.mark.grading
def test_cli_exits_1_when_a_submission_fails_to_grade(tiny):
    """Does `course autograde` exit 1 and name the broken submission on stderr, while the good one is still graded?"""
    released = tiny_release_nb(tiny)
    place_submission(tiny, "ann", "t1", {"problems.ipynb": tiny_course.make_submission(released, tiny_course.SOLUTIONS)})
    place_submission(tiny, "ben", "t1", {"problems.ipynb": "{ this is not a notebook"})
    where = ["course", "--course-dir", str(tiny.course_dir), "--state-dir", str(tiny.state_dir)]
    proc = run_academy(*where, "autograde", "t1", "--jobs", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 graded, 1 failed" in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("academy course autograde: 1 of 2 submission(s) failed to grade") and "ben" in last, proc.stderr
    assert scores(tiny.db_url, "t1")["ann"] == tiny_course.expected_score(tiny_course.SOLUTIONS)
