"""Parallel autograding: fan collected submissions out to sandboxed workers, merge results one at a time.

Design (see course/README.md "Pipeline internals"):

1. The parent adds every student to the real gradebook, then takes ONE snapshot of it.
2. Each submission becomes a :class:`~academy.course.grading.jobs.JobSpec`; a worker runs nbgrader's
   unmodified ``Autograde`` converter on its own copy of the snapshot and of the submission
   (local backend: :mod:`academy.course.grading.pool`; Slurm: :mod:`academy.course.grading.slurm`, one array task each).
3. As each job ends, the parent (the only writer) merges its results into the real gradebook with
   :mod:`academy.course.grading.merge`, installs its ``autograded/`` folder and writes its report.

Because every worker executes the same nbgrader code on the same inputs, scores equal those of a
serial ``nbgrader autograde``; because only the parent writes, and one submission per transaction,
the gradebook is never written concurrently.  A job that fails or overruns its deadline gets the
defined failure result (0 on autograded parts, flagged for manual grading) and a one-line reason.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import parse_utc

from academy.course import reports
from academy.course.grading import cleanup, merge
from academy.course.grading.cleanup import cleanup_job
from academy.course.grading.jobs import JobResult, JobSpec, job_paths
from academy.course.grading.pool import JobOutcome, run_local
from academy.course.grading.sandbox import SandboxPolicy
from academy.course.layout import CourseLayout, LayoutError, check_id
from academy.course.reports import SubmissionReport


@dataclass
class AutogradeRequest:
    """One ``academy course autograde`` invocation."""

    assignment: str
    jobs: int = 2
    backend: str = "local"  # "local" or "slurm"
    students: list[str] = field(default_factory=list)  # empty: every collected submission
    settings: dict = field(default_factory=dict)  # "Class.trait" overrides for workers (limits, timeouts)
    slack_s: float = 60.0  # deadline beyond the notebooks' own wall-time limits


def collected_students(layout: CourseLayout, assignment: str) -> list[str]:
    base = layout.root / "submitted"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir() and not p.name.startswith("."))


def _notebook_count(layout: CourseLayout, assignment: str) -> int:
    with Gradebook(layout.db_url) as gb:
        try:
            return max(1, len(gb.find_assignment(assignment).notebooks))
        except MissingEntry:
            raise LayoutError(
                f"assignment {assignment!r} is not in the gradebook; run `academy course release {assignment}` first"
            ) from None


def _deadline(layout: CourseLayout, request: AutogradeRequest, notebooks: int) -> float:
    cfg = layout.nbgrader_config()
    per_notebook = request.settings.get("SandboxKernelManager.notebook_time_limit",
                                        cfg.SandboxKernelManager.get("notebook_time_limit", 300))
    return float(per_notebook) * notebooks + request.slack_s


def _timestamp(layout: CourseLayout, student: str, assignment: str):
    path = layout.step_dir("submitted", student, assignment) / "timestamp.txt"
    try:
        return parse_utc(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _finish(layout: CourseLayout, request: AutogradeRequest, outcome: JobOutcome,
            gb: Gradebook) -> SubmissionReport:
    spec = outcome.spec
    paths = job_paths(spec.job_dir)
    result = None
    if os.path.exists(paths["result"]):
        result = JobResult.load(paths["result"])
    if result is None or outcome.timed_out:
        message = (f"grading took longer than its {outcome.seconds:.0f} s deadline and was stopped"
                   if outcome.timed_out else f"grading process ended without a result (exit code {outcome.exitcode})")
        result = JobResult(student=spec.student, assignment=spec.assignment, status="failed", message=message)
    real_autograded = str(layout.step_dir("autograded", spec.student, spec.assignment))
    if result.status == "graded":
        try:
            score = merge.merge_submission(gb, paths["db"], spec.assignment, spec.student)
            merge.install_autograded(os.path.join(paths["root"], "autograded", spec.student, spec.assignment),
                                     real_autograded)
        except Exception as exc:  # a merge failure must not stop the other submissions
            result.status, result.message = "failed", f"could not merge results: {type(exc).__name__}: {exc}"
    if result.status != "graded":
        score = merge.record_failure(gb, spec.assignment, spec.student,
                                     _timestamp(layout, spec.student, spec.assignment))
        if os.path.exists(real_autograded):
            shutil.rmtree(real_autograded)  # stale output of an earlier run must not become feedback
    cleanup_job(spec)  # a killed or crashed worker leaves its kernel's folder and cgroup: remove them now
    message = result.message or "; ".join(result.notes)
    if result.flags and not result.message:
        message = "flagged for the trainer: it changed what the tests rely on" + (f"; {message}" if message else "")
    report = SubmissionReport(student=spec.student, assignment=spec.assignment, status=result.status,
                              message=message[:500], score=score.score, max_score=score.max_score,
                              seconds=outcome.seconds, backend=request.backend, flags=result.flags,
                              notes=result.notes, traceback=result.traceback)
    reports.save(layout, report)
    return report


def autograde(layout: CourseLayout, request: AutogradeRequest,
              on_report: Callable[[SubmissionReport], None] | None = None,
              on_start: Callable[[int], None] | None = None) -> list[SubmissionReport]:
    """Grade the collected submissions of one assignment; returns one report per submission."""
    check_id(request.assignment, "assignment")
    if request.backend not in {"local", "slurm"}:
        raise LayoutError(f"unknown backend {request.backend!r}; use 'local' or 'slurm'")
    layout.ensure()
    notebooks = _notebook_count(layout, request.assignment)
    students = request.students or collected_students(layout, request.assignment)
    for student in students:
        check_id(student, "student id")
        if not layout.step_dir("submitted", student, request.assignment).is_dir():
            raise LayoutError(f"no collected submission of {request.assignment!r} for {student!r}; run collect first")
    policy = SandboxPolicy(config=layout.nbgrader_config())
    policy.check_tools()
    if request.backend == "local":
        policy.resolve_user(request.settings.get("SandboxKernelManager.sandbox_user") or None)
    if on_start:
        on_start(len(students))
    if not students:
        return []

    with Gradebook(layout.db_url) as gb:  # students first, so every snapshot already has them
        for student in students:
            gb.update_or_create_student(student)
    tmp_base = layout.state_dir / "tmp"
    tmp_base.mkdir(exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix=f"autograde-{request.assignment}-", dir=tmp_base)
    scratch = cleanup.make_run_scratch() if request.backend == "local" else None
    previous = cleanup.sigterm_as_exit()  # so the finally below also runs when the batch is terminated
    outcomes = None
    try:
        snapshot = os.path.join(run_dir, "snapshot.db")
        merge.snapshot(layout.db_url, snapshot)
        specs = []
        for number, student in enumerate(students):
            settings = dict(request.settings)
            if request.backend == "slurm":
                settings.setdefault("SandboxKernelManager.sandbox_user", student)  # the student's own uid
            if scratch:
                settings.update(cleanup.job_scratch(scratch, number))
            specs.append(JobSpec(
                student=student, assignment=request.assignment,
                submitted_dir=str(layout.step_dir("submitted", student, request.assignment)),
                job_dir=os.path.join(run_dir, student), snapshot_db=snapshot,
                config_file=str(layout.config_file), settings=settings))
        for spec in specs:
            os.makedirs(spec.job_dir)
        deadline = _deadline(layout, request, notebooks)
        if request.backend == "local":
            outcomes = run_local(specs, request.jobs, deadline)
        else:
            from academy.course.grading.slurm import SlurmBackend, run_array
            backend = SlurmBackend(config=layout.nbgrader_config())  # partition, account, memory per task
            outcomes = run_array(specs, run_dir, request.jobs, deadline, backend)
        done = []
        with Gradebook(layout.db_url) as gb:  # the single writer's one connection for the whole batch
            for outcome in outcomes:
                report = _finish(layout, request, outcome, gb)
                done.append(report)
                if on_report:
                    on_report(report)
        return sorted(done, key=lambda r: r.student)
    finally:
        if hasattr(outcomes, "close"):
            outcomes.close()  # stops the workers (and their kernels) before their folders go
        shutil.rmtree(run_dir, ignore_errors=True)
        if scratch:
            cleanup.remove_run_scratch(scratch)
        cleanup.restore_sigterm(previous)
