"""The dashboard's Assignments column: per participant and released assignment, fetched, submitted, graded, score.

Read from what the course pipeline leaves on disk, as ``academy course status`` does, so the column
shows what is true now: *fetched* is a folder of the assignment's name in the participant's home
(where ``academy course fetch`` puts it) or a submission; *submitted* is the participant's folder in
the exchange's inbound box (its time is the last submit); *graded* and the score come from the
grading reports (``academy.course.reports``), which also say when grading failed. One pass per
dashboard refresh for the whole workshop, in a worker thread (homes may be on a slow network file
system). Nothing a participant controls is followed: ``lstat`` only, so a symlink in a home counts
as nothing, and a missing course, exchange or report folder gives an empty column, never an error.
"""
from __future__ import annotations

import os
import pwd
import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class AssignmentCell:
    """One participant's progress on one assignment, as the dashboard shows it."""

    assignment: str
    fetched: bool = False
    submitted_at: str | None = None
    status: str = ""  # "", "graded" or "failed" (the grading report's)
    score: float | None = None
    max_score: float | None = None

    @property
    def stage(self) -> str:
        if self.status == "graded":
            return "graded"
        if self.status == "failed":
            return "grading failed"
        if self.submitted_at:
            return "submitted"
        return "fetched" if self.fetched else "not fetched"


def _is_dir(path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


def _home(user: str) -> Path | None:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return None


def read_cells(layout, assignments: list[str], users: list[str], home_of=None) -> dict[str, list[dict]]:
    """``user -> [cell as JSON]`` for the ``assignments`` (released ones of the workshop), in that order.

    ``home_of(user)`` gives a home folder (default: the account's, from the password database)."""
    from academy.course import exchange, reports

    if not assignments:
        return {}
    try:
        inbound = exchange.course_root(layout) / "inbound"
    except Exception:  # noqa: BLE001 (no exchange configured: nothing was submitted through it)
        inbound = None
    graded = {}
    for a in assignments:
        try:
            graded[a] = reports.load_all(layout, a)
        except (OSError, ValueError, TypeError, KeyError):  # a report being rewritten, or a damaged one
            graded[a] = {}
    out: dict[str, list[dict]] = {}
    for user in users:
        home, cells = (home_of or _home)(user), []
        for a in assignments:
            cell = AssignmentCell(a, fetched=bool(home and _is_dir(home / a)))
            box = _is_dir(inbound / user / a) if inbound is not None else None
            if box is not None:
                cell.fetched = True
                cell.submitted_at = datetime.fromtimestamp(box.st_mtime, timezone.utc).isoformat()
            report = graded[a].get(user)
            if report is not None:
                cell.status, cell.max_score = report.status, report.max_score
                cell.score = report.score if report.status == "graded" else None
            cells.append({**asdict(cell), "stage": cell.stage})
        out[user] = cells
    return out


def workshop_inputs(ctx, w):
    """``(layout, assignments, users)`` of workshop ``w`` (read on the event loop, where its database rows
    live), or None without released assignments or a course; :func:`read_cells` then runs in a thread."""
    from academy.workshop import coursework

    assignments = [c.name for c in w.content if c.kind == "assignment" and c.released_at is not None]
    if not assignments:
        return None
    try:
        layout = coursework.course_layout(ctx)
    except Exception as exc:  # noqa: BLE001 (the course is not set up: the rest of the dashboard still works)
        print(f"academy dashboard: assignments of {w.slug}: {exc}", flush=True)
        return None
    return layout, assignments, [p.username for p in w.participants]
