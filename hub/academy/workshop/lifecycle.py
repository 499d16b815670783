"""The workshop lifecycle for the service and the CLI: reservation check, warm start, teardown and purge.

Glue between the tested engines (``reservation``, ``warmstart``, ``teardown``) and the workshop
database: both the service's pages and ``academy workshop warmstart|teardown|purge`` call these
functions, so the same code runs from the browser, the scheduler and a script. Progress lives in
the database (``lifecycle_models`` and ``models.TeardownStep``), so a restart resumes instead of
starting again, and ``claim`` keeps the service and the CLI from running one teardown at once.
"""
from __future__ import annotations

import math
import os
import pwd
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from academy.configurer import state_path
from academy.workshop import actions
from academy.workshop.forms import InvalidRequest, Problem, WorkshopRequest
from academy.workshop.lifecycle_models import TeardownRun, WarmEntry, WarmRun, ensure_tables
from academy.workshop.models import AuditEvent, TeardownStep, TeardownStore, Workshop, utcnow

STALE_HOLDER = timedelta(hours=2)
# Work in flight in this process: ("warm", slug, name), ("teardown", slug), ("purge", slug).
RUNNING: set[tuple] = set()


class Busy(InvalidRequest):
    """The same teardown or purge is running already (here or in another process)."""


def _db(ctx: actions.Context):
    ensure_tables(ctx.sessions)
    return ctx.sessions()


def _profiles(ctx: actions.Context) -> dict:
    from academy.profiles import load_profiles

    return {p.slug: p for p in load_profiles(Path(ctx.cfg["profiles_file"]))}


# --- 1. the reservation, checked before a workshop is created ------------------------------
async def reservation_problems(ctx: actions.Context, req: WorkshopRequest) -> list[Problem]:
    """On the Slurm backend: the reservation exists, covers [start, end) and has room; local needs none."""
    from academy.workshop.reservation import RESERVATION_RE, check_reservation

    if ctx.cfg["backend"] != "slurm":
        return []
    if not req.reservation:
        return [Problem("reservation", "a workshop on the Slurm backend needs its Slurm reservation")]
    if not RESERVATION_RE.match(req.reservation) or req.start is None or req.end is None or req.end <= req.start:
        return []  # the form's own checks already name what is wrong
    chosen = [p for slug, p in _profiles(ctx).items() if slug in req.profiles]
    cores = max([p.cpus for p in chosen] or [1])
    memory = max([p.memory for p in chosen] or ["0"], key=lambda m: _mb(m))
    check = await check_reservation(req.reservation, req.start, req.end, max(req.count + len(req.usernames), 1),
                                    cores_per_participant=cores, memory_per_participant=memory)
    return [Problem("reservation", text) for text in check.problems]


async def room_problems(ctx: actions.Context, slug: str, more: int) -> list[Problem]:
    """Adding ``more`` participants on the Slurm backend: does the workshop's reservation still have room?"""
    w = actions.get_workshop(ctx, slug)
    if ctx.cfg["backend"] != "slurm" or w is None or not w.reservation or more <= 0:
        return []
    req = WorkshopRequest(slug=slug, title=w.title, start=w.start.replace(tzinfo=timezone.utc),
                          end=w.end.replace(tzinfo=timezone.utc), profiles=list(w.profiles), reservation=w.reservation,
                          count=len(w.participants) + more)
    return [Problem("count", p.message) for p in await reservation_problems(ctx, req) if "cores" in p.message or "memory" in p.message]


def _mb(size) -> int:
    from academy.workshop.reservation import memory_mb

    try:
        return memory_mb(size)
    except ValueError:
        return 0


# --- 2. warm start ---------------------------------------------------------------------------
def _token(ctx: actions.Context) -> str:
    return ctx.hub.token


def warm_options(ctx: actions.Context, w: Workshop, now: datetime | None = None) -> dict:
    """The workshop's first profile, for the hours left until its end (within the profile's limit)."""
    now = now or utcnow()
    profile = _profiles(ctx).get(w.profiles[0]) if w.profiles else None
    left = math.ceil(max((w.end - now).total_seconds(), 3600) / 3600)
    return {"profile": w.profiles[0], "hours": max(1, min(left, profile.max_hours if profile else left))}


