"""Per-participant export and deletion (GDPR), and what a workshop's purge deletes of the service's own data.

``GET w/<slug>/participants/<name>/export`` is a JSON download of everything the service holds
about one participant *in that workshop*; ``POST .../forget`` deletes their dashboard events
of that workshop (``events.forget``). Only the workshop's trainers and admins (``BaseHandler.workshop_or_403``), and
only for a name on that workshop's participant list: any other name (another workshop's
participant, ``..``, an encoded slash) is 404 before anything is read. The audit log keeps a line
for each export and deletion, and the lines themselves are not deleted (they record what trainers
did, not what the learner did). Announcement reads are not recorded, so there are none to delete.
"""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime

from sqlalchemy import select
from tornado import web

from academy.workshop import actions, announcements, events
from academy.workshop.lifecycle_models import WarmEntry, ensure_tables
from academy.workshop.models import AuditEvent, Participant, TeardownStep, Workshop, local
from academy.workshop.service import BaseHandler


def _plain(record) -> dict:
    """A stored row (SQLAlchemy model or dataclass) as JSON-ready values, whatever its columns are."""
    if dataclasses.is_dataclass(record):
        data = dataclasses.asdict(record)
    elif hasattr(record, "__mapper__"):
        data = {a.key: getattr(record, a.key) for a in record.__mapper__.column_attrs}
    else:
        data = dict(vars(record))
    return {k: (local(v).isoformat() if isinstance(v, datetime) else v) for k, v in data.items() if not k.startswith("_")}


def _of_workshop(row: dict, slug: str) -> bool:
    where = row.get("workshop", row.get("slug"))
    return where is None or where == slug


def participant_or_404(w: Workshop, name: str) -> Participant:
    for p in w.participants:
        if p.username == name:
            return p
    raise web.HTTPError(404, f"not a participant of {w.slug}")


def export_participant(ctx: actions.Context, w: Workshop, name: str) -> dict:
    """Everything the service holds about ``name`` in workshop ``w``, as one JSON document."""
    p = participant_or_404(w, name)
    ensure_tables(ctx.sessions)
    with ctx.sessions() as db:
        evs = [_plain(e) for e in events.for_user(db, name)]
        state = [_plain(st) for st in events.state_for_user(db, name)]
        audit = list(db.scalars(select(AuditEvent).filter_by(workshop=w.slug, participant=name).order_by(AuditEvent.id)))
        warm = list(db.scalars(select(WarmEntry).filter_by(workshop=w.slug, participant=name)))
        steps = list(db.scalars(select(TeardownStep).filter_by(workshop=w.slug, participant=name).order_by(TeardownStep.id)))
    shown = announcements.of_workshops(ctx.sessions, [w.slug], limit=None)
    return {
        "format": "academy-participant-export/1",
        "participant": name,
        "workshop": {"slug": w.slug, "title": w.title, "start": local(w.start).isoformat(), "end": local(w.end).isoformat()},
        "membership": {"added_at": local(p.added_at).isoformat(), "account_made_for_this_workshop": p.created_here,
                       "login_disabled": p.disabled},
        "events": [e for e in evs if _of_workshop(e, w.slug)],
        "dashboard_state": [st for st in state if _of_workshop(st, w.slug)],
        "audit": [{"at": local(a.at).isoformat(), "actor": a.actor, "action": a.action, "detail": a.detail} for a in audit],
        "warm_start": [_plain(e) for e in warm],
        "teardown_steps": [{"step": s.step, "at": local(s.at).isoformat()} for s in steps],
        "announcements": {"note": "sent to every participant of the workshop; who read them is not recorded",
                          "items": [a.as_json() for a in shown]},
    }


def forget_participant(ctx: actions.Context, actor: str, slug: str, name: str) -> int:
    """Delete ``name``'s dashboard events of workshop ``slug``; the number deleted. Audited.

    Only that workshop's: its trainers may not delete what another workshop holds about the same account."""
    with ctx.sessions() as db:
        n = events.forget(db, name, slug)
        db.commit()
    actions.audit(ctx, actor, "participant.forget", slug, name, f"{n} dashboard events deleted")
    return n


def purge_hooks(ctx: actions.Context, slug: str) -> dict:
    """``run_purge``'s ``forget_data`` (each purged account's events) and ``forget_workshop`` (the announcements)."""
    def forget_data(name: str) -> None:
        with ctx.sessions() as db:
            events.forget(db, name)
            db.commit()

    return {"forget_data": forget_data, "forget_workshop": lambda: announcements.remove_all(ctx.sessions, slug)}


class ExportHandler(BaseHandler):
    def get(self, slug, name):
        w = self.workshop_or_403(slug)
        data = export_participant(self.ctx, w, name)
        actions.audit(self.ctx, self.hub_user.name, "participant.export", slug, name)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"academy-{slug}-{name}.json")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{safe}"')
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, indent=1, ensure_ascii=False))


class ForgetHandler(BaseHandler):
    def post(self, slug, name):
        w = self.workshop_or_403(slug)
        participant_or_404(w, name)
        n = forget_participant(self.ctx, self.hub_user.name, slug, name)
        self.render_page("workshop.html", workshop=w, problems=[],
                         notice=f"{name}: {n} recorded dashboard event{'s' if n != 1 else ''} deleted")


def routes(slug: str) -> list[tuple[str, type]]:
    # Any single path segment: tornado unquotes it, and only a name on the participant list gets further.
    name = r"([^/]{1,100})"
    return [(f"w/{slug}/participants/{name}/export", ExportHandler), (f"w/{slug}/participants/{name}/forget", ForgetHandler)]

