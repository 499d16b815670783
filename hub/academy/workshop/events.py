"""STAND-IN for helper A's dashboard event store (issue #10): replace this file with A's ``events.py``.

Written by helper C only so that C's export, forget and purge run and are tested before A's branch
is merged. It keeps exactly the contract's names (``record``, ``for_user``, ``forget``,
``EventRecord``, ``Accepted``) and nothing of the dashboard; C's code uses only ``for_user`` and
``forget`` and reads records generically (their table columns), so A's richer store fits as is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from academy.workshop.models import Base, utcnow


class EventRecord(Base):
    """One progress event of one learner in one workshop."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(100), index=True)
    workshop: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    notebook: Mapped[str] = mapped_column(String(200), default="")
    exercise: Mapped[str] = mapped_column(String(200), default="")
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


@dataclass
class Accepted:
    """How many events of a request were kept and how many refused."""

    accepted: int
    refused: int


def _ensure(session: Session) -> None:
    EventRecord.__table__.create(session.get_bind(), checkfirst=True)


def record(session: Session, user: str, slug: str, events: list[dict]) -> Accepted:
    _ensure(session)
    for e in events:
        session.add(EventRecord(user=user, workshop=slug, kind=str(e.get("kind", "")), notebook=str(e.get("notebook", "")),
                                exercise=str(e.get("exercise", "")), passed=e.get("passed"), message=str(e.get("message", ""))))
    session.commit()
    return Accepted(len(events), 0)


def for_user(session: Session, user: str) -> list[EventRecord]:
    _ensure(session)
    return list(session.scalars(select(EventRecord).filter_by(user=user).order_by(EventRecord.id)))


def forget(session: Session, user: str) -> int:
    _ensure(session)
    n = session.execute(delete(EventRecord).where(EventRecord.user == user)).rowcount
    session.commit()
    return n