def _save_warm(ctx: actions.Context, slug: str, actor: str):
    def save(st) -> None:
        with _db(ctx) as db:
            row = db.scalar(select(WarmEntry).filter_by(workshop=slug, participant=st.username))
            before = row.state if row else None
            if row is None:
                row = WarmEntry(workshop=slug, participant=st.username)
                db.add(row)
            row.state, row.reason, row.attempts = st.state, st.reason[:1000], st.attempts
            row.since = st.since.astimezone(timezone.utc).replace(tzinfo=None)
            db.commit()
        if st.state != before and st.state in ("running", "failed"):
            actions.audit(ctx, actor, f"warmstart.{st.state}", slug, st.username, st.reason[:300])
    return save


async def warm_start(ctx: actions.Context, actor: str, slug: str, only: list[str] | None = None) -> dict[str, str]:
    """Start the participants' own servers (or only ``only``); returns participant -> state."""
    from academy.workshop.warmstart import WarmStart, WarmStatus

    w = actions.get_workshop(ctx, slug)
    if w is None or w.torn_down_at is not None:
        raise InvalidRequest([Problem("warmstart", f"workshop {slug!r} does not exist or has been torn down")])
    members = [p.username for p in w.participants]
    names = [n for n in (only if only is not None else members) if (("warm", slug, n) not in RUNNING)]
    strangers = sorted(set(names) - set(members))
    if strangers:
        raise InvalidRequest([Problem("username", f"not participants of {slug}: {', '.join(strangers)}")])
    with _db(ctx) as db:
        run = db.scalar(select(WarmRun).filter_by(workshop=slug))
        if run is None:
            # Recorded before any spawn: from now on the binding gives participants the workshop's profile.
            db.add(WarmRun(workshop=slug, actor=actor, options=warm_options(ctx, w)))
            db.commit()
            actions.audit(ctx, actor, "warmstart.begin", slug, detail=f"{len(members)} participants")
    if not names:
        return {}
    save = _save_warm(ctx, slug, actor)
    tries = {e.participant: e.attempts for e in warm_entries(ctx, slug)}
    RUNNING.update(("warm", slug, n) for n in names)
    try:
        for n in names:
            save(WarmStatus(n, "pending", "waiting for a spawn slot", attempts=tries.get(n, 0)))
        async with WarmStart(ctx.hub.api_url, _token(ctx), names, warm_options(ctx, w),
                             concurrent_spawn_limit=max(1, min(ctx.cfg["hub"]["concurrent_spawn_limit"], 50)),
                             on_change=save) as ws:
            for n in names:
                ws.status[n].attempts = tries.get(n, 0)  # a retry counts on from the earlier tries
            result = await ws.run()
    finally:
        RUNNING.difference_update(("warm", slug, n) for n in names)
    return {n: st.state for n, st in result.items()}


async def keep_warm(ctx: actions.Context, slug: str) -> list[str]:
    """Fresh activity for the warmed servers, so an idle culler leaves them until the workshop starts."""
    from academy.workshop.warmstart import WarmStart

    with _db(ctx) as db:
        names = list(db.scalars(select(WarmEntry.participant).filter_by(workshop=slug, state="running")))
    if not names:
        return []
    async with WarmStart(ctx.hub.api_url, _token(ctx), names, {}) as ws:
        for st in ws.status.values():
            st.state = "running"
        return await ws.touch()


def warm_entries(ctx: actions.Context, slug: str) -> list[WarmEntry]:
    with _db(ctx) as db:
        return list(db.scalars(select(WarmEntry).filter_by(workshop=slug).order_by(WarmEntry.participant)))


def warm_run(ctx: actions.Context, slug: str) -> WarmRun | None:
    with _db(ctx) as db:
        return db.scalar(select(WarmRun).filter_by(workshop=slug))


# --- 3. teardown and purge ------------------------------------------------------------------
def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_gone(holder: str, last: datetime) -> bool:
    host, _, pid = holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return utcnow() - last > STALE_HOLDER  # another machine: only a long silence counts


