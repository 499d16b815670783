"""Status: one row per assignment showing how far it has come through the pipeline.

Counts come from the folders each step writes (release, exchange inbound, submitted, autograded,
feedback) and from the grading reports (graded, failed, mean score), so the table reflects what is
on disk now, not what a previous command claimed.
"""
from __future__ import annotations

from dataclasses import dataclass

from academy.course import exchange, reports
from academy.course.layout import CourseLayout


@dataclass
class AssignmentStatus:
    """Pipeline progress of one assignment."""

    assignment: str
    released: bool
    submitted: int | None  # None: the exchange is not readable by this user
    collected: int
    graded: int
    failed: int
    flagged: int  # graded, but it changed what tests rely on: a trainer should look
    feedback: int
    mean_score: float | None
    max_score: float | None


def _count(layout: CourseLayout, step: str, assignment: str) -> int:
    base = layout.root / step
    return sum(1 for p in base.iterdir() if (p / assignment).is_dir()) if base.is_dir() else 0


def assignment_status(layout: CourseLayout, assignment: str) -> AssignmentStatus:
    submitted = None
    try:
        inbound = exchange.course_root(layout) / "inbound"
        submitted = sum(1 for s in exchange.inbound_students(layout) if (inbound / s / assignment).is_dir())
    except (exchange.ExchangeError, PermissionError):
        pass
    recs = reports.load_all(layout, assignment).values()
    graded = [r for r in recs if r.status == "graded"]
    return AssignmentStatus(
        assignment=assignment,
        released=layout.step_dir("release", ".", assignment).is_dir(),
        submitted=submitted,
        collected=_count(layout, "submitted", assignment),
        graded=len(graded),
        failed=sum(1 for r in recs if r.status != "graded"),
        flagged=sum(1 for r in recs if r.flagged),
        feedback=_count(layout, "feedback", assignment),
        mean_score=round(sum(r.score for r in graded) / len(graded), 2) if graded else None,
        max_score=next((r.max_score for r in recs), None),
    )


def course_status(layout: CourseLayout) -> list[AssignmentStatus]:
    return [assignment_status(layout, a) for a in layout.assignments()]
