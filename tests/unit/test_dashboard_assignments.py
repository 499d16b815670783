"""The dashboard's Assignments column, read from a course's folders on disk (no hub needed)."""
from __future__ import annotations

import os
from pathlib import Path

from academy.course import reports
from academy.course.layout import CourseLayout
from academy.course.reports import SubmissionReport
from academy.workshop.dashboard_assignments import read_cells


def _layout(tmp_path: Path) -> CourseLayout:
    layout = CourseLayout(course_dir=tmp_path / "course", state_dir=tmp_path / "state", exchange_dir=tmp_path / "exchange",
                          db_url="sqlite://", course_id="c1")
    (layout.exchange_dir / "c1" / "inbound").mkdir(parents=True)
    return layout


def _report(layout, student, assignment, status, score):
    reports.save(layout, SubmissionReport(student=student, assignment=assignment, status=status, message="",
                                          score=score, max_score=3.0, seconds=1.0, backend="local"))


def test_each_stage_of_each_assignment_is_read_from_the_course_folders(tmp_path):
    """Does the column say not fetched, fetched, submitted (with its time), graded with the score, and grading
    failed (without a score), per participant and assignment, in the workshop's order?"""
    layout = _layout(tmp_path)
    homes = {u: tmp_path / "home" / u for u in ("ann", "bob", "cy", "dee")}
    for home in homes.values():
        home.mkdir(parents=True)
    (homes["bob"] / "a1").mkdir()
    inbound = layout.exchange_dir / "c1" / "inbound"
    for user in ("cy", "dee"):
        (inbound / user / "a1").mkdir(parents=True)
    os.utime(inbound / "cy" / "a1", (1_800_000_000, 1_800_000_000))
    _report(layout, "cy", "a1", "graded", 2.5)
    _report(layout, "dee", "a1", "failed", 0.0)

    cells = read_cells(layout, ["a1", "a2"], list(homes), home_of=homes.get)
    stages = {u: [c["stage"] for c in cs] for u, cs in cells.items()}
    assert stages == {"ann": ["not fetched", "not fetched"], "bob": ["fetched", "not fetched"],
                      "cy": ["graded", "not fetched"], "dee": ["grading failed", "not fetched"]}
    cy = cells["cy"][0]
    assert (cy["score"], cy["max_score"], cy["fetched"]) == (2.5, 3.0, True)
    assert cy["submitted_at"].startswith("2027-01-15T08:00:00")
    assert cells["dee"][0]["score"] is None


def test_a_hostile_home_or_a_missing_course_never_breaks_the_column(tmp_path):
    """Does a symlink named like the assignment in a home (pointing at someone else's folder) count as nothing,
    and do a missing exchange, an unknown account and a damaged report give plain cells, not an error?"""
    layout = _layout(tmp_path)
    home = tmp_path / "home" / "eve"
    home.mkdir(parents=True)
    victim = tmp_path / "home" / "ann" / "a1"
    victim.mkdir(parents=True)
    (home / "a1").symlink_to(victim)
    cells = read_cells(layout, ["a1"], ["eve", "nobody"], home_of={"eve": home}.get)
    assert [c["stage"] for c in cells["eve"]] == ["not fetched"] and cells["nobody"][0]["stage"] == "not fetched"

    layout.reports_dir("a1").mkdir(parents=True)
    (layout.reports_dir("a1") / "eve.json").write_text("{not json")
    (layout.exchange_dir / "c1" / "inbound").rmdir()
    (layout.exchange_dir / "c1").rmdir()
    assert read_cells(layout, ["a1"], ["eve"], home_of={"eve": home}.get)["eve"][0]["stage"] == "not fetched"
    assert read_cells(layout, [], ["eve"]) == {}