def claim(ctx: actions.Context, slug: str, kind: str, actor: str) -> bool:
    """Take the teardown/purge of ``slug``; False while another live process holds it."""
    me = _me()
    with _db(ctx) as db:
        row = db.scalar(select(TeardownRun).filter_by(workshop=slug, kind=kind))
        if row is None:
            db.add(TeardownRun(workshop=slug, kind=kind, actor=actor, holder=me))
            try:
                db.commit()
                return True
            except IntegrityError:
                return False
        if row.holder and row.holder != me and not _holder_gone(row.holder, row.last_attempt):
            return False
        done = db.execute(update(TeardownRun).where(TeardownRun.id == row.id, TeardownRun.holder == row.holder)
                          .values(holder=me, last_attempt=utcnow()))
        db.commit()
        return done.rowcount == 1


def _release(ctx: actions.Context, slug: str, kind: str, failures: list, complete: bool) -> None:
    with _db(ctx) as db:
        db.execute(update(TeardownRun).where(TeardownRun.workshop == slug, TeardownRun.kind == kind).values(
            holder="", failures=failures, last_attempt=utcnow(), finished_at=utcnow() if complete else None))
        db.commit()


def teardown_run(ctx: actions.Context, slug: str, kind: str = "teardown") -> TeardownRun | None:
    with _db(ctx) as db:
        return db.scalar(select(TeardownRun).filter_by(workshop=slug, kind=kind))


def _home_of(ctx: actions.Context):
    if ctx.cfg["backend"] == "local":
        homes = Path(ctx.cfg["local"]["homes_dir"] or state_path(ctx.cfg, "homes"))
        return lambda n: homes / n
    # Slurm: participants are the site's Unix accounts; their home is wherever the site put it.
    def home(n: str) -> Path:
        try:
            return Path(pwd.getpwnam(n).pw_dir)
        except KeyError:
            return Path("/nonexistent") / n
    return home


def _logins(ctx: actions.Context):
    if ctx.cfg["auth"]["type"] != "native":
        return None, None
    from academy.workshop.teardown import native_login_switch

    return native_login_switch(actions._hub_db(ctx))


def coursework_step(ctx: actions.Context, actor: str, slug: str):
    """The final collect, autograde, feedback and export (``coursework.final_grading``), as a teardown step."""
    def run():
        from academy.workshop import coursework

        return coursework.final_grading(ctx, actor, slug)
    return run


class AuditedStore(TeardownStore):
    """The step store whose ``mark`` writes the step and its audit line in one transaction.

    So a crash can never leave a step done but unlogged (or logged but to be done again).
    """

    def __init__(self, ctx: actions.Context, actor: str, kind: str):
        super().__init__(ctx.sessions)
        self.actor, self.kind = actor, kind

    def mark(self, workshop: str, participant: str, step: str) -> None:
        with self._sessions() as db:
            if db.scalar(select(TeardownStep).filter_by(workshop=workshop, participant=participant, step=step)) is not None:
                return
            db.add(TeardownStep(workshop=workshop, participant=participant, step=step))
            db.add(AuditEvent(actor=self.actor, action=f"{self.kind}.step", workshop=workshop,
                              participant="" if participant == "*" else participant, detail=step))
            db.commit()


async def teardown(ctx: actions.Context, actor: str, slug: str) -> "Outcome":
    """Run (or resume) the teardown; safe to call again until it reports complete."""
    from academy.workshop.teardown import Hub, run_teardown, stop_server

    w = actions.get_workshop(ctx, slug)
    if w is None:
        raise InvalidRequest([Problem("teardown", f"no workshop {slug!r}")])
    if w.torn_down_at is not None:
        return Outcome(True, [], already=True)
    if ("teardown", slug) in RUNNING or not claim(ctx, slug, "teardown", actor):
        raise Busy([Problem("teardown", f"the teardown of {slug} is running already")])
    RUNNING.add(("teardown", slug))
    failures: list = []
    try:
        actions.audit(ctx, actor, "teardown.begin", slug)
        disable, _ = _logins(ctx)
        ours = [p.username for p in w.participants if p.created_here]
        report = await run_teardown(
            slug, ours, hub_api_url=ctx.hub.api_url, token=_token(ctx), store=AuditedStore(ctx, actor, "teardown"),
            state_dir=ctx.cfg["hub"]["state_dir"], home_of=_home_of(ctx),
            workshop_steps=[("coursework", coursework_step(ctx, actor, slug))], disable_login=disable, jobs=2)
        failures = [f"{f.participant} {f.step}: {f.message}" for f in report.failures]
        if report.complete:
            # Existing hub users (SSO, staff) keep their account and home: only their server stops.
            store, hub = AuditedStore(ctx, actor, "teardown"), Hub(ctx.hub.api_url, _token(ctx))
            try:
                for p in w.participants:
                    if p.created_here or store.done(slug, p.username, "stop"):
                        continue
                    try:
                        await stop_server(hub, p.username)
                    except Exception as exc:  # noqa: BLE001 (shown on the page; a rerun retries)
                        failures.append(f"{p.username} stop: {exc}"[:300])
                        continue
                    store.mark(slug, p.username, "stop")
            finally:
                await hub.close()
        complete = not failures
        if complete:
            with _db(ctx) as db:
                db.execute(update(Workshop).where(Workshop.slug == slug).values(torn_down_at=utcnow()))
                db.commit()
        actions.audit(ctx, actor, "teardown.done" if complete else "teardown.incomplete", slug,
                      detail="; ".join(failures)[:2000])
        return Outcome(complete, failures)
    finally:
        _release(ctx, slug, "teardown", failures, not failures)
        RUNNING.discard(("teardown", slug))


