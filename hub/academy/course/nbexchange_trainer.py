"""nbgrader's trainer-side exchange plugins on our exchange: release, collect and release feedback.

Registered in the course root's generated ``nbgrader_config.py`` (:mod:`academy.course.layout`), so
stock ``nbgrader release_assignment``, ``collect`` and ``release_feedback`` run there as root go
through :func:`~academy.course.exchange.publish`, ``collect_one`` (the system-taken timestamp) and
``return_feedback`` (each student's feedback readable by them alone), exactly like ``academy course``.
The learner side is :mod:`academy.course.nbexchange`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from nbgrader.exchange import default

from academy.course import exchange
from academy.course.layout import CourseLayout
from academy.course.nbexchange import AcademyExchange, exchange_layout


def _course_layout(ex: default.Exchange) -> CourseLayout:
    """The pipeline's layout from a trainer-side nbgrader run in the generated course root (state/course)."""
    return exchange_layout(ex.root, ex.coursedir.course_id, str(Path(ex.coursedir.root).parent))


class AcademyReleaseAssignment(AcademyExchange, default.ExchangeReleaseAssignment):
    """``nbgrader release_assignment``: publish root-owned and world-readable (run as root)."""

    def init_dest(self):
        self.check(self.coursedir.course_id, "course id")
        self.check(self.coursedir.assignment_id, "assignment")

    def copy_files(self):
        try:
            dest = exchange.publish(_course_layout(self), self.coursedir.assignment_id, Path(self.src_path))
        except exchange.ExchangeError as exc:
            self.fail(str(exc))
        self.log.info("Released as: %s %s (%s)", self.coursedir.course_id, self.coursedir.assignment_id, dest)


class AcademyCollect(AcademyExchange, default.ExchangeCollect):
    """``nbgrader collect``: root copies each student's folder in, with the system-taken timestamp."""

    def init_src(self):
        self.check(self.coursedir.course_id, "course id")
        self.check(self.coursedir.assignment_id, "assignment")

    def init_dest(self):
        pass

    def copy_files(self):
        layout = _course_layout(self)
        wanted = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else None
        for student in [wanted] if wanted else exchange.inbound_students(layout):
            try:
                receipt = exchange.collect_one(layout, self.coursedir.assignment_id, self.check(student, "student id"))
            except exchange.ExchangeError as exc:
                self.log.error("%s", exc)
                continue
            if receipt:
                self.log.info("Collected %s %s (%s)", student, receipt.assignment, receipt.submitted_at)


class AcademyReleaseFeedback(AcademyExchange, default.ExchangeReleaseFeedback):
    """``nbgrader release_feedback``: each student's HTML (and the graded submission's time) to them alone."""

    def init_dest(self):
        self.check(self.coursedir.course_id, "course id")

    def copy_files(self):
        layout = _course_layout(self)
        base = Path(self.coursedir.root) / self.coursedir.feedback_directory
        aid = self.check(self.coursedir.assignment_id, "assignment")
        for folder in sorted(base.glob(f"*/{aid}")):
            student = self.check(folder.parent.name, "student id")
            files = sorted(folder.glob("*.html")) + [p for p in [folder / "timestamp.txt"] if p.is_file()]
            exchange.return_feedback(layout, aid, student, files)
            self.log.info("Released feedback to %s for %s", student, aid)


def publish_due_date(layout: CourseLayout, assignment: str) -> None:
    """Beside a released assignment, the due date nbgrader's gradebook holds for it (read by the panel's list)."""
    from nbgrader.api import Gradebook, MissingEntry
    try:
        with Gradebook(layout.db_url, layout.course_id) as gb:
            due = gb.find_assignment(assignment).duedate
    except MissingEntry:
        due = None
    target = exchange.course_root(layout) / "outbound" / f".{assignment}.json"
    target.write_text(json.dumps({"duedate": due.replace(tzinfo=dt.timezone.utc).isoformat() if due else None}))
    os.chmod(target, 0o644)


def trainer_config() -> str:
    """Lines for the course root's generated nbgrader_config.py that register these plugins."""
    return "\n".join(f"c.ExchangeFactory.{name} = {f'{__name__}.{cls.__name__}'!r}" for name, cls in
                     (("release_assignment", AcademyReleaseAssignment), ("collect", AcademyCollect),
                      ("release_feedback", AcademyReleaseFeedback)))
