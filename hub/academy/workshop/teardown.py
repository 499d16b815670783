"""Workshop teardown and purge: idempotent, resumable steps per participant, recorded in a step store.

Teardown, in this order (each step marked done per participant, so a rerun after a crash or
a kill skips what finished and never does a step twice once it is marked):

1. the injected course steps (final ``collect``, ``autograde``, ``feedback``), per participant,
   ``jobs`` at a time, blocking callables in threads; 2. workshop-wide ones (``export``) once, as ``*``;
3. ``block``: password login refused (``disable_login``, by default NativeAuthenticator's
   ``is_authorized`` set to false, which ``academy.auth`` re-reads on every login) and every
   API/OAuth token of the participant deleted, so open sessions on their server end too.
   Group memberships are kept: they do not block a login, and the participant group is what
   the service's ``!group=`` scopes reach the account through for ``purge``;
4. ``unshare``: all shares and share codes of their default server revoked (``/hub/api/shares``);
5. ``stop``: their server stopped through the hub (a Slurm job ends CANCELLED);
6. ``archive``: their home packed into ``<state_dir>/workshops/<workshop>/archives/<name>.tar.gz``
   (root-owned, 0600), walked with directory file descriptors and ``O_NOFOLLOW``: a symlink
   is stored as a symlink, never followed, so a planted link to ``/etc/shadow`` or another
   home archives the link, not its target.

Purge (after ``retention_days``) deletes the workshop's own data once (``forget_workshop``: its
announcements) and then, per participant: what the service recorded about them (``forget_data``:
their dashboard events), the hub user, the native login, the local backend's Unix account
``acad-<name>`` (``userdel`` as a subprocess), the home, and the archive.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import quote

import aiohttp

from academy.slurm.commands import unix_name
from academy.workshop.homearchive import archive_home, archive_path

WORKSHOP_WIDE = "*"
TEARDOWN_STEPS = ("block", "unshare", "stop", "archive")
PURGE_STEPS = ("purge-events", "purge-hub-user", "purge-login", "purge-unix", "purge-home", "purge-archive")


class StepStore(Protocol):
    """Where progress lives: the service's database, or ``JsonStepStore``."""

    def done(self, workshop: str, participant: str, step: str) -> bool: ...

    def mark(self, workshop: str, participant: str, step: str) -> None: ...


class JsonStepStore:
    """Steps done, in one JSON file written atomically (temp file, fsync, rename)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def done(self, workshop: str, participant: str, step: str) -> bool:
        return step in self._load().get(workshop, {}).get(participant, [])

    def mark(self, workshop: str, participant: str, step: str) -> None:
        with self._lock:
            data = self._load()
            steps = data.setdefault(workshop, {}).setdefault(participant, [])
            if step in steps:
                return
            steps.append(step)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)


@dataclass
class StepFailure:
    """One step that failed for one participant; the run goes on with the others."""

    participant: str
    step: str
    message: str


@dataclass
class TeardownReport:
    """What a run did: steps run now, steps skipped as already done, and failures (rerun to finish)."""

    ran: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures


class HubError(RuntimeError):
    """The hub refused a teardown request; the step stays undone and a rerun retries it."""


class Hub:
    """The few hub REST calls teardown and purge need (aiohttp, token auth)."""

    def __init__(self, api_url: str, token: str, session: aiohttp.ClientSession | None = None):
        self.api = api_url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"}
        self._session = session

    async def call(self, method: str, path: str, ok=(200, 201, 202, 204), **kw) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.request(method, self.api + path, headers=self.headers, **kw) as r:
            text = await r.text()
            if r.status not in ok:
                raise HubError(f"{method} {path}: {r.status} {text[:200]}")
            try:
                return r.status, json.loads(text) if text else None
            except ValueError:
                return r.status, text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _u(name: str) -> str:
    return quote(name, safe="")  # names are checked by unix_name already; quoting is belt and braces


async def _call(fn: Callable, *args) -> Any:
    """Await an async callable; run a blocking one in a thread so the event loop stays free."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    return await result if inspect.isawaitable(result) else result


