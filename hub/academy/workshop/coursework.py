"""A workshop's course work: collect, autograde, feedback and export of its own assignments and participants.

The service's pages (``coursework_pages.py``, in a background thread), ``academy workshop
collect|autograde|feedback|export`` and teardown (:func:`final_grading`) call these functions; each
wraps the course pipeline (``academy.course``: the secure exchange, the sandboxed parallel
autograder, leak-checked feedback, nbgrader's CSV export) and touches only the workshop's
assignments and participants. One action per workshop at a time (a ``flock`` in its folder, so
the CLI, teardown and the pages queue behind each other), every action audited. Progress of the
running or last action is ``status.json`` and the export is ``export/`` in
``<state_dir>/workshops/<slug>/coursework/`` (0700, the service's account): the service serves
the export to the workshop's trainers; participants can neither reach nor read it.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from academy.configurer import state_path
from academy.workshop.actions import Context, audit, get_workshop
from academy.workshop.coursestatus import Status, Tracker, exclusive, read_status  # noqa: F401 (pages, CLI)
from academy.workshop.forms import InvalidRequest, Problem

MAX_JOBS = 64
from academy.workshop.courseexport import EXPORT_FILES  # noqa: F401 (the pages list them)


@dataclass
class StepResult:
    """What one action did to one participant's submission of one assignment."""

    assignment: str
    participant: str
    status: str  # collected, not submitted, graded, failed, returned, generated, withheld, ...
    detail: str = ""


def layout_for(cfg: dict):
    """The course the workshops grade: ``workshops.course`` in the site config, else the ``course:`` section's
    (its only or first course), with ``academy course``'s precedence (academy.course.site)."""
    from academy.course.site import course_ids, layout_for_site

    c = cfg["workshops"].get("course") or {}
    return layout_for_site(cfg, None if c.get("course_dir") else course_ids(cfg)[0], c.get("course_dir") or None,
                           c.get("state_dir") or None, c.get("exchange_dir") or None, c.get("db_url") or None)


def course_layout(ctx: Context):
    return layout_for(ctx.cfg)


def prepare_exchange(ctx: Context, layout, participants: list[str]) -> None:
    """As root: the grader account, each participant's private exchange folders and gradebook entry,
    and instructor notebooks (solutions, hidden tests) closed to everyone but their owner."""
    if os.geteuid() != 0:
        return
    from nbgrader.api import Gradebook

    from academy.accounts import LOCAL_UNIX_PREFIX
    from academy.course import exchange
    from academy.course.grading import sandbox

    layout.ensure()
    sandbox.ensure_account(sandbox.SandboxPolicy(config=layout.nbgrader_config()).user)
    exchange.setup(layout, participants, LOCAL_UNIX_PREFIX if ctx.cfg["backend"] == "local" else "")
    with Gradebook(layout.db_url, layout.course_id) as gb:
        for name in participants:
            gb.update_or_create_student(name)
    if layout.source_dir.is_dir():
        # Students read the course's nbgrader_config.py (fetch, submit), never source/.
        os.chmod(layout.source_dir, layout.source_dir.stat().st_mode & 0o700)
    from academy.workshop.formgrader import refresh

    refresh(ctx.cfg, layout)  # the Formgrader's group may read source/ again


def work_dir(ctx: Context, slug: str) -> Path:
    path = Path(state_path(ctx.cfg, "workshops")) / slug / "coursework"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def export_dir(ctx: Context, slug: str) -> Path:
    return work_dir(ctx, slug) / "export"


# --- scope: the workshop's assignments and participants -------------------------------------------
def scope(ctx: Context, slug: str, assignment: str | None = None) -> tuple[list[str], list[str]]:
    """(assignments, participants) of a workshop: one named assignment of it, or all its released ones."""
    w = get_workshop(ctx, slug)
    if w is None:
        raise InvalidRequest([Problem("slug", f"no workshop {slug!r}")])
    mine = [c for c in w.content if c.kind == "assignment"]
    if assignment:
        if assignment not in [c.name for c in mine]:
            raise InvalidRequest([Problem("assignment", f"{assignment!r} is not an assignment of {slug}")])
        names = [assignment]
    else:
        names = [c.name for c in mine if c.released_at is not None]
    return names, [p.username for p in w.participants]


def _check_jobs(jobs) -> int:
    try:
        jobs = int(jobs)
    except (TypeError, ValueError):
        jobs = 0
    if not 1 <= jobs <= MAX_JOBS:
        raise InvalidRequest([Problem("jobs", f"a whole number from 1 to {MAX_JOBS}")])
    return jobs


