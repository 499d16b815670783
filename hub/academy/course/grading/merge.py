"""The single writer: copy one worker's autograde results into the real gradebook, or record a failure.

nbgrader's autograde writes exactly these gradebook fields for a submission (``Autograde.init_assignment``,
``SaveAutoGrades``, ``AssignLatePenalties``): the student, the submission and its ``timestamp``, each
notebook's ``late_submission_penalty``, each grade's ``auto_score`` and ``needs_manual_grade`` and each
comment's ``auto_comment``.  A worker ran that code against a snapshot; :func:`merge_submission` copies
those fields, and only those, through nbgrader's ``Gradebook`` API in one transaction.  Manual scores,
extra credit and manual comments a grader entered meanwhile are left alone, as nbgrader leaves them.

:func:`record_failure` gives a submission that could not be graded its defined result: every autograded
part scores 0 and is flagged for manual grading, so a trainer sees it in formgrader.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import warnings
from dataclasses import dataclass

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy import create_engine, MetaData
from sqlalchemy.exc import SAWarning

# nbgrader's own add_submission trips this SQLAlchemy warning for every new submission; it is harmless.
warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")


@dataclass(frozen=True)
class Score:
    """A submission's total after merging."""

    score: float
    max_score: float


def snapshot(db_url: str, dest: str) -> None:
    """Copy the gradebook into a private SQLite file the workers start from (any SQLAlchemy source)."""
    if os.path.exists(dest):
        os.remove(dest)
    if db_url.startswith("sqlite:///"):
        src = sqlite3.connect(db_url[len("sqlite:///"):])
        dst = sqlite3.connect(dest)
        with dst:
            src.backup(dst)  # consistent copy even if a reader holds the file open
        src.close()
        dst.close()
        return
    # Other databases: let nbgrader create its schema, then copy every row table by table.
    Gradebook(f"sqlite:///{dest}").close()
    source, target = create_engine(db_url), create_engine(f"sqlite:///{dest}")
    meta = MetaData()
    meta.reflect(bind=target)
    with source.connect() as src, target.begin() as dst:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = [dict(r._mapping) for r in src.execute(table.select())]
            dst.execute(table.delete())
            if rows:
                dst.execute(table.insert(), rows)
    source.dispose()
    target.dispose()


def _score(gb: Gradebook, assignment: str, student: str) -> Score:
    sub = gb.find_submission(assignment, student)
    score = Score(score=float(sub.score or 0.0), max_score=float(sub.max_score or 0.0))
    gb.db.commit()  # end the read transaction: the gradebook stays open between merges, unlocked
    return score


def merge_submission(gb: Gradebook, worker_db: str, assignment: str, student: str) -> Score:
    """Copy the fields nbgrader's autograde writes from the worker's gradebook into the real one (``gb``).

    The caller keeps ``gb`` open for a whole batch: opening nbgrader's Gradebook creates an engine and
    checks the schema, which would otherwise cost more than the merge itself, once per submission."""
    with Gradebook(f"sqlite:///{worker_db}") as wgb:
        wsub = wgb.find_submission(assignment, student)
        try:
            gb.find_student(student)
        except MissingEntry:
            wst = wgb.find_student(student)
            gb.add_student(student, first_name=wst.first_name, last_name=wst.last_name, email=wst.email)
        try:
            gb.update_or_create_submission(assignment, student, timestamp=wsub.timestamp)
            for wnb in wsub.notebooks:
                nb = gb.find_submission_notebook(wnb.name, assignment, student)
                nb.late_submission_penalty = wnb.late_submission_penalty
                for wgrade in wnb.grades:
                    grade = gb.find_grade(wgrade.name, wnb.name, assignment, student)
                    grade.auto_score = wgrade.auto_score
                    grade.needs_manual_grade = wgrade.needs_manual_grade
                for wcomment in wnb.comments:
                    comment = gb.find_comment(wcomment.name, wnb.name, assignment, student)
                    comment.auto_comment = wcomment.auto_comment
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise
        return _score(gb, assignment, student)


def record_failure(gb: Gradebook, assignment: str, student: str, timestamp=None) -> Score:
    """Defined result for an ungradable submission: autograded parts 0, all flagged for a human."""
    gb.update_or_create_student(student)
    try:
        extra = {"timestamp": timestamp} if timestamp is not None else {}
        sub = gb.update_or_create_submission(assignment, student, **extra)
        for nb in sub.notebooks:
            nb.late_submission_penalty = None
            for grade in nb.grades:
                if grade.cell.cell_type == "code":
                    grade.auto_score = 0.0
                grade.needs_manual_grade = True
            for comment in nb.comments:
                comment.auto_comment = None
        gb.db.commit()
    except Exception:
        gb.db.rollback()
        raise
    return _score(gb, assignment, student)


def install_autograded(job_autograded: str, real_autograded: str) -> None:
    """Replace the real autograded folder of one submission with the worker's (rename when possible)."""
    if os.path.exists(real_autograded):
        shutil.rmtree(real_autograded)
    os.makedirs(os.path.dirname(real_autograded), exist_ok=True)
    if os.path.isdir(job_autograded):
        shutil.move(job_autograded, real_autograded)
