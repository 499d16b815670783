"""The site config's ``course:`` section: which courses exist, where each lives, and what learners are told.

Every path is chosen in one order, the same for every command (README "Course configuration"):

1. an explicit command-line flag (``--course-dir``, ``--state-dir``, ``--exchange-dir``, ``--db-url``);
2. its environment variable (``ACADEMY_COURSE_DIR``, ``ACADEMY_STATE_DIR``, ``ACADEMY_EXCHANGE_DIR``,
   ``ACADEMY_GRADEBOOK_URL``), kept as overrides for scripts and tests;
3. the site config (``course.courses[]``, ``course.exchange_dir``; a course's state defaults to
   ``<hub.state_dir>/courses/<id>``);
4. the built-in default.

Grading limits and the Slurm placement of ``autograde --backend slurm`` become ``Class.trait`` settings
that the generated ``nbgrader_config.py`` pins over the course's own file; autograde's flags still win.

Learner servers are told only ``ACADEMY_EXCHANGE_DIR`` (the exchange root) and ``ACADEMY_COURSE_IDS``
(comma-separated ids): the learner-side commands and exchange classes need nothing else, and never the
course directory or the gradebook URL (:func:`update_course`, :func:`learner_course`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from traitlets.config import Config

from academy.course.layout import CourseLayout, LayoutError, check_id, resolve

ENV_COURSE_DIR = "ACADEMY_COURSE_DIR"
ENV_STATE_DIR = "ACADEMY_STATE_DIR"
ENV_EXCHANGE_DIR = "ACADEMY_EXCHANGE_DIR"
ENV_GRADEBOOK_URL = "ACADEMY_GRADEBOOK_URL"
ENV_COURSE_IDS = "ACADEMY_COURSE_IDS"


@dataclass(frozen=True)
class SiteCourse:
    """One entry of ``course.courses`` with its paths made absolute and its defaults filled in."""

    id: str
    directory: Path
    state_dir: Path
    gradebook_url: str  # empty: SQLite in the state dir


@dataclass(frozen=True)
class LearnerCourse:
    """All a student's command needs: the exchange root and the course id (never the course directory)."""

    exchange_dir: Path
    course_id: str


def _absolute(cfg: dict, value: str) -> Path:
    return (Path(cfg.get("_root") or ".") / Path(value).expanduser()).resolve()


def state_root(cfg: dict) -> Path:
    """Where courses keep their private state by default: ``<hub.state_dir>/courses``."""
    return Path(cfg["hub"]["state_dir"]) / "courses"


def site_courses(cfg: dict) -> list[SiteCourse]:
    """The configured courses, in the config's order."""
    out = []
    for entry in cfg["course"]["courses"]:
        course_id = check_id(entry["id"], "course id")
        state = entry.get("state_dir") or str(state_root(cfg) / course_id)
        out.append(SiteCourse(id=course_id, directory=_absolute(cfg, entry["directory"]),
                              state_dir=_absolute(cfg, state), gradebook_url=entry.get("gradebook_url") or ""))
    return out


def course_ids(cfg: dict) -> list[str]:
    return [c.id for c in site_courses(cfg)]


def choose(cfg: dict, course_id: str | None) -> SiteCourse:
    """The course ``--course`` names; without it, the only one (several: a clear refusal)."""
    courses = site_courses(cfg)
    if course_id:
        check_id(course_id, "course id")
        for course in courses:
            if course.id == course_id:
                return course
        raise LayoutError(f"no course {course_id!r} in the site config (course.courses: {', '.join(c.id for c in courses)})")
    if len(courses) > 1:
        raise LayoutError(f"this site has several courses ({', '.join(c.id for c in courses)}); pick one with --course ID")
    return courses[0]


def site_settings(cfg: dict) -> tuple[tuple[str, object], ...]:
    """``Class.trait`` values the site config sets for grading (0 or empty: the course's own)."""
    course = cfg["course"]
    limits, slurm = course["limits"], course["slurm"]
    settings: list[tuple[str, object]] = [("SandboxPolicy.user", course["grader_user"])]
    if limits["cell_timeout"]:
        settings.append(("Execute.timeout", limits["cell_timeout"]))
    if limits["notebook_timeout"]:
        settings.append(("SandboxKernelManager.notebook_time_limit", limits["notebook_timeout"]))
    if limits["memory_mb"]:
        settings.append(("SandboxPolicy.memory_limit", limits["memory_mb"] * 1024 * 1024))
    if slurm["memory_mb"]:
        settings.append(("SlurmBackend.memory_mb", slurm["memory_mb"]))
    options = [f"--{key}={slurm[key]}" for key in ("partition", "account") if slurm[key]]
    if options:
        settings.append(("SlurmBackend.extra_options", options))
    return tuple(settings)


