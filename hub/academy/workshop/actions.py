"""What a trainer can do to a workshop, shared by the service's pages and ``academy workshop``.

Every function takes the acting hub user's name, checks nothing about authorisation (callers
do, with :func:`can_manage`), changes state and appends to the audit log. Passwords are
returned once to the caller and never stored in our database or written to the log.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from academy.accounts import IssuedCredential, set_password
from academy.configurer import state_path
from academy.workshop.forms import InvalidRequest, Problem, WorkshopRequest, check_request, check_usernames
from academy.workshop.hubclient import HubClient, HubError, HubUser  # noqa: F401 (HubError re-exported for callers)
from academy.workshop.models import AuditEvent, Content, Participant, Workshop, open_db, to_utc


@dataclass
class Context:
    """Everything the actions need: site config, our database, the hub API."""

    cfg: dict
    sessions: sessionmaker[Session]
    hub: HubClient

    @property
    def wcfg(self) -> dict:
        return self.cfg["workshops"]

    @property
    def public_url(self) -> str:
        hub = self.cfg["hub"]
        host = hub["ip"] if hub["ip"] not in ("0.0.0.0", "") else "localhost"
        return self.wcfg.get("public_url") or f"http://{host}:{hub['port']}{hub['base_url']}"

    def known_profiles(self) -> set[str]:
        from academy.profiles import load_profiles

        return {p.slug for p in load_profiles(Path(self.cfg["profiles_file"]))}


def db_url(cfg: dict) -> str:
    return cfg["workshops"]["db_url"] or "sqlite:///" + state_path(cfg, "workshops.sqlite")


def token_file(cfg: dict) -> Path:
    return Path(state_path(cfg, "academy-service-token"))


def make_context(cfg: dict, api_url: str | None = None, token: str | None = None) -> Context:
    """For the service (token and URL from the hub's environment) and the CLI (from the state dir)."""
    hub = cfg["hub"]
    api_url = api_url or f"http://127.0.0.1:{hub['port']}{hub['base_url']}hub/api"
    token = token or token_file(cfg).read_text().strip()
    return Context(cfg, open_db(db_url(cfg)), HubClient(api_url, token))


# --- authorisation --------------------------------------------------------------------
def may_use_service(user: HubUser, cfg: dict) -> bool:
    """Admins and members of a trainer group; everyone else (participants) gets 403."""
    return user.admin or bool(user.groups & set(cfg["workshops"]["trainer_groups"]))


def can_manage(user: HubUser, workshop: Workshop) -> bool:
    return user.admin or workshop.trainer_group in user.groups


def visible_workshops(ctx: Context, user: HubUser) -> list[Workshop]:
    with ctx.sessions() as db:
        rows = list(db.scalars(select(Workshop).order_by(Workshop.start)))
    return [w for w in rows if can_manage(user, w)]


def get_workshop(ctx: Context, slug: str) -> Workshop | None:
    with ctx.sessions() as db:
        w = db.scalar(select(Workshop).filter_by(slug=slug))
        if w is not None:
            _ = (w.content, w.participants)  # load while the session is open
        return w


def audit(ctx: Context, actor: str, action: str, workshop: str = "", participant: str = "", detail: str = "") -> None:
    with ctx.sessions() as db:
        db.add(AuditEvent(actor=actor, action=action, workshop=workshop, participant=participant, detail=detail))
        db.commit()


def audit_events(ctx: Context, limit: int | None = None) -> list[AuditEvent]:
    with ctx.sessions() as db:
        q = select(AuditEvent).order_by(AuditEvent.id.desc())
        return list(db.scalars(q.limit(limit) if limit else q))


# --- workshops and participants -----------------------------------------------------------
def create_workshop(ctx: Context, actor: str, req: WorkshopRequest,
                    more_problems: list[Problem] = ()) -> tuple[Workshop, list[IssuedCredential]]:
    """Check everything, then create groups, the workshop and its participants; raises InvalidRequest.

    ``more_problems``: what async checks found (the Slurm reservation, ``lifecycle.reservation_problems``).
    """
    with ctx.sessions() as db:
        problems = check_request(req, db, known_profiles=ctx.known_profiles(), max_participants=ctx.wcfg["max_participants"])
    problems += list(more_problems)
    problems += _participant_problems(ctx, req.count, req.usernames)
    if problems:
        raise InvalidRequest(problems)
    # Groups first: they are idempotent, so a hub failure here leaves no half-made workshop behind.
    ctx.hub.ensure_group(req.participant_group)
    ctx.hub.add_to_group(req.trainer_group, [actor])
    with ctx.sessions() as db:
        w = Workshop(
            slug=req.slug, title=req.title.strip(), start=to_utc(req.start), end=to_utc(req.end),
            profiles=list(req.profiles), reservation=req.reservation, trainer_group=req.trainer_group,
            participant_group=req.participant_group, created_by=actor,
        )
        for kind, items in (("lesson", req.lessons), ("assignment", req.assignments)):
            for name, at in items:
                w.content.append(Content(kind=kind, name=name, release_at=to_utc(at) if at else None))
        db.add(w)
        db.commit()
    audit(ctx, actor, "workshop.create", req.slug, detail=f"{req.title} {req.start:%Y-%m-%d %H:%M}–{req.end:%Y-%m-%d %H:%M} profiles={','.join(req.profiles)} reservation={req.reservation or '-'}")
    creds = add_participants(ctx, actor, req.slug, req.count, req.usernames)
    return get_workshop(ctx, req.slug), creds


def _participant_problems(ctx: Context, count: int, usernames: list[str], workshop: Workshop | None = None) -> list[Problem]:
    problems: list[Problem] = []
    if count and ctx.cfg["auth"]["type"] != "native":
        problems.append(Problem("count", "new local accounts need native authentication; add existing (SSO) users instead"))
    if usernames and not problems:
        missing = [n for n in usernames if re.match(r"^[a-z][a-z0-9_-]{0,26}$", n) and ctx.hub.user(n) is None]
        if missing:
            problems.append(Problem("usernames", f"no such hub user(s): {', '.join(missing)}"))
    if workshop is not None:
        current = {p.username for p in workshop.participants}
        again = sorted(current & set(usernames))
        if again:
            problems.append(Problem("usernames", f"already participants: {', '.join(again)}"))
        total = len(current) + count + len(usernames)
        if total > ctx.wcfg["max_participants"]:
            problems.append(Problem("count", f"{total} participants is more than the {ctx.wcfg['max_participants']} allowed per workshop"))
    return problems


def _next_numbers(workshop: Workshop, count: int) -> list[str]:
    taken = {p.username for p in workshop.participants}
    names, n = [], 1
    while len(names) < count:
        name = f"{workshop.slug}-{n:02d}"
        if name not in taken:
            names.append(name)
        n += 1
    return names


def add_participants(ctx: Context, actor: str, slug: str, count: int = 0, usernames: list[str] | None = None,
                     sso_group: str = "", more_problems: list[Problem] = ()) -> list[IssuedCredential]:
    """New ``<slug>-NN`` accounts (credentials returned once) and/or existing hub users or a group's members.

    ``more_problems``: what async checks found (room in the reservation, ``lifecycle.room_problems``).
    """
    usernames = list(usernames or [])
    workshop = get_workshop(ctx, slug)
    if sso_group:
        members = ctx.hub.group_members(sso_group)
        if members is None:
            raise InvalidRequest([Problem("sso_group", f"no hub group {sso_group!r}")])
        current = {p.username for p in workshop.participants}
        usernames += [m for m in members if m not in current and m not in usernames]
    problems: list[Problem] = []
    check_usernames(usernames, problems)
    if count < 0:
        problems.append(Problem("count", "cannot be negative"))
    problems += _participant_problems(ctx, count, usernames, workshop) + list(more_problems)
    if problems:
        raise InvalidRequest(problems)
    new_names = _next_numbers(workshop, count)
    everyone = new_names + usernames
    if not everyone:
        return []
    ctx.hub.create_users(new_names)
    creds = [set_password(_hub_db(ctx), name) for name in new_names]
    ctx.hub.add_to_group(workshop.participant_group, everyone)
    _make_homes(ctx, everyone)
    with ctx.sessions() as db:
        for name in everyone:
            db.add(Participant(workshop_id=workshop.id, username=name, created_here=name in new_names))
        db.commit()
    for name in everyone:
        audit(ctx, actor, "participant.add", slug, name, "new local account" if name in new_names else "existing hub user")
    return creds


def remove_participant(ctx: Context, actor: str, slug: str, username: str) -> None:
    """Out of the workshop and its group; the hub user and files stay (teardown/purge deal with those)."""
    workshop = get_workshop(ctx, slug)
    with ctx.sessions() as db:
        row = db.scalar(select(Participant).filter_by(workshop_id=workshop.id, username=username))
        if row is None:
            raise InvalidRequest([Problem("username", f"{username!r} is not a participant of {slug}")])
        db.delete(row)
        db.commit()
    ctx.hub.remove_from_group(workshop.participant_group, [username])
    audit(ctx, actor, "participant.remove", slug, username)


def _hub_db(ctx: Context) -> str:
    return "sqlite:///" + state_path(ctx.cfg, "jupyterhub.sqlite")


def _make_homes(ctx: Context, names: list[str]) -> None:
    """Local backend as root: Unix accounts and homes now, not at first spawn."""
    if ctx.cfg["backend"] != "local" or os.geteuid() != 0:
        return
    from academy import localusers

    homes = ctx.cfg["local"]["homes_dir"] or state_path(ctx.cfg, "homes")
    for name in names:
        localusers.prepare_home(name, homes)
