"""The event API learner servers call: ``POST api/events`` and the learner's privacy view ``GET api/events/mine``.

Both authenticate with the server's own token (:class:`academy.workshop.learnerapi.LearnerTokenHandler`).
A request is answered 202 ``{"accepted", "refused", "reasons"}``: events that break a bound are refused
one by one and counted (academy.workshop.events). The whole request is refused, and every event in
it counted, when it is too big (413), not JSON or with more than ``Limits.per_request`` events (400),
names another user (400, ``forged``), names a workshop the caller is not in (403) or floods (429).
Accepted events reach the dashboards at once through :class:`academy.workshop.live.Live`.
"""
from __future__ import annotations

import json

from tornado import web

from sqlalchemy import select

from academy.workshop.events import (
    LIMITS, RateLimiter, USER_KEYS, count_refusals, for_user, record, refusals_for, state_for_user,
)
from academy.workshop.learnerapi import LearnerTokenHandler, active_workshops
from academy.workshop.models import Workshop


class EventsHandler(LearnerTokenHandler):
    def refuse(self, caller, status: int, reason: str, n: int, message: str) -> None:
        """Count the refusal (the dashboards see it at once), then answer ``status``."""
        with self.ctx.sessions() as db:
            count_refusals(db, caller.name, {reason: max(n, 1)})
            db.commit()
        live = self.settings.get("live")
        for slug in caller.workshop_slugs if live is not None else ():
            live.publish(slug, caller.name, [])
        raise web.HTTPError(status, message)

    async def post(self):
        caller = await self.learner()
        body = self.request.body or b""
        if len(body) > LIMITS.body_bytes:
            self.refuse(caller, 413, "too_large", 1, f"the body may be at most {LIMITS.body_bytes} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        events = data.get("events") if isinstance(data, dict) else None
        if not isinstance(events, list):
            self.refuse(caller, 400, "malformed", 1, 'send {"events": [...]}')
        if len(events) > LIMITS.per_request:
            self.refuse(caller, 400, "malformed", len(events), f"at most {LIMITS.per_request} events per request")
        named = [data] + [e for e in events if isinstance(e, dict)]
        if any(k in d and d[k] != caller.name for d in named for k in USER_KEYS):
            self.refuse(caller, 400, "forged", len(events), "events are always the token's user's own")
        slugs = caller.workshop_slugs
        if data.get("workshop") is not None:
            if data["workshop"] not in slugs:
                self.refuse(caller, 403, "wrong_workshop", len(events), "not a participant of that workshop")
            slugs = [data["workshop"]]
        limiter: RateLimiter = self.settings.setdefault("event_limiter", RateLimiter())
        if events and not limiter.take(caller.name, len(events)):
            self.set_header("Retry-After", "5")
            self.refuse(caller, 429, "flooding", len(events),
                        f"more than {LIMITS.rate_per_s:g} events/s (burst {LIMITS.burst}); slow down")
        live, out = self.settings.get("live"), None
        # Usually one workshop; a learner in two at once has the events on both dashboards.
        for slug in slugs:
            with self.ctx.sessions() as db:
                out = record(db, caller.name, slug, events)
            if live is not None:
                live.publish(slug, caller.name, out.records)
        self.set_status(202)
        self.finish({"accepted": out.accepted, "refused": out.refused, "reasons": out.reasons})


class MineHandler(LearnerTokenHandler):
    async def get(self):
        """Everything kept about the caller, even after their workshop ended (so no participant check)."""
        name = (await self.hub_model())["name"]
        active = active_workshops(self.ctx, name)
        with self.ctx.sessions() as db:
            events = [e.as_json() for e in for_user(db, name)]
            states = state_for_user(db, name)
            refused = refusals_for(db, [name]).get(name, {})
            workshops = {w.slug: w for w in db.scalars(select(Workshop).where(
                Workshop.slug.in_(active + [s.workshop for s in states])))}
        iso = lambda t: t and t.isoformat() + "Z"  # noqa: E731
        rows = []
        for slug, w in workshops.items():
            st = next((s for s in states if s.workshop == slug), None)
            rows.append({
                "slug": slug, "title": w.title, "trainer_group": w.trainer_group, "active": slug in active,
                "hand": {"raised_at": iso(st.hand_at), "message": st.hand_message} if st and st.hand_at else None,
                "share": {"path": st.share_path, "since": iso(st.share_at)} if st and st.share_path else None,
                "open_notebooks": (st and st.notebooks) or [], "last_activity": st and iso(st.last_at),
            })
        first = next((r for r in rows if r["active"]), None)
        self.set_header("Cache-Control", "no-store")
        self.finish({
            "user": name, "trainer_group": first and first["trainer_group"], "workshop": first and first["slug"],
            "workshops": rows, "events": events, "refused": refused,
            "limits": {"per_request": LIMITS.per_request, "body_bytes": LIMITS.body_bytes,
                       "rate_per_s": LIMITS.rate_per_s, "burst": LIMITS.burst},
        })


def routes() -> list[tuple[str, type]]:
    return [("api/events", EventsHandler), ("api/events/mine", MineHandler)]
