"""The store of learners' progress events (checks, hints, hands, shares, open notebooks) and its bounds.

Learner servers post events to ``api/events`` (academy.workshop.events_api); :func:`record` checks
each one and keeps it in the workshops database, next to a per-participant summary (last activity,
hand, share, open notebooks) and per-exercise counts, so the dashboard never re-reads every event.
Every bound is here (:class:`Limits`): string sizes, a per-user token bucket, how many distinct
exercises and events one learner may leave. A refused event is counted per user and reason
(:class:`Refusal`), shown on the dashboard, and never stored. :func:`for_user` and :func:`forget` are
what the learner's privacy view, the GDPR export and deletion and teardown's purge use.
"""
from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from academy.workshop.models import Base, utcnow

KINDS = ("check", "hint", "solution", "hand", "hand_lowered", "share", "share_ended", "sessions")
# Keys a learner's server may send; "user" (academy.learn writes it) must then be the token's user.
USER_KEYS = ("user", "name", "username")


@dataclass(frozen=True)
class Limits:
    """The bounds of the event API (the contract of issue #10); one instance, :data:`LIMITS`."""

    body_bytes: int = 32 * 1024       # a larger request body is answered 413
    per_request: int = 50             # events in one request, else 400
    name_chars: int = 200             # notebook and exercise
    message_chars: int = 1000
    rate_per_s: float = 10.0          # token bucket per user: sustained events per second ...
    burst: int = 50                   # ... and the bucket's size; beyond it 429
    exercises_per_user: int = 300     # distinct (notebook, exercise) per learner and workshop
    events_per_user: int = 20000      # stored events per learner and workshop (a day at 1/s is 28800)
    open_notebooks: int = 50          # paths in one "sessions" event


LIMITS = Limits()


