"""Per-submission grading reports: one JSON record per student and assignment, kept in the course root.

The gradebook holds scores; these records hold what the gradebook has no column for: whether the
submission was graded or failed, the one-line reason a trainer (and the student, via feedback) reads,
how long it took and which backend graded it.  ``export`` and ``status`` read them.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from academy.course.layout import CourseLayout


@dataclass
class SubmissionReport:
    """The outcome of autograding one submission."""

    student: str
    assignment: str
    status: str  # "graded" or "failed"
    message: str
    score: float
    max_score: float
    seconds: float
    backend: str
    flags: list = field(default_factory=list)  # tampering found: the submission is flagged for the trainer
    notes: list = field(default_factory=list)  # limits hit and cells ignored, in words
    traceback: str = ""  # why grading failed, as the trainer needs it (the job folder is deleted)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


def save(layout: CourseLayout, report: SubmissionReport) -> None:
    folder = layout.reports_dir(report.assignment)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{report.student}.json.tmp"
    tmp.write_text(json.dumps(asdict(report), indent=1))
    os.replace(tmp, folder / f"{report.student}.json")


def load_all(layout: CourseLayout, assignment: str) -> dict[str, SubmissionReport]:
    folder = layout.reports_dir(assignment)
    reports: dict[str, SubmissionReport] = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text())
            known = SubmissionReport.__dataclass_fields__
            reports[data["student"]] = SubmissionReport(**{k: v for k, v in data.items() if k in known})
    return reports
