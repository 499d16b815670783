"""The service's scheduler: warm starts, keep-alive and teardowns when their time comes, and resuming after a restart.

``tick`` runs every ``workshops.tick_seconds`` in the service (next to the content release) and
once at its start with ``first=True``, which picks up warm starts and teardowns a killed or
restarted service left unfinished. The work itself is ``lifecycle``'s, shared with the CLI.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from academy.workshop import actions
from academy.workshop.forms import InvalidRequest
from academy.workshop.lifecycle import RUNNING, _db, _holder_gone, keep_warm, teardown, warm_start
from academy.workshop.lifecycle_models import TeardownRun, WarmEntry, WarmRun
from academy.workshop.models import Workshop, utcnow

SCHEDULER = "academy (scheduled)"
# A teardown that failed (e.g. the hub was unreachable) is tried again this long after.
RETRY_FAILED_AFTER = timedelta(minutes=10)


def _spawn(ctx: actions.Context, coro, what: str, slug: str) -> None:
    async def guarded():
        try:
            await coro
        except InvalidRequest:
            pass  # Busy, or torn down meanwhile: nothing to do this round
        except Exception as exc:  # noqa: BLE001 (the service must keep running; the audit log says why)
            actions.audit(ctx, SCHEDULER, f"{what}.error", slug, detail=f"{type(exc).__name__}: {exc}"[:500])
    asyncio.ensure_future(guarded())


async def tick(ctx: actions.Context, first: bool = False) -> None:
    """One round: begin due warm starts, keep warmed servers alive, tear down ended workshops, resume."""
    now = utcnow()
    lead = timedelta(minutes=ctx.wcfg["warm_start_minutes"])
    with _db(ctx) as db:
        workshops = list(db.scalars(select(Workshop).where(Workshop.torn_down_at.is_(None))))
        warm = {r.workshop for r in db.scalars(select(WarmRun))}
        entries = {(e.workshop, e.participant): e.state for e in db.scalars(select(WarmEntry))}
        runs = {r.workshop: r for r in db.scalars(select(TeardownRun).filter_by(kind="teardown"))}
    for w in workshops:
        members = [p.username for p in w.participants]
        if w.slug not in warm and lead and w.start - lead <= now < w.start and members:
            _spawn(ctx, warm_start(ctx, SCHEDULER, w.slug), "warmstart", w.slug)
        elif w.slug in warm and now < w.end:
            # Late additions get warmed too; after a restart, unfinished ones are followed again
            # (WarmStart never posts a second start for a server that is starting or running).
            todo = [n for n in members if (w.slug, n) not in entries and now < w.start]
            if first:
                todo += [n for n in members if entries.get((w.slug, n)) in ("pending", "started")]
            todo = [n for n in todo if ("warm", w.slug, n) not in RUNNING]
            if todo:
                _spawn(ctx, warm_start(ctx, SCHEDULER, w.slug, todo), "warmstart", w.slug)
            if now < w.start:
                _spawn(ctx, keep_warm(ctx, w.slug), "keepalive", w.slug)
        run = runs.get(w.slug)
        if ("teardown", w.slug) in RUNNING:
            continue
        interrupted = run is not None and run.holder and _holder_gone(run.holder, run.last_attempt)
        retry = run is not None and not run.holder and now - run.last_attempt > RETRY_FAILED_AFTER
        if interrupted or retry or (run is None and now >= w.end):
            _spawn(ctx, teardown(ctx, SCHEDULER, w.slug), "teardown", w.slug)