# --- the built-in steps ----------------------------------------------------------------------
async def block_login(hub: Hub, name: str, disable_login: Callable[[str], Any] | None) -> None:
    if disable_login is not None:
        await _call(disable_login, name)
    status, tokens = await hub.call("GET", f"/users/{_u(name)}/tokens", ok=(200, 404))
    if status == 404:
        return
    for token in (tokens or {}).get("api_tokens", []) + (tokens or {}).get("oauth_tokens", []):
        await hub.call("DELETE", f"/users/{_u(name)}/tokens/{quote(str(token['id']), safe='')}", ok=(204, 404))


async def revoke_shares(hub: Hub, name: str) -> None:
    await hub.call("DELETE", f"/shares/{_u(name)}/", ok=(204, 404))
    await hub.call("DELETE", f"/share-codes/{_u(name)}/", ok=(200, 204, 404))


async def stop_server(hub: Hub, name: str, timeout: float = 300) -> None:
    await hub.call("DELETE", f"/users/{_u(name)}/server", ok=(202, 204, 400, 404))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, user = await hub.call("GET", f"/users/{_u(name)}", ok=(200, 404))
        server = (user or {}).get("servers", {}).get("") if status == 200 else None
        if not server:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise HubError(f"server of {name} still {server.get('pending') or 'running'} after {timeout:.0f} s")
        await asyncio.sleep(1)


# --- the runs ----------------------------------------------------------------------------------
async def _steps(workshop: str, participants: list[str], steps: list[tuple[str, Callable]], store: StepStore,
                 report: TeardownReport, jobs: int, on_step: Callable | None) -> None:
    """Run each step for every participant (``jobs`` at once) before the next step starts."""
    gate = asyncio.Semaphore(max(1, jobs))

    async def one(step: str, fn: Callable, name: str) -> None:
        if store.done(workshop, name, step):
            report.skipped.append((name, step))
            return
        async with gate:
            try:
                await fn(name)
            except Exception as exc:
                report.failures.append(StepFailure(name, step, f"{type(exc).__name__}: {exc}"[:300]))
                return
            store.mark(workshop, name, step)
            report.ran.append((name, step))
            if on_step:
                on_step(name, step)

    for step, fn in steps:
        # A participant whose earlier step failed is not taken further: rerun after fixing it.
        failed = {f.participant for f in report.failures}
        await asyncio.gather(*(one(step, fn, n) for n in participants if n not in failed))


def _check_names(participants: list[str], workshop: str) -> None:
    if len(set(participants)) != len(participants):
        raise ValueError("the participant list has duplicates")
    for name in participants:
        unix_name(name)  # also keeps path separators and option-like names out of paths and argv
    unix_name(workshop)


async def run_teardown(
    workshop: str,
    participants: list[str],
    *,
    hub_api_url: str,
    token: str,
    store: StepStore,
    state_dir: str | os.PathLike,
    home_of: Callable[[str], Path],
    course_steps: list[tuple[str, Callable[[str], Any]]] = (),
    workshop_steps: list[tuple[str, Callable[[], Any]]] = (),
    disable_login: Callable[[str], Any] | None = None,
    jobs: int = 1,
    stop_timeout: float = 300,
    on_step: Callable[[str, str], None] | None = None,
) -> TeardownReport:
    """Tear a workshop down; safe to rerun until ``report.complete`` (each step runs once)."""
    _check_names(participants, workshop)
    report = TeardownReport()
    hub = Hub(hub_api_url, token)
    try:
        await _steps(workshop, participants, [(s, lambda n, fn=fn: _call(fn, n)) for s, fn in course_steps],
                     store, report, jobs, on_step)
        if report.failures:
            return report
        await _steps(workshop, [WORKSHOP_WIDE], [(s, lambda _n, fn=fn: _call(fn)) for s, fn in workshop_steps],
                     store, report, 1, on_step)
        if report.failures:
            return report
        builtin = [
            ("block", lambda n: block_login(hub, n, disable_login)),
            ("unshare", lambda n: revoke_shares(hub, n)),
            ("stop", lambda n: stop_server(hub, n, stop_timeout)),
            ("archive", lambda n: asyncio.to_thread(archive_home, Path(home_of(n)),
                                                    archive_path(Path(state_dir), workshop, n))),
        ]
        await _steps(workshop, participants, builtin, store, report, jobs, on_step)
    finally:
        await hub.close()
    return report


