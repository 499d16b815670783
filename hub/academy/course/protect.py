"""Course sources and course state closed to learners: what `academy up`, `academy course` and doctor enforce.

Who may read what (README "Course configuration"):

* the course's source folder (solutions and hidden tests): its owner and root, plus the course owner's
  group that the Formgrader hands it to (0750), never other users.  `academy up` and `academy course
  setup` (as root) take the "other" bits off; doctor fails while they are on.
* a course directory or source folder that other users can WRITE is refused, not repaired: a learner
  could have planted hidden tests or an ``nbgrader_config.py`` that the root-run grader loads.
* the course state (nbgrader's course root with submissions, autograded and feedback files, the SQLite
  gradebook, exports): folders 0700 and the gradebook file closed to everyone but its owner, also when
  the state sits in a folder learners may traverse (``hub.state_dir`` is 0711 on the local backend).
* the grader account, which runs students' code, gets nothing: it must never read hidden tests.

The course directory itself may stay readable (its ``nbgrader_config.py`` holds ids and limits, nothing
secret); doctor says so as a warning.  Student commands never need it (academy.course.site.learner_course).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from academy.course.layout import CourseLayout, LayoutError
from academy.doctor_checks import DoctorCheck


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def refusal(layout: CourseLayout) -> str | None:
    """Why this course must not be graded as it stands (other users can write its files), else None."""
    for what, path in (("course directory", layout.course_dir), ("course source folder", layout.source_dir)):
        if path.is_dir() and _mode(path) & 0o002:
            return (f"the {what} {path} is writable by other users (mode {_mode(path):o}): a learner could change "
                    f"the hidden tests; `chmod o-w {path}` and check its files")
    return None


def close_state(layout: CourseLayout) -> None:
    """The gradebook and what grading wrote next to it: closed to everyone but their owner."""
    if layout.db_url.startswith("sqlite:///"):
        db = Path(layout.db_url[len("sqlite:///"):])
        for path in (db, *(db.with_name(db.name + suffix) for suffix in ("-journal", "-wal", "-shm"))):
            if path.is_file() and _mode(path) & 0o077:
                os.chmod(path, _mode(path) & 0o700)
    for name in ("export", "tmp"):
        path = layout.state_dir / name
        if path.is_dir() and _mode(path) & 0o077:
            os.chmod(path, _mode(path) & 0o700)


def close_course(layout: CourseLayout) -> str | None:
    """As root: take other users' access off the source folder; returns what was done (None: nothing to do).

    Refuses (LayoutError) a course that other users can write."""
    problem = refusal(layout)
    if problem:
        raise LayoutError(problem)
    source = layout.source_dir
    if os.geteuid() != 0 or not source.is_dir() or not _mode(source) & 0o007:
        return None
    before = _mode(source)
    os.chmod(source, before & ~0o007)
    return f"closed the course source {source} to other users (mode {before:o} -> {before & ~0o007:o})"


def site_layouts(cfg: dict) -> list[CourseLayout]:
    """The layout of every course in the site config (problems with one: LayoutError naming it)."""
    from academy.course.site import course_ids, layout_for_site

    return [layout_for_site(cfg, course_id, env={}) for course_id in course_ids(cfg)]


def site_refusal(cfg: dict) -> str | None:
    """`academy up`'s pre-flight: a configured course that is missing or that other users can write."""
    try:
        layouts = site_layouts(cfg)
    except (LayoutError, OSError) as exc:
        return str(exc)
    return next((problem for layout in layouts if (problem := refusal(layout))), None)


def close_site_courses(cfg: dict) -> list[str]:
    """`academy up` as root: close every configured course's sources; refuses a course others can write."""
    return [done for layout in site_layouts(cfg) if (done := close_course(layout))]


def course_checks(cfg: dict) -> list[DoctorCheck]:
    """Doctor: can other users read or write a course's sources or state?"""
    try:
        layouts = site_layouts(cfg)
    except (LayoutError, OSError) as exc:
        return [DoctorCheck("course", False, str(exc))]
    checks = []
    for layout in layouts:
        name = f"course {layout.course_id}"
        problem = refusal(layout)
        source = layout.source_dir
        if problem:
            checks.append(DoctorCheck(name, False, problem))
        elif source.is_dir() and _mode(source) & 0o004:
            checks.append(DoctorCheck(name, False, f"learners can read the solutions and hidden tests in {source} "
                                      f"(mode {_mode(source):o}); `academy up` as root closes it, or `chmod o-rwx {source}`"))
        elif layout.state_dir.is_dir() and _mode(layout.state_dir) & 0o066:
            checks.append(DoctorCheck(name, False, f"the course state {layout.state_dir} is open to other users "
                                      f"(mode {_mode(layout.state_dir):o}); chmod 700 it"))
        elif _mode(layout.course_dir) & 0o004:
            checks.append(DoctorCheck(name, True, f"{layout.course_dir} is world-readable (its nbgrader_config.py); "
                                      f"the sources in {source} are closed", warning=True))
        else:
            checks.append(DoctorCheck(name, True, f"sources {source} and state {layout.state_dir} closed to learners"))
    return checks