def _summary(action: str, results: list[StepResult]) -> str:
    from collections import Counter

    counts = Counter(r.status for r in results)
    return f"{action}: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do")


def _audit_results(ctx: Context, actor: str, slug: str, action: str, results: list[StepResult]) -> str:
    for r in results:
        audit(ctx, actor, f"coursework.{action}", slug, r.participant, f"{r.assignment}: {r.status} {r.detail}".strip())
    summary = _summary(action, results)
    audit(ctx, actor, f"coursework.{action}", slug, detail=summary)
    return summary


# --- the steps (callers hold the lock) ------------------------------------------------------------
def _collect(ctx, actor, slug, assignment, tracker) -> list[StepResult]:
    from academy.course.exchange import ExchangeError, collect_one

    assignments, people = scope(ctx, slug, assignment)
    layout = course_layout(ctx)
    prepare_exchange(ctx, layout, people)  # participants added after the release get their folders too
    tracker.begin("collect", len(assignments) * len(people))
    results = []
    for a in assignments:
        for p in people:
            try:
                receipt = collect_one(layout, a, p)
                r = StepResult(a, p, "collected", f"submitted {receipt.submitted_at}") if receipt else StepResult(a, p, "not submitted")
            except (ExchangeError, OSError) as exc:
                r = StepResult(a, p, "failed", str(exc))
            results.append(r)
            tracker.advance(r)
    return results


def _autograde(ctx, actor, slug, assignment, jobs, tracker) -> list[StepResult]:
    from academy.course.autograde import AutogradeRequest, autograde

    jobs = _check_jobs(jobs)
    assignments, people = scope(ctx, slug, assignment)
    layout = course_layout(ctx)
    todo = {a: [p for p in people if layout.step_dir("submitted", p, a).is_dir()] for a in assignments}
    tracker.begin("autograde", sum(len(s) for s in todo.values()))
    results = []
    for a, students in todo.items():
        if not students:  # an empty list would mean "every collected submission" to the pipeline
            continue

        def report(rep, a=a):
            r = StepResult(a, rep.student, rep.status, f"{rep.score:g}/{rep.max_score:g}" + (f"; {rep.message}" if rep.message else ""))
            results.append(r)
            tracker.advance(r)

        autograde(layout, AutogradeRequest(assignment=a, jobs=jobs, students=students), on_report=report)
    return results


def _feedback(ctx, actor, slug, assignment, tracker) -> list[StepResult]:
    from academy.course.feedback import feedback

    assignments, people = scope(ctx, slug, assignment)
    layout = course_layout(ctx)
    todo = {a: [p for p in people if layout.step_dir("autograded", p, a).is_dir()] for a in assignments}
    tracker.begin("feedback", sum(len(s) for s in todo.values()))
    results = []
    for a, students in todo.items():
        if not students:  # an empty list would mean "every autograded submission"
            continue

        def one(fb, a=a):
            r = StepResult(a, fb.student, fb.status, fb.message)
            results.append(r)
            tracker.advance(r)

        feedback(layout, a, students=students, on_result=one)
    return results


def _export(ctx, actor, slug, tracker) -> list[StepResult]:
    from academy.workshop.courseexport import export_workshop

    w = get_workshop(ctx, slug)
    people = [p.username for p in w.participants]
    tracker.begin("export", len(people))
    assignments = export_workshop(w, course_layout(ctx), work_dir(ctx, slug))
    results = [StepResult(",".join(assignments), p, "exported") for p in people]
    for r in results:
        tracker.advance(r)
    return results


STEPS = {
    "collect": lambda ctx, actor, slug, tracker, assignment=None: _collect(ctx, actor, slug, assignment, tracker),
    "autograde": lambda ctx, actor, slug, tracker, assignment=None, jobs=2: _autograde(ctx, actor, slug, assignment, jobs, tracker),
    "feedback": lambda ctx, actor, slug, tracker, assignment=None: _feedback(ctx, actor, slug, assignment, tracker),
    "export": lambda ctx, actor, slug, tracker: _export(ctx, actor, slug, tracker),
}


def _pipeline_errors() -> tuple[type[Exception], ...]:
    from academy.course.exchange import ExchangeError
    from academy.course.layout import LayoutError
    from academy.course.grading.sandbox import SandboxError

    return (LayoutError, ExchangeError, SandboxError, PermissionError, FileNotFoundError)


