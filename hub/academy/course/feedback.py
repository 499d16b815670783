"""Feedback: nbgrader's generate_feedback with hidden tests stripped, a leak check, then return.

``GenerateFeedback`` (nbgrader's converter) renders each autograded notebook to HTML; we add
:class:`~academy.course.hidden.StripHiddenTests` to its preprocessors.  Each HTML file is then checked
as rendered text against the assignment's hidden-test lines; a file that still contains one is
deleted and that student's feedback is withheld with a clear message.  Only checked files are returned
through the exchange, readable by their student alone.  Submissions whose grading failed get no
feedback file: they are listed as "not graded" with their report's reason, so ``course feedback``
exits 1 for them just as ``course autograde`` did (that student has received nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import GetGrades
from nbgrader.utils import capture_log
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

from academy.course import exchange, hidden, reports
from academy.course.layout import CourseLayout, check_id


@dataclass
class FeedbackResult:
    """Per-student feedback outcome."""

    student: str
    status: str  # "returned", "generated", "withheld", "failed", "not graded"
    message: str = ""
    files: list[Path] = field(default_factory=list)


def autograded_students(layout: CourseLayout, assignment: str) -> list[str]:
    base = layout.root / "autograded"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir())


def generate_one(layout: CourseLayout, assignment: str, student: str) -> FeedbackResult:
    cfg = layout.nbgrader_config()
    cfg.GenerateFeedback.preprocessors = [GetGrades, hidden.StripHiddenTests, CSSHTMLHeaderPreprocessor]
    cfg.HTMLExporter.template_name = "feedback"
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    converter = GenerateFeedback(coursedir=coursedir, config=cfg)
    converter.force = True
    outcome = capture_log(converter)
    if not outcome["success"]:
        return FeedbackResult(student, "failed", "generate_feedback failed; see `academy course status`")
    out_dir = layout.step_dir("feedback", student, assignment)
    lines = hidden.hidden_lines(layout.db_url, assignment)
    files = sorted(out_dir.glob("*.html"))
    for html_file in files:
        leaks = hidden.find_leaks(hidden.html_text(html_file.read_text(errors="replace")), lines)
        if leaks:
            for f in files:
                f.unlink()
            return FeedbackResult(student, "withheld", f"feedback quoted a hidden test ({leaks[0][:40]!r}...); withheld")
    return FeedbackResult(student, "generated", files=files)


def feedback(layout: CourseLayout, assignment: str, students: list[str] | None = None,
             send: bool = True, on_result=None) -> list[FeedbackResult]:
    """Generate (and with ``send``, return) feedback for autograded submissions."""
    check_id(assignment, "assignment")
    results = []
    graded = students or autograded_students(layout, assignment)
    for student, report in sorted(reports.load_all(layout, assignment).items()):
        if not students and report.status != "graded" and student not in graded:
            result = FeedbackResult(student, "not graded", f"grading failed, no feedback: {report.message}"[:300])
            results.append(result)
            if on_result:
                on_result(result)
    for student in graded:
        check_id(student, "student id")
        result = generate_one(layout, assignment, student)
        if send and result.status == "generated":
            try:
                # The graded submission's time goes along, so the panel marks which submission it is for.
                stamp = [p for p in [layout.step_dir("feedback", student, assignment) / "timestamp.txt"] if p.is_file()]
                exchange.return_feedback(layout, assignment, student, result.files + stamp)
                result.status = "returned"
            except (KeyError, OSError, exchange.ExchangeError) as exc:
                result.status, result.message = "generated", f"not returned: {exc}"
        results.append(result)
        if on_result:
            on_result(result)
    return results