class LearnerEvent(Base):
    """One accepted event; ``received_at`` (the service's clock) is what time windows use."""

    __tablename__ = "learner_events"
    __table_args__ = (Index("ix_learner_events_ws_user", "workshop", "user", "id"),
                      Index("ix_learner_events_ws_kind", "workshop", "kind", "received_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40))
    user: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    notebook: Mapped[str] = mapped_column(String(200), default="")
    exercise: Mapped[str] = mapped_column(String(200), default="")
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # as the learner's server said
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LearnerState(Base):
    """What the dashboard row needs of one learner in one workshop, kept up to date by :func:`record`."""

    __tablename__ = "learner_state"
    __table_args__ = (UniqueConstraint("workshop", "user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40))
    user: Mapped[str] = mapped_column(String(100), index=True)
    last_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    hand_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    hand_message: Mapped[str] = mapped_column(Text, default="")
    share_path: Mapped[str] = mapped_column(String(300), default="")
    share_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    notebooks: Mapped[list] = mapped_column(JSON, default=list)


class ExerciseCount(Base):
    """Checks of one exercise by one learner: attempts, passes, the last outcome."""

    __tablename__ = "learner_exercises"
    __table_args__ = (UniqueConstraint("workshop", "user", "notebook", "exercise"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40))
    user: Mapped[str] = mapped_column(String(100), index=True)
    notebook: Mapped[str] = mapped_column(String(200))
    exercise: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    passes: Mapped[int] = mapped_column(Integer, default=0)
    hints: Mapped[int] = mapped_column(Integer, default=0)
    last_passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Refusal(Base):
    """How many of a user's events were refused, and why (``malformed``, ``forged``, ``too_large``, ...)."""

    __tablename__ = "learner_refusals"
    __table_args__ = (UniqueConstraint("user", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(100), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


TABLES = [LearnerEvent.__table__, LearnerState.__table__, ExerciseCount.__table__, Refusal.__table__]
_READY: set[int] = set()


def ensure_tables(session: Session) -> Session:
    """Create this module's tables in an older workshop database (once per engine); returns the session."""
    engine = session.get_bind()
    if id(engine) not in _READY:
        for table in TABLES:
            table.create(engine, checkfirst=True)
        _READY.add(id(engine))
    return session


@dataclass
class EventRecord:
    """One stored event as plain data (what ``for_user`` returns and the export writes)."""

    id: int
    workshop: str
    user: str
    kind: str
    notebook: str
    exercise: str
    passed: bool | None
    message: str
    time: str | None
    received_at: str

    @classmethod
    def of(cls, row: LearnerEvent) -> "EventRecord":
        iso = lambda t: t and t.replace(tzinfo=timezone.utc).isoformat()  # noqa: E731
        return cls(row.id, row.workshop, row.user, row.kind, row.notebook, row.exercise, row.passed,
                   row.message, iso(row.time), iso(row.received_at))

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class Accepted:
    """What :func:`record` did with a batch: counts, refusals by reason, and the users whose row changed."""

    accepted: int = 0
    refused: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    records: list[EventRecord] = field(default_factory=list)

    def refuse(self, reason: str, n: int = 1) -> None:
        self.refused += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n


class Refused(ValueError):
    """One event cannot be kept; ``reason`` is the counted word."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason


# Bidi overrides, zero-width and other invisible format characters let "ex1" and "ex1\u200b" look alike.
def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn") and ch not in "\n\t"


def clean_name(value, limit: int) -> str:
    """A notebook or exercise name: a string, NFC, no control or invisible characters, at most ``limit``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused("malformed", "names must be strings")
    value = unicodedata.normalize("NFC", value).strip()
    if len(value) > limit:
        raise Refused("too_long", f"longer than {limit} characters")
    if any(_invisible(ch) or ch in "\n\t" for ch in value):
        raise Refused("malformed", "control or invisible characters")
    return value


def clean_message(value, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused("malformed", "message must be a string")
    value = unicodedata.normalize("NFC", value)
    if len(value) > limit:
        raise Refused("too_long", f"message longer than {limit} characters")
    return "".join(ch for ch in value if not _invisible(ch))


def parse_time(value) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise Refused("malformed", "time must be ISO-8601")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused("malformed", "time must be ISO-8601") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)


def share_path_ok(path: str, user: str) -> bool:
    """A share's "Open" link may only lead into the sharing learner's own server, on this site."""
    return bool(re.fullmatch(r"(/[A-Za-z0-9._~-]+)*/user/" + re.escape(user) + r"/[A-Za-z0-9._~/%-]*", path)) and "/../" not in path + "/"


def check_event(raw, user: str, limits: Limits = LIMITS) -> dict:
    """One posted event as clean column values; raises :class:`Refused`."""
    if not isinstance(raw, dict):
        raise Refused("malformed", "an event is a JSON object")
    for key in USER_KEYS:
        if key in raw and raw[key] != user:
            raise Refused("forged", f"{key} names another user")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise Refused("malformed", f"kind must be one of {', '.join(KINDS)}")
    passed = raw.get("passed")
    if passed is not None and not isinstance(passed, bool):
        raise Refused("malformed", "passed must be true, false or null")
    event = {"kind": kind, "notebook": clean_name(raw.get("notebook"), limits.name_chars),
             "exercise": clean_name(raw.get("exercise"), limits.name_chars), "passed": passed if kind == "check" else None,
             "message": clean_message(raw.get("message"), limits.message_chars), "time": parse_time(raw.get("time"))}
    if kind in ("check", "hint", "solution") and not event["exercise"]:
        raise Refused("malformed", f"a {kind} needs its exercise")
    if kind == "check" and passed is None:
        raise Refused("malformed", "a check needs passed: true or false")
    if kind == "share" and not share_path_ok(event["message"], user):
        raise Refused("malformed", "a share's path must be the learner's own server")
    if kind == "sessions":
        try:
            paths = json.loads(event["message"] or "[]")
        except ValueError:
            raise Refused("malformed", "sessions: a JSON list of notebook paths") from None
        if not isinstance(paths, list) or len(paths) > limits.open_notebooks:
            raise Refused("malformed", f"sessions: a JSON list of at most {limits.open_notebooks} paths")
        event["message"] = json.dumps([clean_name(p, limits.name_chars) for p in paths], ensure_ascii=False)
    return event


def _state(session: Session, user: str, slug: str) -> LearnerState:
    row = session.scalar(select(LearnerState).filter_by(workshop=slug, user=user))
    if row is None:
        row = LearnerState(workshop=slug, user=user, events=0, notebooks=[], hand_message="", share_path="")
        session.add(row)
    return row


def _apply(session: Session, st: LearnerState, e: dict, now: datetime, limits: Limits) -> None:
    """Update the summaries; refuses (before changing anything) an exercise beyond the cardinality bound."""
    kind = e["kind"]
    if kind in ("check", "hint", "solution"):
        row = session.scalar(select(ExerciseCount).filter_by(
            workshop=st.workshop, user=st.user, notebook=e["notebook"], exercise=e["exercise"]))
        if row is None:
            distinct = session.scalar(select(func.count()).select_from(ExerciseCount).filter_by(workshop=st.workshop, user=st.user))
            if distinct >= limits.exercises_per_user:
                raise Refused("too_many_exercises")
            row = ExerciseCount(workshop=st.workshop, user=st.user, notebook=e["notebook"], exercise=e["exercise"],
                                attempts=0, passes=0, hints=0)
            session.add(row)
        if kind == "check":
            row.attempts, row.passes = row.attempts + 1, row.passes + int(e["passed"])
            row.last_passed = e["passed"]
        else:
            row.hints += 1
        row.last_at = now
    st.last_at, st.events = now, (st.events or 0) + 1
    if kind == "hand":
        st.hand_at, st.hand_message = now, e["message"]
    elif kind == "hand_lowered":
        st.hand_at, st.hand_message = None, ""
    elif kind == "share":
        st.share_path, st.share_at = e["message"], now
    elif kind == "share_ended":
        st.share_path, st.share_at = "", None
    elif kind == "sessions":
        st.notebooks = json.loads(e["message"])


def count_refusals(session: Session, user: str, reasons: dict[str, int]) -> None:
    """Add to the per-user, per-reason refusal counts (the dashboard's "refused" column)."""
    for reason, n in reasons.items():
        row = ensure_tables(session).scalar(select(Refusal).filter_by(user=user, reason=reason))
        if row is None:
            row = Refusal(user=user, reason=reason, count=0)
            session.add(row)
        row.count, row.last_at = row.count + n, utcnow()


def record(session: Session, user: str, slug: str, events: list, limits: Limits = LIMITS,
           now: datetime | None = None) -> Accepted:
    """Check and keep a batch of ``user``'s events for workshop ``slug``; refusals are counted; commits."""
    now = now or utcnow()
    out = Accepted()
    st = _state(ensure_tables(session), user, slug)
    for raw in events:
        try:
            if (st.events or 0) >= limits.events_per_user:
                raise Refused("store_full")
            e = check_event(raw, user, limits)
            _apply(session, st, e, now, limits)
            row = LearnerEvent(workshop=slug, user=user, received_at=now, **e)
            session.add(row)
            session.flush()
            out.accepted += 1
            out.records.append(EventRecord.of(row))
        except Refused as exc:
            out.refuse(exc.reason)
    count_refusals(session, user, out.reasons)
    session.commit()
    return out


def for_user(session: Session, user: str) -> list[EventRecord]:
    """Every event kept about ``user``, oldest first (the privacy view and the GDPR export)."""
    rows = ensure_tables(session).scalars(select(LearnerEvent).filter_by(user=user).order_by(LearnerEvent.id))
    return [EventRecord.of(r) for r in rows]


def state_for_user(session: Session, user: str) -> list[LearnerState]:
    return list(ensure_tables(session).scalars(select(LearnerState).filter_by(user=user).order_by(LearnerState.workshop)))


def refusals_for(session: Session, users: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in ensure_tables(session).scalars(select(Refusal).where(Refusal.user.in_(users))):
        out.setdefault(row.user, {})[row.reason] = row.count
    return out


def forget(session: Session, user: str, slug: str | None = None) -> int:
    """Delete what the service holds about ``user`` (in one workshop, or all); the rows deleted; commits."""
    n = 0
    ensure_tables(session)
    for table in (LearnerEvent, LearnerState, ExerciseCount):
        q = delete(table).where(table.user == user)
        n += session.execute(q.where(table.workshop == slug) if slug else q).rowcount or 0
    if slug is None:
        n += session.execute(delete(Refusal).where(Refusal.user == user)).rowcount or 0
    session.commit()
    return n


class RateLimiter:
    """A token bucket per user, in memory (a restart forgives everyone, which is fine for a flood guard)."""

    def __init__(self, rate: float = LIMITS.rate_per_s, burst: int = LIMITS.burst, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, user: str, n: int) -> bool:
        """Take ``n`` tokens for ``user``; False (and nothing taken) when the bucket has fewer."""
        now = self.clock()
        tokens, then = self._buckets.get(user, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if n > tokens:
            self._buckets[user] = (tokens, now)
            return False
        self._buckets[user] = (tokens - n, now)
        return True


def window_start(now: datetime | None = None, minutes: int = 10) -> datetime:
    return (now or utcnow()) - timedelta(minutes=minutes)
