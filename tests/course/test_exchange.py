"""The exchange with two real Unix students: private submissions, system-taken timestamps, safe collect."""
from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from support.skip import need

from academy.course.exchange import course_root

from testbed import tiny_course
from support.course import make_layout, run_academy, shared_tiny_course

STUDENTS = ("academy-s1", "academy-s2")


def _as(user: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def students():
    need(os.geteuid() == 0 and shutil.which("runuser") is not None, "root and runuser (two real Unix users)")
    for name in STUDENTS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    probe = _as(STUDENTS[0], "id", "-un")
    need(probe.returncode == 0, "running commands as a test student")
    return STUDENTS


@pytest.fixture(scope="module")
def course(tmp_path_factory, students, grader_account):
    """A world-readable tiny course and exchange, root-private state; set up and released via the CLI."""
    shared = shared_tiny_course("academy-exchange-test-")
    layout = make_layout(shared / "course", tmp_path_factory.mktemp("state"), shared / "exchange")
    where = ["course", "--course-dir", str(layout.course_dir), "--exchange-dir", str(layout.exchange_dir)]
    root_where = where + ["--state-dir", str(layout.state_dir)]
    proc = run_academy(*root_where, "setup", "--students", ",".join(students))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_academy(*root_where, "release", "t1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    probe = run_academy(*where, "--help", user=students[0])
    need(probe.returncode == 0, f"the academy CLI runnable by a student: {probe.stderr[-300:]}")
    yield layout, where, root_where
    shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture(scope="module")
def submitted(course, students):
    """Both students fetch, answer (s1 right, s2 wrong), forge their clocks, and submit; then root collects."""
    layout, where, root_where = course
    started = dt.datetime.now(dt.timezone.utc)
    answers = {students[0]: tiny_course.SOLUTIONS, students[1]: tiny_course.WRONG}
    for student, ans in answers.items():
        home = Path(pwd.getpwnam(student).pw_dir)
        shutil.rmtree(home / "t1", ignore_errors=True)
        proc = run_academy(*where, "fetch", "t1", user=student, cwd=str(home))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        work = home / "t1"
        nb = tiny_course.make_submission(work / "problems.ipynb", ans)
        text = nbformat.writes(nb)
        (work / "problems.ipynb").write_text(text)
        os.chown(work / "problems.ipynb", pwd.getpwnam(student).pw_uid, pwd.getpwnam(student).pw_gid)
        forged = _as(student, "sh", "-c", f"echo '2000-01-01 00:00:00.000000 UTC' > {work}/timestamp.txt && "
                                          f"touch -d '2000-01-01 00:00' {work}/*")
        assert forged.returncode == 0, forged.stderr
        proc = run_academy(*where, "submit", "t1", user=student, cwd=str(home))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # the forged mtime even survives into the exchange copy when the student re-touches it there
        _as(student, "sh", "-c", f"touch -d '2000-01-01 00:00' {course_root(layout)}/inbound/{student}/t1/*")
    proc = run_academy(*root_where, "collect", "t1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return layout, started, answers


@pytest.mark.grading
def test_students_cannot_list_or_read_each_others_submissions(submitted, students):
    """Can a student list the inbound folder, or list, read or write another student's submission?"""
    layout, _, _ = submitted
    inbound = course_root(layout) / "inbound"
    mine, other = students[1], students[0]
    theirs = inbound / other / "t1" / "problems.ipynb"
    assert theirs.exists()
    assert _as(mine, "ls", str(inbound)).returncode != 0
    assert _as(mine, "ls", str(inbound / other)).returncode != 0
    assert _as(mine, "cat", str(theirs)).returncode != 0
    assert _as(mine, "touch", str(inbound / other / "planted")).returncode != 0
    assert _as(mine, "ls", str(inbound / mine / "t1")).returncode == 0
    assert _as(other, "cat", str(theirs)).returncode == 0
    assert _as(mine, "touch", str(course_root(layout) / "outbound" / "t1" / "problems.ipynb")).returncode != 0


@pytest.mark.grading
def test_submission_time_is_taken_by_the_system(submitted, students):
    """Is the collected timestamp the system's time of submission, whatever clock the student forged?"""
    layout, started, _ = submitted
    for student in students:
        stamp = (layout.step_dir("submitted", student, "t1") / "timestamp.txt").read_text()
        when = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=dt.timezone.utc)
        assert started - dt.timedelta(seconds=5) <= when <= dt.datetime.now(dt.timezone.utc)
        receipt = json.loads((layout.root / "receipts" / "t1" / f"{student}.json").read_text())
        assert "timestamp.txt" not in receipt["files"] and "problems.ipynb" in receipt["files"]


@pytest.mark.grading
def test_collect_ignores_links_and_fifos_planted_by_a_student(course, submitted, students):
    """If a student plants a symlink to a secret and a FIFO in their folder, does collect stay safe?"""
    layout, _, root_where = course
    student = students[1]
    box = course_root(layout) / "inbound" / student / "t1"
    assert _as(student, "ln", "-s", "/etc/shadow", str(box / "shadow.ipynb")).returncode == 0
    assert _as(student, "ln", "-s", layout.db_url[len("sqlite:///"):], str(box / "gradebook.db")).returncode == 0
    assert _as(student, "mkfifo", str(box / "pipe")).returncode == 0
    start = time.monotonic()
    proc = run_academy(*root_where, "collect", "t1", "--students", student, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.monotonic() - start < 30
    collected = layout.step_dir("submitted", student, "t1")
    assert sorted(p.name for p in collected.iterdir()) == ["problems.ipynb", "timestamp.txt"]


@pytest.mark.grading
def test_feedback_reaches_only_its_student(course, submitted, students):
    """After autograde and feedback, can each student read their own feedback and not the other's?"""
    layout, _, root_where = course
    _, _, answers = submitted
    proc = run_academy(*root_where, "autograde", "t1", "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_academy(*root_where, "feedback", "t1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    box = course_root(layout) / "feedback"
    for student in students:
        other = [s for s in students if s != student][0]
        mine = box / student / "t1" / "problems.html"
        read = _as(student, "cat", str(mine))
        assert read.returncode == 0 and "problems" in read.stdout
        assert tiny_course.HIDDEN_LINE not in read.stdout
        assert _as(student, "cat", str(box / other / "t1" / "problems.html")).returncode != 0
    from nbgrader.api import Gradebook
    with Gradebook(layout.db_url) as gb:
        got = {s.student.id: s.score for s in gb.find_assignment("t1").submissions}
    assert got == {s: tiny_course.expected_score(a) for s, a in answers.items()}


def test_course_status_tells_a_student_what_they_can_do(course, students):
    """Does `academy course status` as a student name fetch, submit and their feedback folder (exit 2), not a raw
    "Permission denied", while the trainer still gets the table?"""
    layout, where, root_where = course
    proc = run_academy(*where, "--state-dir", str(layout.state_dir), "status", user=students[0])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr
    assert "Traceback" not in message and "Errno" not in message, message
    assert "is for its trainers" in message and "released: t1" in message, message
    assert "academy course fetch ASSIGNMENT" in message and "academy course submit ASSIGNMENT" in message, message
    assert f"{course_root(layout)}/feedback/{students[0]}/ASSIGNMENT/" in message, message
    trainer = run_academy(*root_where, "status")
    assert trainer.returncode == 0 and "t1" in trainer.stdout, trainer.stdout + trainer.stderr
