"""Announcements: short messages a workshop's trainers post to every participant, kept in the workshops database.

Same declarative ``Base`` and database as :mod:`academy.workshop.models`; ``ensure_table`` adds the
table to an older workshop database. Shown three ways: on the trainer's workshop page (with
delete), to learners through ``GET api/announcements`` (their JupyterLab polls it through the
``academy.labtools`` proxy and shows each once as a notification), and on the hub's home page
(``hub_page_announcements``, a JupyterHub template variable that reads this table directly, see
the README). Texts are plain text everywhere: every display escapes them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, create_engine, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from academy.workshop.forms import InvalidRequest, Problem
from academy.workshop.models import Base, Participant, Workshop, local, utcnow

MAX_LENGTH = 500
# Per workshop, newest first: what a learner and the hub page get (older ones stay on the trainer's page).
MAX_LISTED = 20
log = logging.getLogger(__name__)


class Announcement(Base):
    """One message of a workshop's trainer to its participants."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workshop: Mapped[str] = mapped_column(String(40), index=True)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def as_json(self) -> dict:
        return {"id": self.id, "workshop": self.workshop, "text": self.text, "time": local(self.at).isoformat(),
                "author": self.author}


_READY: set[int] = set()


def ensure_table(sessions: sessionmaker[Session]) -> None:
    """Create the table in an older workshop database (once per session factory)."""
    if id(sessions) not in _READY:
        Announcement.__table__.create(sessions.kw["bind"], checkfirst=True)
        _READY.add(id(sessions))


def check_text(text: str) -> str:
    """The announcement as stored: trimmed, 1 to 500 characters, no control characters but newlines and tabs."""
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise InvalidRequest([Problem("announcement", "write a message first")])
    if len(text) > MAX_LENGTH:
        raise InvalidRequest([Problem("announcement", f"{len(text)} characters is more than the {MAX_LENGTH} allowed")])
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        raise InvalidRequest([Problem("announcement", "control characters are not allowed")])
    return text


def post(sessions: sessionmaker[Session], workshop: Workshop, author: str, text: str) -> Announcement:
    """Store a checked announcement; a torn-down workshop takes none (its participants are gone)."""
    text = check_text(text)
    if workshop.torn_down_at is not None:
        raise InvalidRequest([Problem("announcement", "the workshop has been torn down")])
    ensure_table(sessions)
    with sessions() as db:
        row = Announcement(workshop=workshop.slug, text=text, author=author)
        db.add(row)
        db.commit()
        return row


def remove(sessions: sessionmaker[Session], slug: str, announcement_id: int) -> bool:
    """Delete one announcement of ``slug``; False when it is not one of that workshop's."""
    ensure_table(sessions)
    with sessions() as db:
        n = db.execute(delete(Announcement).where(Announcement.id == announcement_id, Announcement.workshop == slug)).rowcount
        db.commit()
    return n > 0


def remove_all(sessions: sessionmaker[Session], slug: str) -> int:
    """Delete every announcement of a workshop (its purge)."""
    ensure_table(sessions)
    with sessions() as db:
        n = db.execute(delete(Announcement).where(Announcement.workshop == slug)).rowcount
        db.commit()
    return n


def of_workshops(sessions: sessionmaker[Session], slugs: list[str], limit: int | None = MAX_LISTED) -> list[Announcement]:
    """The announcements of these workshops, newest first (at most ``limit`` per workshop)."""
    if not slugs:
        return []
    ensure_table(sessions)
    with sessions() as db:
        rows = list(db.scalars(select(Announcement).where(Announcement.workshop.in_(slugs))
                               .order_by(Announcement.at.desc(), Announcement.id.desc())))
    if limit is None:
        return rows
    kept: dict[str, int] = {}
    out = []
    for row in rows:
        kept[row.workshop] = kept.get(row.workshop, 0) + 1
        if kept[row.workshop] <= limit:
            out.append(row)
    return out


@dataclass
class HubPageItem:
    """One announcement as the hub's home page shows it (``hub/templates/home.html``)."""

    workshop: str
    title: str
    text: str
    author: str
    time: str


def for_participant(sessions: sessionmaker[Session], name: str) -> list[HubPageItem]:
    """The announcements of ``name``'s active workshops (not torn down, not over), newest first.

    Creates nothing: the hub process reads a database only the service writes.
    """
    with sessions() as db:
        rows = db.execute(
            select(Announcement, Workshop.title).join(Workshop, Workshop.slug == Announcement.workshop)
            .join(Participant, Participant.workshop_id == Workshop.id)
            .where(Participant.username == name, Workshop.torn_down_at.is_(None), Workshop.end > utcnow())
            .order_by(Announcement.at.desc(), Announcement.id.desc()).limit(MAX_LISTED)).all()
    return [HubPageItem(a.workshop, title, a.text, a.author, f"{local(a.at):%Y-%m-%d %H:%M}") for a, title in rows]


class _Lazy:
    """A template value that reads the database only when a template uses it (only the home page does)."""

    def __init__(self, read):
        self._read, self._items = read, None

    def _load(self) -> list[HubPageItem]:
        if self._items is None:
            try:
                self._items = self._read()
            except Exception as exc:  # noqa: BLE001 (a missing or locked database must not break the hub's pages)
                log.warning("academy: announcements not shown on the hub page: %s", exc)
                self._items = []
        return self._items

    def __iter__(self):
        return iter(self._load())

    def __bool__(self) -> bool:
        return bool(self._load())

    def __len__(self) -> int:
        return len(self._load())


def hub_page_announcements(db_url: str):
    """The ``academy_announcements`` template variable: JupyterHub calls it with the page's user (or None)."""
    state: dict = {}

    def value(user) -> _Lazy:
        name = getattr(user, "name", None)
        if not name or getattr(user, "kind", "user") != "user":
            return _Lazy(list)
        if "sessions" not in state:
            state["sessions"] = sessionmaker(create_engine(db_url, future=True), expire_on_commit=False)
        return _Lazy(lambda: for_participant(state["sessions"], name))

    return value
