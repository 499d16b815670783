"""Reservation binding: during a workshop its participants spawn only its profiles, in its reservation.

Read by the spawners' profile picker in the hub process. The bound profiles replace the
reservation and lift the profile's group gate for this participant (the workshop, made by a
trainer, is the authorisation); everything still goes through the strict options parser, so
nothing a participant posts reaches the batch script.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select

from academy.profiles import Profile
from academy.workshop.lifecycle_models import WarmRun, ensure_tables
from academy.workshop.models import Participant, Workshop, local, open_db, utcnow


@dataclass(frozen=True)
class Binding:
    """The profiles a user may spawn now, and what the form tells them about their workshop."""

    profiles: list[Profile]
    message: str = ""
    workshop: str = ""


@lru_cache(maxsize=4)
def _sessions(db_url: str):
    sessions = open_db(db_url)
    ensure_tables(sessions)
    return sessions


def bind(db_url: str, username: str, profiles: list[Profile], now: datetime | None = None) -> Binding:
    now = now or utcnow()
    with _sessions(db_url)() as db:
        rows = list(db.scalars(
            select(Workshop).join(Participant).where(Participant.username == username, Workshop.torn_down_at.is_(None))
            .order_by(Workshop.start)))
        # A begun warm start binds early: the participants' servers start in the reservation before the doors open.
        warm = set(db.scalars(select(WarmRun.workshop).where(WarmRun.workshop.in_([w.slug for w in rows])))) if rows else set()
    running = [w for w in rows if (w.start <= now or w.slug in warm) and now < w.end]
    if running:
        w = running[0]
        bound = [replace(p, reservation=w.reservation or p.reservation, groups=frozenset())
                 for p in profiles if p.slug in w.profiles]
        where = f" in reservation {w.reservation}" if w.reservation else ""
        return Binding(bound, f"Workshop “{w.title}”: your server runs{where} until {local(w.end):%H:%M} (Europe/Amsterdam).", w.slug)
    upcoming = [w for w in rows if now < w.start]
    if upcoming:
        w = upcoming[0]
        return Binding(profiles, f"Workshop “{w.title}” runs {local(w.start):%Y-%m-%d %H:%M}–{local(w.end):%H:%M} "
                                 f"(Europe/Amsterdam); its profile and reservation are yours only then.", w.slug)
    if rows:
        return Binding(profiles, f"Workshop “{rows[-1].title}” has ended; its profile and reservation are no longer yours.", rows[-1].slug)
    return Binding(profiles)
