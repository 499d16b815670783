"""Lifecycle state in the workshop database: warm-start runs and per-participant progress, teardown runs.

Kept apart from ``models`` (same declarative ``Base``, same database) so the lifecycle's tables
can be added to an existing workshop database: ``ensure_tables`` creates them if missing.
Teardown steps themselves live in ``models.TeardownStep`` (the engine's step store).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from academy.workshop.models import Base, utcnow


class WarmRun(Base):
    """A workshop's warm start has begun (once; a restart resumes it, never starts it again)."""

    __tablename__ = "warm_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40), unique=True)
    begun_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    options: Mapped[dict] = mapped_column(JSON, default=dict)


class WarmEntry(Base):
    """One participant's warm start: pending, started, running or failed, with the reason."""

    __tablename__ = "warm_entries"
    __table_args__ = (UniqueConstraint("workshop", "participant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40))
    participant: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    since: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TeardownRun(Base):
    """A teardown (or purge) that has begun; ``failures`` are the last run's, empty when it completed."""

    __tablename__ = "teardown_runs"
    __table_args__ = (UniqueConstraint("workshop", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # "teardown" | "purge"
    actor: Mapped[str] = mapped_column(String(100))
    begun_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_attempt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    failures: Mapped[list] = mapped_column(JSON, default=list)
    # Who runs it now ("host:pid"), so the service and the CLI never run one teardown at once.
    holder: Mapped[str] = mapped_column(String(200), default="")


_READY: set[int] = set()
TABLES = (WarmRun.__table__, WarmEntry.__table__, TeardownRun.__table__)


def ensure_tables(sessions: sessionmaker[Session]) -> None:
    """Create the lifecycle tables in an older workshop database (once per session factory)."""
    if id(sessions) in _READY:
        return
    engine = sessions.kw["bind"]
    have = set(inspect(engine).get_table_names())
    for table in TABLES:
        if table.name not in have:
            table.create(engine, checkfirst=True)
    _READY.add(id(sessions))


def warm_holds(db_url: str) -> dict[str, datetime]:
    """participant -> their workshop's start (aware UTC), for warm-started servers of workshops not begun yet.

    Read by the idle culler (``academy.culler --workshops-db``) each round; times past are left out.
    """
    from datetime import timezone

    from sqlalchemy import create_engine, select

    from academy.workshop.models import Workshop

    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            if "warm_entries" not in inspect(conn).get_table_names():
                return {}
            rows = conn.execute(select(WarmEntry.participant, Workshop.start)
                                .join(Workshop, Workshop.slug == WarmEntry.workshop)
                                .where(WarmEntry.state == "running", Workshop.torn_down_at.is_(None),
                                       Workshop.end > utcnow()))
            holds: dict[str, datetime] = {}
            for name, start in rows:
                holds[name] = max(holds.get(name, start.replace(tzinfo=timezone.utc)), start.replace(tzinfo=timezone.utc))
            return holds
    finally:
        engine.dispose()
