"""Status: one row per assignment showing how far it has come through the pipeline.

Counts come from the folders each step writes (release, exchange inbound, submitted, autograded,
feedback) and from the grading reports (graded, failed, mean score), so the table reflects what is
on disk now, not what a previous command claimed.  Only trainers can read those folders; a student who
asks gets :func:`student_help` (what a student can do instead) rather than a bare "Permission denied".
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


def student_help(layout: CourseLayout, denied: OSError) -> str:
    """What to tell someone who may not read the course's records: the student commands, with this course's values."""
    outbound = exchange.course_root(layout) / "outbound"
    try:
        released = sorted(p.name for p in outbound.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        released = []
    try:
        me = exchange._me()
    except ValueError:  # an account name the course would not accept as a student id
        me = "YOU"
    feedback = exchange.course_root(layout) / "feedback" / me
    return "\n".join([
        f"the status of course {layout.course_id} is for its trainers: its grading records are not readable by "
        f"you ({denied.filename or denied.strerror}). As a student you can:",
        f"  academy course fetch ASSIGNMENT    copy a released assignment into the current folder "
        f"(released: {', '.join(released) or 'none yet'})",
        "  academy course submit ASSIGNMENT   hand in ./ASSIGNMENT; submit again to replace it before the deadline",
        f"  feedback, once your trainer returns it: {feedback}/ASSIGNMENT/ (only you can read it; "
        f"`cp -r {feedback}/ASSIGNMENT ~/` puts it where JupyterLab opens it)",
    ])
