"""Release an assignment: nbgrader's generate_assignment, a hidden-test leak check, then the exchange.

``GenerateAssignment`` (nbgrader's converter) records the assignment, notebooks and cells in the
gradebook and writes the student version to ``<course root>/release/<assignment>``.  Before anything
is published, every released notebook is checked with :func:`academy.course.hidden.find_leaks`
against the hidden-test lines stored in the gradebook; a leak stops the release with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log

from academy.course import exchange, hidden
from academy.course.layout import CourseLayout, LayoutError, check_id


@dataclass
class ReleaseResult:
    """What a release produced."""

    assignment: str
    release_dir: Path
    notebooks: list[str]
    published_to: Path | None


class ReleaseError(RuntimeError):
    """generate_assignment failed or the release would leak hidden tests."""


def generate(layout: CourseLayout, assignment: str) -> Path:
    """Run nbgrader's GenerateAssignment for one assignment; returns the release folder."""
    check_id(assignment, "assignment")
    if not (layout.source_dir / assignment).is_dir():
        raise LayoutError(f"no source for assignment {assignment!r} in {layout.source_dir}")
    cfg = layout.nbgrader_config()
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = assignment
    converter = GenerateAssignment(coursedir=coursedir, config=cfg)
    converter.force = True
    converter.create_assignment = True
    outcome = capture_log(converter)
    if not outcome["success"]:
        text = outcome.get("log", "") + outcome.get("error", "")
        causes = [x.strip() for x in text.splitlines() if x.strip() and ("Error:" in x or "Exception:" in x)]
        raise ReleaseError(f"generate_assignment failed for {assignment}: {(causes or ['see the nbgrader log'])[-1]}")
    return layout.step_dir("release", ".", assignment)


def check_release(layout: CourseLayout, assignment: str, release_dir: Path) -> list[str]:
    """Notebook names in the release; raises if any of them contains a hidden-test line."""
    lines = hidden.hidden_lines(layout.db_url, assignment)
    names = []
    for path in sorted(release_dir.glob("*.ipynb")):
        text = hidden.notebook_text(nbformat.read(path, as_version=4)) + "\n" + path.read_text()
        leaks = hidden.find_leaks(text, lines) + ([hidden.BEGIN] if hidden.BEGIN in text else [])
        if leaks:
            raise ReleaseError(f"{path.name} would leak hidden tests (e.g. {leaks[0]!r}); release stopped")
        names.append(path.stem)
    return names


def release(layout: CourseLayout, assignment: str, publish: bool = True) -> ReleaseResult:
    release_dir = generate(layout, assignment)
    names = check_release(layout, assignment, release_dir)
    target = exchange.publish(layout, assignment, release_dir) if publish else None
    if target:
        from academy.course.nbexchange_trainer import publish_due_date
        publish_due_date(layout, assignment)  # the learners' panel warns before a late submission
    return ReleaseResult(assignment=assignment, release_dir=release_dir, notebooks=names, published_to=target)