def purge_from(ctx: actions.Context, w: Workshop) -> datetime | None:
    """When purge becomes allowed (naive UTC), or None before the teardown finished."""
    if w.torn_down_at is None:
        return None
    return w.torn_down_at + timedelta(days=ctx.wcfg["retention_days"])


async def purge(ctx: actions.Context, actor: str, slug: str) -> "Outcome":
    """Delete the workshop's own accounts, Unix accounts, homes, archives, events and announcements after the retention."""
    from academy.workshop.privacy import purge_hooks
    from academy.workshop.teardown import PurgeTooEarly, run_purge

    w = actions.get_workshop(ctx, slug)
    if w is None:
        raise InvalidRequest([Problem("purge", f"no workshop {slug!r}")])
    if w.purged_at is not None:
        return Outcome(True, [], already=True)
    if w.torn_down_at is None:
        raise InvalidRequest([Problem("purge", "tear the workshop down first")])
    if ("purge", slug) in RUNNING or not claim(ctx, slug, "purge", actor):
        raise Busy([Problem("purge", f"the purge of {slug} is running already")])
    RUNNING.add(("purge", slug))
    failures: list = []
    try:
        actions.audit(ctx, actor, "purge.begin", slug)
        _, delete = _logins(ctx)
        local_root = ctx.cfg["backend"] == "local" and os.geteuid() == 0
        home_of = _home_of(ctx) if ctx.cfg["backend"] == "local" else (lambda n: Path("/nonexistent") / n)
        try:
            report = await run_purge(
                slug, [p.username for p in w.participants if p.created_here], hub_api_url=ctx.hub.api_url,
                token=_token(ctx), store=AuditedStore(ctx, actor, "purge"), state_dir=ctx.cfg["hub"]["state_dir"],
                home_of=home_of, ended_at=w.torn_down_at.replace(tzinfo=timezone.utc),
                retention_days=ctx.wcfg["retention_days"],
                unix_account_of=(lambda n: f"acad-{n}") if local_root else (lambda n: None),
                delete_login=delete, **purge_hooks(ctx, slug))  # events of each account, the announcements
        except PurgeTooEarly as exc:
            failures = [str(exc)]
            raise InvalidRequest([Problem("purge", str(exc))]) from exc
        failures = [f"{f.participant} {f.step}: {f.message}" for f in report.failures]
        if report.complete:
            with _db(ctx) as db:
                db.execute(update(Workshop).where(Workshop.slug == slug).values(purged_at=utcnow()))
                db.commit()
        actions.audit(ctx, actor, "purge.done" if report.complete else "purge.incomplete", slug,
                      detail="; ".join(failures)[:2000])
        return Outcome(report.complete, failures)
    finally:
        _release(ctx, slug, "purge", failures, not failures)
        RUNNING.discard(("purge", slug))


@dataclass
class Outcome:
    complete: bool
    failures: list[str] = field(default_factory=list)
    already: bool = False


def steps_done(ctx: actions.Context, slug: str) -> dict[str, list[str]]:
    """participant ("*" for the workshop) -> steps done, in order."""
    out: dict[str, list[str]] = {}
    with _db(ctx) as db:
        for row in db.scalars(select(TeardownStep).filter_by(workshop=slug).order_by(TeardownStep.id)):
            out.setdefault(row.participant, []).append(row.step)
    return out
