"""Export: one CSV row per student and assignment (nbgrader's CsvExportPlugin) plus a per-test breakdown.

``grades.csv`` is exactly what ``nbgrader export`` writes.  ``tests.csv`` has one row per student,
assignment, notebook and grade cell (auto, manual and final score) with the grading status and
message from :mod:`academy.course.reports`, so a failed submission is visible next to its zeros, and
whether the submission was flagged for tampering, with what it changed.
"""
from __future__ import annotations

import csv
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import CsvExportPlugin

from academy.course import reports
from academy.course.layout import CourseLayout

TEST_COLUMNS = ["assignment", "student_id", "notebook", "grade_id", "max_score", "auto_score",
                "manual_score", "extra_credit", "score", "needs_manual_grade", "status", "message", "flagged", "flags"]


def export(layout: CourseLayout, out_dir: Path, assignment: str | None = None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    grades, tests = out_dir / "grades.csv", out_dir / "tests.csv"
    plugin = CsvExportPlugin()
    plugin.to = str(grades)
    if assignment:
        plugin.assignment = [assignment]
    with Gradebook(layout.db_url) as gb:
        plugin.export(gb)
        with open(tests, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(TEST_COLUMNS)
            names = [assignment] if assignment else [a.name for a in gb.assignments]
            for name in names:
                try:
                    subs = gb.find_assignment(name).submissions
                except MissingEntry:
                    continue
                status = reports.load_all(layout, name)
                for sub in sorted(subs, key=lambda s: s.student.id):
                    report = status.get(sub.student.id)
                    for nb in sorted(sub.notebooks, key=lambda n: n.name):
                        for grade in sorted(nb.grades, key=lambda g: g.name):
                            writer.writerow([
                                name, sub.student.id, nb.name, grade.name, grade.max_score, grade.auto_score,
                                grade.manual_score, grade.extra_credit, grade.score, grade.needs_manual_grade,
                                report.status if report else "", report.message if report else "",
                                bool(report and report.flagged), " | ".join(report.flags) if report else "",
                            ])
    return grades, tests