def _run(ctx: Context, actor: str, slug: str, actions: list[tuple[str, dict]], label: str,
         tracker: Tracker | None, echo=None) -> list[StepResult]:
    """Run steps in order under an already-held lock, with status and audit; a failure is recorded and raised."""
    tracker = tracker or Tracker(ctx, slug, label, actor, echo)
    everything: list[StepResult] = []
    try:
        summaries = []
        for action, kwargs in actions:
            results = STEPS[action](ctx, actor, slug, tracker, **kwargs)
            summaries.append(_audit_results(ctx, actor, slug, action, results))
            everything += results
    except Exception as exc:
        message = str(exc.problems[0].message) if isinstance(exc, InvalidRequest) else f"{type(exc).__name__}: {exc}"
        audit(ctx, actor, f"coursework.{label}-failed", slug, detail=message[:500])
        tracker.finish("failed", message)
        if isinstance(exc, _pipeline_errors()):  # a clear one-line problem, as `academy course` prints it
            raise InvalidRequest([Problem("coursework", message)]) from exc
        raise
    finally:
        from academy.course.layout import LayoutError
        from academy.workshop.formgrader import refresh

        try:
            refresh(ctx.cfg, course_layout(ctx))  # the Formgrader (course owner) reads what root just wrote
        except (LayoutError, OSError) as exc:  # never hides the step's own outcome; the next action retries
            audit(ctx, actor, "coursework.formgrader-refresh-failed", slug, detail=str(exc)[:500])
    tracker.finish("done", "; ".join(summaries))
    return everything


# --- the public actions -------------------------------------------------------------------------------
def _sync(ctx, actor, slug, steps, label, echo=None) -> list[StepResult]:
    scope(ctx, slug)  # a bad slug is refused before anything is locked or written
    for _, kwargs in steps:
        if "jobs" in kwargs:
            kwargs["jobs"] = _check_jobs(kwargs["jobs"])
        if kwargs.get("assignment"):
            scope(ctx, slug, kwargs["assignment"])
    with exclusive(ctx, slug, wait=True):
        return _run(ctx, actor, slug, steps, label, None, echo)


def collect(ctx: Context, actor: str, slug: str, assignment: str | None = None, echo=None) -> list[StepResult]:
    """Copy each participant's latest submission in from the exchange (system-taken time)."""
    return _sync(ctx, actor, slug, [("collect", {"assignment": assignment})], "collect", echo)


def autograde(ctx: Context, actor: str, slug: str, assignment: str | None = None, jobs: int = 2, echo=None) -> list[StepResult]:
    """Grade the participants' collected submissions, ``jobs`` at a time, sandboxed."""
    return _sync(ctx, actor, slug, [("autograde", {"assignment": assignment, "jobs": jobs})], "autograde", echo)


def feedback(ctx: Context, actor: str, slug: str, assignment: str | None = None, echo=None) -> list[StepResult]:
    """Generate feedback (hidden tests stripped) and return it to each participant alone."""
    return _sync(ctx, actor, slug, [("feedback", {"assignment": assignment})], "feedback", echo)


def export(ctx: Context, actor: str, slug: str, echo=None) -> list[StepResult]:
    """grades.csv and tests.csv of exactly the workshop's participants, and one HTML report each."""
    return _sync(ctx, actor, slug, [("export", {})], "export", echo)


def final_grading(ctx: Context, actor: str, slug: str) -> list[StepResult]:
    """collect → autograde → feedback → export of every released assignment; safe to run again."""
    if not scope(ctx, slug)[0]:  # nothing released to grade: no course needed, teardown goes on
        audit(ctx, actor, "coursework.final-grading", slug, detail="no released assignments")
        return []
    jobs = max(1, min(MAX_JOBS, os.cpu_count() or 1))
    steps = [("collect", {}), ("autograde", {"jobs": jobs}), ("feedback", {}), ("export", {})]
    return _sync(ctx, actor, slug, steps, "final-grading")


def start(ctx: Context, actor: str, slug: str, action: str, **kwargs) -> threading.Thread:
    """Run one action in a background thread (the pages); InvalidRequest at once for bad input or a busy workshop."""
    if action not in STEPS:
        raise InvalidRequest([Problem("action", f"unknown action {action!r}")])
    if "jobs" in kwargs:
        kwargs["jobs"] = _check_jobs(kwargs["jobs"])
    scope(ctx, slug, kwargs.get("assignment"))
    held = exclusive(ctx, slug, wait=False)
    held.__enter__()  # raises InvalidRequest when another action runs; the thread releases it

    def run():
        try:
            _run(ctx, actor, slug, [(action, kwargs)], action, tracker)
        except Exception:  # recorded in status.json and the audit log by _run
            pass
        finally:
            held.__exit__(None, None, None)

    try:
        tracker = Tracker(ctx, slug, action, actor)
        thread = threading.Thread(target=run, name=f"coursework-{slug}-{action}", daemon=True)
        thread.start()
    except BaseException:
        held.__exit__(None, None, None)
        raise
    return thread
