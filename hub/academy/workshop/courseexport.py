"""The course-work export of one workshop: grades.csv and tests.csv of its participants only, one HTML report each.

The course pipeline's export (nbgrader's CSV plugin plus the per-test breakdown) runs per
assignment of the workshop; rows of anyone who is not a participant are dropped, and every
participant is put in the gradebook first, so one who never submitted still has a row. The new
export is built in a private temporary folder and swapped in with a rename, so a download never
sees half an export. A trainer downloads the files from the workshop page (as attachments, never
rendered in the service's origin); what a participant typed is escaped (HTML) or defused (CSV).
"""
from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
EXPORT_FILES = ("grades.csv", "tests.csv")


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (messages can quote a participant's code)."""
    if value[:1] in ("=", "+", "-", "@"):
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


def export_workshop(workshop, layout, base: Path) -> list[str]:
    """Write ``base/export/`` (0700, files 0600); returns the assignments exported."""
    from nbgrader.api import Gradebook

    from academy.course.export import export

    assignments = [c.name for c in workshop.content if c.kind == "assignment"]
    people = [p.username for p in workshop.participants]
    layout.ensure()
    with Gradebook(layout.db_url) as gb:  # every participant gets a row, submitted or not
        known = {a.name for a in gb.assignments}
        for p in people:
            gb.update_or_create_student(p)
    assignments = [a for a in assignments if a in known]
    new = Path(tempfile.mkdtemp(prefix=".export-", dir=base))
    rows: dict[str, list[list[str]]] = {name: [] for name in EXPORT_FILES}
    headers: dict[str, list[str]] = {}
    for a in assignments:
        part = new / ".parts" / a
        export(layout, part, a)
        for name in EXPORT_FILES:
            with open(part / name, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                headers[name] = next(reader)
                column = headers[name].index("student_id")
                rows[name] += [row for row in reader if row[column] in people]
    shutil.rmtree(new / ".parts", ignore_errors=True)
    for name in EXPORT_FILES:
        with open(new / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(headers.get(name, ["assignment", "student_id"]))
            writer.writerows([[_cell(v) for v in row] for row in rows[name]])
    tests = [dict(zip(headers.get("tests.csv", []), r)) for r in rows["tests.csv"]]
    write_reports(new / "reports", workshop, people, assignments, layout, tests)
    for dirpath, _, files in os.walk(new):
        os.chmod(dirpath, 0o700)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o600)
    current = base / "export"
    if current.exists():
        os.rename(current, base / f".old-{time.time_ns()}")
    os.rename(new, current)
    for stale in base.glob(".old-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return assignments


def write_reports(out_dir: Path, workshop, people: list[str], assignments: list[str], layout, test_rows: list[dict]) -> list[Path]:
    """One printable HTML page per participant: status, score, message and per-test points of each assignment."""
    from academy.course import reports
    from academy.workshop.models import local, utcnow

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    template = env.get_template("participant_report.html")
    graded = {a: reports.load_all(layout, a) for a in assignments}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for person in people:
        rows = []
        for a in assignments:
            tests = [t for t in test_rows if t.get("student_id") == person and t.get("assignment") == a]
            rows.append({"assignment": a, "report": graded[a].get(person), "tests": tests,
                         "feedback": layout.step_dir("feedback", person, a).is_dir()})
        path = out_dir / f"{person}.html"
        path.write_text(template.render(workshop=workshop, person=person, rows=rows,
                                        made=local(utcnow()).strftime("%Y-%m-%d %H:%M")), encoding="utf-8")
        written.append(path)
    return written