def default_jobs(cfg: dict) -> int:
    """``autograde --jobs`` when not given: ``course.limits.jobs``, else one per CPU core."""
    return cfg["course"]["limits"]["jobs"] or os.cpu_count() or 1


def layout_for_site(cfg: dict, course_id: str | None = None, course_dir: str | None = None,
                    state_dir: str | None = None, exchange_dir: str | None = None, db_url: str | None = None,
                    env: Mapping[str, str] = os.environ) -> CourseLayout:
    """The trainer's view of one course: flags, then environment, then the site config, then defaults.

    A course directory named by flag or ``ACADEMY_COURSE_DIR`` is a course of its own: its id is its
    ``nbgrader_config.py``'s.  A course from ``course.courses`` keeps the site's id; a course file that
    sets another id is refused, since the exchange, the state and the gradebook all key on it."""
    explicit = course_dir or env.get(ENV_COURSE_DIR)
    exchange = exchange_dir or env.get(ENV_EXCHANGE_DIR) or cfg["course"]["exchange_dir"]
    state = state_dir or env.get(ENV_STATE_DIR)
    url = db_url or env.get(ENV_GRADEBOOK_URL)
    settings = site_settings(cfg)
    if explicit:
        probe = resolve(explicit, state or str(state_root(cfg) / "_"), exchange, url or "sqlite://")
        if course_id and check_id(course_id, "course id") != probe.course_id:
            raise LayoutError(f"--course {course_id} does not match the course id {probe.course_id!r} of {probe.course_dir}")
        known = {c.id: c for c in site_courses(cfg)}.get(probe.course_id)
        state = state or str(known.state_dir if known else state_root(cfg) / probe.course_id)
        url = url or (known.gradebook_url if known else "")
        return _with(resolve(explicit, state, exchange, url or None), settings=settings)
    course = choose(cfg, course_id)
    if not course.directory.is_dir():
        raise LayoutError(f"course.courses[{course_ids(cfg).index(course.id)}].directory: {course.directory} does not exist")
    layout = resolve(str(course.directory), state or str(course.state_dir), exchange, url or course.gradebook_url or None,
                     course_id=course.id)
    return _with(layout, settings=settings)


def _with(layout: CourseLayout, **changes) -> CourseLayout:
    from dataclasses import replace
    return replace(layout, **changes)


def learner_course(course_id: str | None = None, course_dir: str | None = None, exchange_dir: str | None = None,
                   env: Mapping[str, str] = os.environ,
                   site: Callable[[], dict] | None = None) -> LearnerCourse:
    """The student's view of one course, read without touching the course directory where possible.

    The course id, most explicit first: ``--course``; else the id in a ``--course-dir`` the student typed
    (read as the student, so it reveals nothing they could not read anyway); else the one id in
    ``ACADEMY_COURSE_IDS`` (what the hub gave this server; several: ``--course`` is required); else the id
    in ``ACADEMY_COURSE_DIR``'s config; else the site config's only course.  Whatever the student names
    only picks which exchange folder their own process uses.  The exchange root: ``--exchange-dir``, else
    ``ACADEMY_EXCHANGE_DIR``, else the site config."""
    cfg: dict | None = None

    def config() -> dict:
        nonlocal cfg
        if cfg is None:
            if site is None:
                from academy.siteconfig import load_config
                cfg = load_config()
            else:
                cfg = site()
        return cfg

    mine = [i.strip() for i in env.get(ENV_COURSE_IDS, "").split(",") if i.strip()]
    if course_id:
        pass
    elif course_dir:
        course_id = _course_id_of(course_dir)
    elif len(mine) == 1:
        course_id = mine[0]
    elif mine:
        raise LayoutError(f"you are in several courses ({', '.join(mine)}); pick one with --course ID")
    elif env.get(ENV_COURSE_DIR):
        course_id = _course_id_of(env[ENV_COURSE_DIR])
    else:
        course_id = choose(config(), None).id
    exchange = exchange_dir or env.get(ENV_EXCHANGE_DIR) or config()["course"]["exchange_dir"]
    return LearnerCourse(exchange_dir=Path(exchange).resolve(), course_id=check_id(course_id, "course id"))


def _course_id_of(course_dir: str) -> str:
    try:
        return resolve(course_dir, "/nonexistent", "/nonexistent", "sqlite://").course_id
    except PermissionError:
        raise LayoutError("cannot read the course directory's nbgrader_config.py; pass --course ID") from None


def update_course(c: Config, cfg: dict) -> None:
    """Every learner server learns the exchange root and the course ids: nothing that leads to the sources."""
    env = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    env.update({ENV_EXCHANGE_DIR: str(cfg["course"]["exchange_dir"]), ENV_COURSE_IDS: ",".join(course_ids(cfg))})
    c.Spawner.environment = env
