"""The service's lifecycle pages and API: warm start (now, retry), teardown (with a confirm step) and purge.

The workshop page includes ``lifecycle.html`` (its data comes from the Jinja global
``lifecycle``); the fragment at ``w/<slug>/lifecycle`` is what the page's small script
re-fetches while a warm start or teardown is in progress. Every action runs in the
background on the service's event loop and is the same ``lifecycle`` function the CLI calls.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from jupyterhub.utils import url_path_join

from academy.workshop import actions, lifecycle
from academy.workshop.forms import InvalidRequest, Problem
from academy.workshop.models import local, utcnow
from academy.workshop.service import BaseHandler


@dataclass
class Status:
    """What the workshop page shows about the lifecycle."""

    backend: str
    warm_at: datetime | None
    warm_begun: datetime | None
    warm: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    teardown: object | None = None
    steps: dict = field(default_factory=dict)
    torn_down_at: datetime | None = None
    purge_from: datetime | None = None
    purge_allowed: bool = False
    purge: object | None = None
    purged_at: datetime | None = None
    busy: bool = False

    def as_json(self) -> dict:
        iso = lambda t: t and local(t).isoformat()  # noqa: E731
        return {
            "warm_at": iso(self.warm_at), "warm_begun": iso(self.warm_begun), "counts": self.counts,
            "warm": [{"username": e.participant, "state": e.state, "reason": e.reason, "attempts": e.attempts,
                      "since": iso(e.since)} for e in self.warm],
            "teardown": self.teardown and {"begun": iso(self.teardown.begun_at), "finished": iso(self.teardown.finished_at),
                                           "failures": self.teardown.failures},
            "steps": self.steps, "torn_down_at": iso(self.torn_down_at), "purge_from": iso(self.purge_from),
            "purge_allowed": self.purge_allowed, "purged_at": iso(self.purged_at), "busy": self.busy,
            "purge": self.purge and {"failures": self.purge.failures, "finished": iso(self.purge.finished_at)},
        }


def status(ctx: actions.Context, w) -> Status:
    from datetime import timedelta

    minutes = ctx.wcfg["warm_start_minutes"]
    run = lifecycle.warm_run(ctx, w.slug)
    entries = lifecycle.warm_entries(ctx, w.slug)
    counts = {s: sum(e.state == s for e in entries) for s in ("pending", "started", "running", "failed")}
    purge_from = lifecycle.purge_from(ctx, w)
    busy = any(k[1] == w.slug for k in lifecycle.RUNNING) or any(
        r is not None and r.holder for r in (lifecycle.teardown_run(ctx, w.slug), lifecycle.teardown_run(ctx, w.slug, "purge")))
    return Status(
        backend=ctx.cfg["backend"], warm_at=w.start - timedelta(minutes=minutes) if minutes else None,
        warm_begun=run and run.begun_at, warm=entries, counts=counts,
        teardown=lifecycle.teardown_run(ctx, w.slug), steps=lifecycle.steps_done(ctx, w.slug),
        torn_down_at=w.torn_down_at, purge_from=purge_from,
        purge_allowed=purge_from is not None and utcnow() >= purge_from and w.purged_at is None,
        purge=lifecycle.teardown_run(ctx, w.slug, "purge"), purged_at=w.purged_at, busy=busy)


def _background(ctx: actions.Context, actor: str, slug: str, what: str, coro) -> None:
    """Run an action after the response: its progress shows on the page and in the audit log."""
    async def run():
        try:
            await coro
        except InvalidRequest as exc:
            actions.audit(ctx, actor, f"{what}.refused", slug, detail=str(exc)[:500])
        except Exception as exc:  # noqa: BLE001 (shown in the audit log; the service keeps running)
            actions.audit(ctx, actor, f"{what}.error", slug, detail=f"{type(exc).__name__}: {exc}"[:500])
    asyncio.ensure_future(run())


class _Lifecycle(BaseHandler):
    def back(self, slug: str) -> None:
        self.redirect(url_path_join(self.settings["prefix"], "w", slug) + "#lifecycle")

    def refuse(self, w, problems: list[Problem]) -> None:
        self.set_status(400)
        self.render_page("workshop.html", workshop=w, problems=problems)


class WarmStartHandler(_Lifecycle):
    def post(self, slug):
        w = self.workshop_or_403(slug)
        if w.torn_down_at is not None:
            return self.refuse(w, [Problem("warmstart", "the workshop has been torn down")])
        name = self.get_body_argument("username", "").strip()
        members = {p.username for p in w.participants}
        if name and name not in members:
            return self.refuse(w, [Problem("username", f"{name!r} is not a participant of {slug}")])
        if not name and not members:
            return self.refuse(w, [Problem("warmstart", "the workshop has no participants yet")])
        actions.audit(self.ctx, self.hub_user.name, "warmstart.retry" if name else "warmstart.now", slug, name)
        _background(self.ctx, self.hub_user.name, slug, "warmstart",
                    lifecycle.warm_start(self.ctx, self.hub_user.name, slug, [name] if name else None))
        self.back(slug)


class TeardownHandler(_Lifecycle):
    def get(self, slug):
        """The confirm step: what will happen, and one button."""
        self.render_page("teardown_confirm.html", workshop=self.workshop_or_403(slug),
                         retention_days=self.ctx.wcfg["retention_days"])

    def post(self, slug):
        w = self.workshop_or_403(slug)
        if self.get_body_argument("confirm", "") != slug:
            return self.refuse(w, [Problem("teardown", "type the workshop's slug to confirm the teardown")])
        _background(self.ctx, self.hub_user.name, slug, "teardown", lifecycle.teardown(self.ctx, self.hub_user.name, slug))
        self.back(slug)


class PurgeHandler(_Lifecycle):
    def post(self, slug):
        w = self.workshop_or_403(slug)
        st = status(self.ctx, w)
        if w.torn_down_at is None:
            return self.refuse(w, [Problem("purge", "tear the workshop down first")])
        if not st.purge_allowed and w.purged_at is None:
            return self.refuse(w, [Problem("purge", f"the retention runs until {local(st.purge_from):%Y-%m-%d %H:%M}; purge is possible from then")])
        if self.get_body_argument("confirm", "") != slug:
            return self.refuse(w, [Problem("purge", "type the workshop's slug to confirm the purge")])
        _background(self.ctx, self.hub_user.name, slug, "purge", lifecycle.purge(self.ctx, self.hub_user.name, slug))
        self.back(slug)


class FragmentHandler(_Lifecycle):
    def get(self, slug):
        self.render_page("lifecycle.html", workshop=self.workshop_or_403(slug))


class ApiLifecycleHandler(_Lifecycle):
    def get(self, slug):
        self.finish(status(self.ctx, self.workshop_or_403(slug)).as_json())


def routes(slug: str) -> list[tuple[str, type]]:
    return [(f"w/{slug}/warmstart", WarmStartHandler), (f"w/{slug}/teardown", TeardownHandler),
            (f"w/{slug}/purge", PurgeHandler), (f"w/{slug}/lifecycle", FragmentHandler),
            (f"api/workshops/{slug}/lifecycle", ApiLifecycleHandler)]


def install(jinja, ctx: actions.Context) -> None:
    """The ``lifecycle(workshop)`` template global that ``lifecycle.html`` reads."""
    jinja.globals["lifecycle"] = lambda w: status(ctx, w)


def start_scheduler(ctx: actions.Context) -> None:
    """``schedule.tick`` now (resuming what a restart interrupted) and every ``workshops.tick_seconds``."""
    from tornado import ioloop

    from academy.workshop.schedule import tick

    ioloop.IOLoop.current().add_callback(lambda: asyncio.ensure_future(tick(ctx, first=True)))
    ioloop.PeriodicCallback(lambda: asyncio.ensure_future(tick(ctx)), ctx.wcfg["tick_seconds"] * 1000).start()
