"""The local grading pool on its own: deadlines, dead workers and recycling, with real worker processes.

The jobs here run :func:`fake_grader` instead of nbgrader: a grader that hangs or dies in the middle of a
job cannot be produced on demand with real submissions (the sandbox's own limits stop student code first),
so these stand-ins are the only way to reach the pool's own kill and replace paths.  Everything else is
real: the forkserver, the worker processes, the pipes and the process-group kills.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest
from support.process import exited

from academy.course.grading import pool
from academy.course.grading.jobs import JobSpec


@dataclass
class FakeResult:
    status: str


def fake_grader(spec: JobSpec) -> FakeResult:
    """Behaves according to the student id: ok*, fail*, hang*, crash*; records which process graded it."""
    with open(os.path.join(spec.job_dir, "pid"), "w") as fh:
        fh.write(str(os.getpid()))
    kind = spec.student.rstrip("0123456789")
    if kind == "hang":
        time.sleep(600)
    if kind == "crash":
        os._exit(7)
    with open(os.path.join(spec.job_dir, "done"), "w") as fh:
        fh.write(repr(time.time()))
    return FakeResult("graded" if kind == "ok" else "failed")


def specs(tmp_path, *students: str) -> list[JobSpec]:
    out = []
    for student in students:
        job_dir = tmp_path / student
        job_dir.mkdir()
        out.append(JobSpec(student=student, assignment="t1", submitted_dir="/nonexistent", job_dir=str(job_dir),
                           snapshot_db="/nonexistent", config_file="/nonexistent"))
    return out


def pid_of(tmp_path, student: str) -> int:
    return int((tmp_path / student / "pid").read_text())


@pytest.mark.grading
def test_a_hung_job_is_killed_at_its_deadline_and_the_rest_still_run(tmp_path):
    """Does a job that hangs get timed out at its deadline, its worker killed, while every other job finishes?"""
    jobs = specs(tmp_path, "ok1", "hang1", "ok2", "ok3", "fail1", "ok4")
    outcomes = {o.spec.student: o for o in pool.run_local(jobs, 2, deadline_s=3.0, runner=fake_grader)}
    assert sorted(outcomes) == sorted(s.student for s in jobs)
    hung = outcomes["hang1"]
    assert hung.timed_out and hung.exitcode is None and hung.seconds >= 3.0
    assert exited(pid_of(tmp_path, "hang1"))
    for student in ("ok1", "ok2", "ok3", "ok4"):
        assert outcomes[student].exitcode == 0 and not outcomes[student].timed_out
    assert outcomes["fail1"].exitcode == 1
    # Not held up: a job queued behind the hung one finished while it still hung (the other worker took
    # it), rather than after the kill. An order of events, not a wall-clock budget.
    killed_at = os.path.getmtime(tmp_path / "hang1" / "pid") + hung.seconds
    finished = min(float((tmp_path / s / "done").read_text()) for s in ("ok2", "ok3", "fail1", "ok4"))
    assert finished < killed_at, "every job behind the hung one waited for its kill"


@pytest.mark.grading
def test_a_worker_that_dies_loses_only_its_own_job(tmp_path):
    """Does a worker dying mid-job report that job with the exit code, and is it replaced for the next jobs?"""
    jobs = specs(tmp_path, "crash1", "ok1", "ok2", "ok3")
    outcomes = {o.spec.student: o for o in pool.run_local(jobs, 1, deadline_s=30.0, runner=fake_grader)}
    assert outcomes["crash1"].exitcode == 7 and not outcomes["crash1"].timed_out
    assert all(outcomes[s].exitcode == 0 for s in ("ok1", "ok2", "ok3"))
    assert pid_of(tmp_path, "ok1") != pid_of(tmp_path, "crash1")


@pytest.mark.grading
def test_workers_grade_many_jobs_and_are_recycled(tmp_path, monkeypatch):
    """Does one worker grade job after job, and get replaced after RECYCLE_AFTER jobs, with none left behind?"""
    monkeypatch.setattr(pool, "RECYCLE_AFTER", 3)
    students = [f"ok{i}" for i in range(7)]
    outcomes = list(pool.run_local(specs(tmp_path, *students), 1, deadline_s=30.0, runner=fake_grader))
    assert [o.spec.student for o in outcomes] == students and all(o.exitcode == 0 for o in outcomes)
    pids = [pid_of(tmp_path, s) for s in students]
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
    deadline = time.monotonic() + 5
    while not all(exited(p) for p in set(pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(exited(p) for p in set(pids)), "a grading worker outlived the batch"