class PurgeTooEarly(RuntimeError):
    """Purge was asked for before the retention period ended, or before teardown finished."""


async def userdel(unix_account: str) -> None:
    """Delete a Unix account (not its home: that is its own step); an absent account is fine."""
    proc = await asyncio.create_subprocess_exec("userdel", unix_name(unix_account), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode not in (0, 6):  # 6: the account does not exist
        raise RuntimeError(f"userdel {unix_account}: {err.decode(errors='replace').strip()}")


async def run_purge(
    workshop: str,
    participants: list[str],
    *,
    hub_api_url: str,
    token: str,
    store: StepStore,
    state_dir: str | os.PathLike,
    home_of: Callable[[str], Path],
    ended_at: datetime,
    retention_days: float = 30,
    now: datetime | None = None,
    unix_account_of: Callable[[str], str | None] = lambda n: f"acad-{n}",
    delete_login: Callable[[str], Any] | None = None,
    forget_data: Callable[[str], Any] | None = None,
    forget_workshop: Callable[[], Any] | None = None,
    on_step: Callable[[str, str], None] | None = None,
) -> TeardownReport:
    """Delete everything of a torn-down workshop's participants once ``retention_days`` have passed."""
    _check_names(participants, workshop)
    now = now or datetime.now(timezone.utc)
    if now < ended_at + timedelta(days=retention_days):
        raise PurgeTooEarly(f"workshop {workshop} may be purged from {ended_at + timedelta(days=retention_days):%Y-%m-%d %H:%M} "
                            f"({retention_days:g} days retention)")
    unfinished = [n for n in participants if not store.done(workshop, n, "archive")]
    if unfinished:
        raise PurgeTooEarly(f"teardown has not finished for {', '.join(unfinished[:10])}: run teardown first")
    report = TeardownReport()
    hub = Hub(hub_api_url, token)

    async def unix(n: str) -> None:
        account = unix_account_of(n)
        if account:
            await userdel(account)

    async def home(n: str) -> None:
        path = Path(home_of(n))
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            await asyncio.to_thread(shutil.rmtree, path)  # fd-based: never follows a symlink inside

    if forget_workshop is not None:
        await _steps(workshop, [WORKSHOP_WIDE], [("purge-announcements", lambda _n: _call(forget_workshop))],
                     store, report, 1, on_step)
    steps = [
        ("purge-events", lambda n: _call(forget_data, n) if forget_data else asyncio.sleep(0)),
        ("purge-hub-user", lambda n: hub.call("DELETE", f"/users/{_u(n)}", ok=(204, 404))),
        ("purge-login", lambda n: _call(delete_login, n) if delete_login else asyncio.sleep(0)),
        ("purge-unix", unix),
        ("purge-home", home),
        ("purge-archive", lambda n: asyncio.to_thread(archive_path(Path(state_dir), workshop, n).unlink, True)),
    ]
    try:
        await _steps(workshop, participants, steps, store, report, 1, on_step)
    finally:
        await hub.close()
    return report


# --- native logins (the local-accounts backend) ------------------------------------------------
def native_login_switch(db_url: str) -> tuple[Callable[[str], None], Callable[[str], None]]:
    """``(disable, delete)`` for NativeAuthenticator accounts in the hub database at ``db_url``."""
    from academy.accounts import _session, _user_info

    def change(name: str, delete: bool) -> None:
        db = _session(db_url)
        try:
            info = _user_info().find(db, name)
            if info is not None:
                if delete:
                    db.delete(info)
                else:
                    info.is_authorized = False
                db.commit()
        finally:
            db.close()

    return (lambda name: change(name, False)), (lambda name: change(name, True))

