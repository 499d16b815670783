"""The learner's ``academy course fetch / submit / fetch-feedback``: the panel's exchange classes, from a shell.

Each command runs the same :mod:`academy.course.nbexchange` class the Assignments panel runs, so a
fetch, a submission (with its system-taken time in the panel's history) or fetched feedback is the
same whichever way the learner did it.  The course is picked as :func:`academy.course.site.learner_course`
says (``--course``, a typed ``--course-dir``, the only id in ``ACADEMY_COURSE_IDS``, ...).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from academy.course import nbexchange
from academy.course.layout import check_id


class LearnerError(RuntimeError):
    """What the exchange refused, in its own one-line words."""


@dataclass
class Where:
    """The exchange root and course a learner command works on."""

    root: str
    course_id: str


def where(args) -> Where:
    """The course as :func:`academy.course.site.learner_course` picks it (one order for every learner command)."""
    from academy.course.site import learner_course
    from academy.siteconfig import load_config
    place = learner_course(getattr(args, "course", None), args.course_dir, args.exchange_dir,
                           site=lambda: load_config(getattr(args, "config", None)))
    return Where(root=str(place.exchange_dir), course_id=place.course_id)


def run(cls, place: Where, assignment: str, assignment_dir: str, **traits):
    """Run one nbgrader exchange class as nbgrader's apps would; returns it (its results are attributes)."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError
    from traitlets.config import Config
    cfg = Config()
    cfg.CourseDirectory.course_id = place.course_id
    cfg.CourseDirectory.assignment_id = check_id(assignment, "assignment") if assignment else ""
    cfg.Exchange.root = place.root
    cfg.Exchange.assignment_dir = os.path.abspath(assignment_dir)
    quiet = logging.getLogger("academy.course.learner")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    job = cls(coursedir=CourseDirectory(config=cfg), authenticator=Authenticator(config=cfg), config=cfg,
              log=quiet, **traits)
    try:
        job.start()
    except ExchangeError as exc:
        raise LearnerError(" ".join(str(exc).split())) from None  # the panel's line breaks, on one line
    return job


def fetch(args) -> str:
    dest = args.dest or os.getcwd()
    run(nbexchange.AcademyFetchAssignment, where(args), args.assignment, dest)
    return os.path.join(os.path.abspath(dest), args.assignment)


def submit(args) -> tuple[str, str]:
    """Submit; returns (the system's submission time, a late or replace note or '')."""
    place = where(args)
    path = os.path.abspath(args.path or os.path.join(os.getcwd(), args.assignment))
    # The shell needs no second press: it says afterwards what the panel asks before.
    job = run(nbexchange.AcademySubmit, place, args.assignment, os.path.dirname(path), confirm_seconds=0.0, source_path=path)
    note = ""
    due = nbexchange.due_date(place.root, place.course_id, args.assignment)
    if due and job.timestamp > due.strftime("%Y-%m-%d %H:%M:%S.%f UTC"):
        note = f"late: the due date was {due:%Y-%m-%d %H:%M %Z}"
    return job.timestamp, note


def fetch_feedback(args) -> list[str]:
    dest = args.dest or os.getcwd()
    job = run(nbexchange.AcademyFetchFeedback, where(args), args.assignment or "", dest)
    base = os.path.abspath(dest)
    return [os.path.join(base, aid, "feedback", stamp, f"{nb}.html") for aid, nb, stamp, _ in job.feedback_files]
