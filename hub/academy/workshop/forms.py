"""What a trainer asks for, checked before anything is created: each problem names its form field.

The same checks run for the browser form and ``academy workshop create``; a request with any
problem creates nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from academy.configurer import USERNAME_PATTERN
from academy.workshop.models import AMSTERDAM, Workshop, to_utc

# Participant accounts are <slug>-NN and must still fit the hub's username pattern (27 characters).
SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,19}$"
GROUP_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, tied to the form field that shows it."""

    field: str
    message: str


@dataclass
class WorkshopRequest:
    """A new workshop as asked for (times in Europe/Amsterdam)."""

    slug: str
    title: str
    start: datetime
    end: datetime
    profiles: list[str] = field(default_factory=list)
    reservation: str = ""
    trainer_group: str = ""
    participant_group: str = ""
    count: int = 0
    usernames: list[str] = field(default_factory=list)
    lessons: list[tuple[str, datetime | None]] = field(default_factory=list)
    assignments: list[tuple[str, datetime | None]] = field(default_factory=list)

    def __post_init__(self):
        self.trainer_group = self.trainer_group or f"{self.slug}-trainers"
        self.participant_group = self.participant_group or self.slug


class InvalidRequest(ValueError):
    """Raised with every problem at once, so the form can show them all."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


def parse_time(value: str, name: str, problems: list[Problem]) -> datetime | None:
    value = (value or "").strip()
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=AMSTERDAM)
        except ValueError:
            continue
    problems.append(Problem(name, f"{value!r} is not a time; use YYYY-MM-DDTHH:MM (Europe/Amsterdam)"))
    return None


def split_names(text: str) -> list[str]:
    """A pasted participant list: names separated by commas, spaces or new lines."""
    return [n for n in re.split(r"[\s,;]+", text or "") if n]


def check_usernames(names: list[str], problems: list[Problem], name: str = "usernames") -> None:
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})
    if dupes:
        problems.append(Problem(name, f"listed more than once: {', '.join(dupes)}"))
    bad = [n for n in names if not re.match(USERNAME_PATTERN, n)]
    if bad:
        problems.append(Problem(name, f"not valid usernames (lowercase letter first, then lowercase letters, digits, - or _; at most 27): {', '.join(bad)}"))


def check_request(req: WorkshopRequest, db: Session, *, known_profiles: set[str], max_participants: int) -> list[Problem]:
    """Every problem with ``req`` against the rules and the workshops already in ``db``."""
    problems: list[Problem] = []
    if not re.match(SLUG_PATTERN, req.slug or ""):
        problems.append(Problem("slug", "2 to 20 characters: a lowercase letter, then lowercase letters, digits or -"))
    elif db.scalar(select(Workshop).filter_by(slug=req.slug)) is not None:
        problems.append(Problem("slug", f"a workshop {req.slug!r} already exists"))
    if not req.title.strip() or len(req.title) > 200:
        problems.append(Problem("title", "give a title of at most 200 characters"))
    if req.end <= req.start:
        problems.append(Problem("end", "the end must be after the start"))
    unknown = [p for p in req.profiles if p not in known_profiles]
    if unknown:
        problems.append(Problem("profiles", f"unknown profile(s): {', '.join(unknown)} (known: {', '.join(sorted(known_profiles))})"))
    if not req.profiles:
        problems.append(Problem("profiles", "choose at least one profile"))
    for name, value in (("trainer_group", req.trainer_group), ("participant_group", req.participant_group)):
        if not re.match(GROUP_PATTERN, value):
            problems.append(Problem(name, "a group name: lowercase letter first, then lowercase letters, digits, - or _"))
    if req.trainer_group == req.participant_group:
        problems.append(Problem("participant_group", "must differ from the trainer group"))
    if req.reservation and not re.match(r"^[A-Za-z0-9_.-]{1,100}$", req.reservation):
        problems.append(Problem("reservation", "letters, digits, _ . and - only"))
    if req.count < 0:
        problems.append(Problem("count", "cannot be negative"))
    check_usernames(req.usernames, problems)
    total = req.count + len(req.usernames)
    if total > max_participants:
        problems.append(Problem("count", f"{total} participants is more than the {max_participants} allowed per workshop"))
    if req.reservation and req.end > req.start:
        clash = db.scalar(
            select(Workshop).where(
                Workshop.reservation == req.reservation,
                Workshop.torn_down_at.is_(None),
                Workshop.start < to_utc(req.end),
                Workshop.end > to_utc(req.start),
            )
        )
        if clash is not None:
            problems.append(Problem("reservation", f"workshop {clash.slug!r} already uses reservation {req.reservation!r} at that time"))
    for kind, items in (("lessons", req.lessons), ("assignments", req.assignments)):
        for item, _ in items:
            if not re.match(r"^[A-Za-z0-9_.-]{1,200}$", item) or item.startswith("."):
                problems.append(Problem(kind, f"{item!r}: names are letters, digits, _ . and - only"))
    return problems
