"""Workshop state in SQLAlchemy: workshops, their content and participants, the audit log, teardown progress.

SQLite in the state directory by default (as the hub's own database); any SQLAlchemy URL works.
Times are stored as naive UTC and shown in Europe/Amsterdam.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_utc(moment: datetime) -> datetime:
    """An aware datetime (or one naive in Amsterdam time) as naive UTC for storage."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=AMSTERDAM)
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def local(moment: datetime | None) -> datetime | None:
    """A stored naive-UTC time as Europe/Amsterdam, for display."""
    return None if moment is None else moment.replace(tzinfo=timezone.utc).astimezone(AMSTERDAM)


class Base(DeclarativeBase):
    pass


class Workshop(Base):
    __tablename__ = "workshops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    start: Mapped[datetime] = mapped_column(DateTime)
    end: Mapped[datetime] = mapped_column(DateTime)
    profiles: Mapped[list] = mapped_column(JSON, default=list)
    reservation: Mapped[str] = mapped_column(String(100), default="")
    trainer_group: Mapped[str] = mapped_column(String(100))
    participant_group: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    torn_down_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    content: Mapped[list["Content"]] = relationship(back_populates="workshop", cascade="all, delete-orphan", order_by="Content.release_at", lazy="selectin")
    participants: Mapped[list["Participant"]] = relationship(back_populates="workshop", cascade="all, delete-orphan", order_by="Participant.username", lazy="selectin")

    def is_running(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.start <= now < self.end and self.torn_down_at is None


class Content(Base):
    """A lesson (curriculum folder made visible in homes) or an assignment (course release) with its time."""

    __tablename__ = "content"
    __table_args__ = (UniqueConstraint("workshop_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id"))
    kind: Mapped[str] = mapped_column(String(20))  # "lesson" | "assignment"
    name: Mapped[str] = mapped_column(String(200))
    release_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    workshop: Mapped[Workshop] = relationship(back_populates="content")


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("workshop_id", "username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id"))
    username: Mapped[str] = mapped_column(String(100))
    # True for the <slug>-NN accounts this service made (and may therefore purge).
    created_here: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    workshop: Mapped[Workshop] = relationship(back_populates="participants")


class AuditEvent(Base):
    """Who did what, when, to which workshop and participant. Never holds a password."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    workshop: Mapped[str] = mapped_column(String(40), default="")
    participant: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class TeardownStep(Base):
    """One completed step of a teardown or purge, so a restarted run skips it."""

    __tablename__ = "teardown_steps"
    __table_args__ = (UniqueConstraint("workshop", "participant", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40))
    participant: Mapped[str] = mapped_column(String(100))
    step: Mapped[str] = mapped_column(String(60))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def open_db(url: str) -> sessionmaker[Session]:
    """Create the tables if needed and return a session factory."""
    engine = create_engine(url, future=True)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


class TeardownStore:
    """The ``store`` the teardown engine records progress in: ``done`` and ``mark`` per step."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def done(self, workshop: str, participant: str, step: str) -> bool:
        with self._sessions() as db:
            row = db.scalar(select(TeardownStep).filter_by(workshop=workshop, participant=participant, step=step))
            return row is not None

    def mark(self, workshop: str, participant: str, step: str) -> None:
        if self.done(workshop, participant, step):
            return
        with self._sessions() as db:
            db.add(TeardownStep(workshop=workshop, participant=participant, step=step))
            db.commit()

    def completed(self, workshop: str) -> list[TeardownStep]:
        with self._sessions() as db:
            return list(db.scalars(select(TeardownStep).filter_by(workshop=workshop).order_by(TeardownStep.id)))
