"""Warm start: start each participant's own default server before a workshop, through the hub's REST API.

The caller holds a token with ``start:servers!group=<participants>`` and
``read:servers!group=<participants>`` (JupyterHub 6 scopes), plus ``users:activity!group=…``
for ``keep_alive``. Spawns go through the same strict options path as the spawn form (the
hub's ``options_from_form``/``parse_user_options``), so ``options`` holds only ``profile``
and ``hours``. At most ``concurrent_spawn_limit`` spawns are in flight at once, so the hub
never answers 429 because of us; each one is followed on the hub's own progress event
stream until it is ready or failed. Everything is asyncio + aiohttp: nothing blocks the
service's event loop.

States of a ``WarmStatus``: ``pending`` (not requested yet: waiting for a spawn slot, or the
hub asked us to come back), ``started`` (the hub accepted the spawn; ``reason`` is its latest
progress message, e.g. the Slurm queue reason), ``running`` (ready), ``failed`` (``reason``
says why; ``retry(username)`` tries again).

Keeping warm servers from the idle culler: the culler (jupyterhub-idle-culler) culls on the
server's ``last_activity``. ``keep_alive(until)`` posts ``POST /hub/api/users/<name>/activity``
with a fresh ``last_activity`` for the user and the default server every ``every`` seconds
until the workshop start, so a server warmed 10 minutes early survives a culler timeout
shorter than that; afterwards the participant's own activity takes over.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)
ALLOWED_OPTIONS = frozenset({"profile", "hours"})
STATES = ("pending", "started", "running", "failed")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class WarmStatus:
    """Where one participant's warm start stands, and since when."""

    username: str
    state: str = "pending"
    reason: str = "waiting for a spawn slot"
    since: datetime = field(default_factory=_now)
    attempts: int = 0

    def as_dict(self) -> dict:
        return {"username": self.username, "state": self.state, "reason": self.reason,
                "since": self.since.isoformat(), "attempts": self.attempts}


class WarmStartError(ValueError):
    """The warm start was configured wrongly (bad options, bad limit); nothing was started."""


class WarmStart:
    """Start, follow and retry the participants' default servers.

    ``on_change(status)`` (optional, sync) is called on every state or reason change, so a
    service can store and show progress. ``session`` may be an existing ``aiohttp`` session.
    """

    def __init__(self, hub_api_url: str, token: str, usernames: list[str], options: dict, *,
                 concurrent_spawn_limit: int = 10, spawn_timeout: float = 900,
                 on_change: Callable[[WarmStatus], None] | None = None,
                 session: aiohttp.ClientSession | None = None):
        unknown = set(options) - ALLOWED_OPTIONS
        if unknown:
            raise WarmStartError(f"unknown spawn option(s) {sorted(unknown)}; only profile and hours are accepted")
        if not isinstance(concurrent_spawn_limit, int) or concurrent_spawn_limit < 1:
            raise WarmStartError("concurrent_spawn_limit must be a whole number of at least 1")
        if len(set(usernames)) != len(usernames):
            raise WarmStartError("the participant list has duplicates")
        self.api = hub_api_url.rstrip("/")
        self.token = token
        self.options = dict(options)
        self.limit = concurrent_spawn_limit
        self.spawn_timeout = spawn_timeout
        self.on_change = on_change
        self.status: dict[str, WarmStatus] = {u: WarmStatus(u) for u in usernames}
        self._slots = asyncio.Semaphore(concurrent_spawn_limit)
        self._session = session
        self._own_session = session is None
        self._tasks: dict[str, asyncio.Task] = {}
        self.max_in_flight = 0
        self._in_flight = 0

    # --- plumbing ------------------------------------------------------------------------
    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Authorization": f"token {self.token}"})
        return self._session

    def _headers(self) -> dict:
        return {} if self._own_session else {"Authorization": f"token {self.token}"}

    def _url(self, username: str, tail: str = "") -> str:
        return f"{self.api}/users/{quote(username, safe='')}{tail}"

    def _set(self, username: str, state: str, reason: str) -> None:
        st = self.status[username]
        if (st.state, st.reason) == (state, reason):
            return
        if st.state != state:
            st.since = _now()
        st.state, st.reason = state, reason
        log.info("warm start %s: %s (%s)", username, state, reason)
        if self.on_change:
            self.on_change(st)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "WarmStart":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- the run -------------------------------------------------------------------------
    async def run(self) -> dict[str, WarmStatus]:
        """Warm every participant (at most ``concurrent_spawn_limit`` at once); return the records."""
        for name in self.status:
            self._launch(name)
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        return self.status

    def _launch(self, username: str) -> asyncio.Task:
        task = asyncio.create_task(self._warm_one(username), name=f"warm-{username}")
        self._tasks[username] = task
        return task

    async def retry(self, username: str) -> WarmStatus:
        """Try a failed (or never started) participant again and wait for the outcome."""
        if username not in self.status:
            raise KeyError(f"{username!r} is not a participant of this warm start")
        current = self._tasks.get(username)
        if current is not None and not current.done():
            await current
            return self.status[username]
        self._set(username, "pending", "waiting for a spawn slot (retry)")
        await self._launch(username)
        return self.status[username]

    async def _warm_one(self, username: str) -> None:
        st = self.status[username]
        async with self._slots:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                st.attempts += 1
                await asyncio.wait_for(self._spawn_and_follow(username), self.spawn_timeout)
            except asyncio.TimeoutError:
                self._set(username, "failed", f"not ready after {self.spawn_timeout:.0f} s")
            except aiohttp.ClientError as exc:
                self._set(username, "failed", f"hub unreachable: {exc}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must show on the page, not kill the other participants
                log.exception("warm start of %s", username)
                self._set(username, "failed", f"internal error: {exc}")
            finally:
                self._in_flight -= 1

    async def _server(self, username: str) -> dict | None:
        http = await self._http()
        async with http.get(self._url(username), headers=self._headers()) as r:
            if r.status != 200:
                raise _Refused(r.status, await _message(r))
            return (await r.json()).get("servers", {}).get("")

    async def _spawn_and_follow(self, username: str) -> None:
        http = await self._http()
        try:
            server = await self._server(username)
        except _Refused as exc:
            self._set(username, "failed", exc.describe(username))
            return
        if not (server and (server.get("ready") or server.get("pending") == "spawn")):
            while True:
                async with http.post(self._url(username, "/server"), headers=self._headers(),
                                     json={"display_name": "", "user_options": self.options}) as r:
                    if r.status == 429:  # someone else filled the hub's spawn limit: come back
                        wait = float(r.headers.get("Retry-After", "5") or 5)
                        self._set(username, "pending", f"the hub is busy starting other servers; retrying in {wait:.0f} s")
                        await asyncio.sleep(min(wait, 60))
                        continue
                    if r.status not in (201, 202):
                        message = await _message(r)
                        if r.status == 400 and "already running" in message:
                            break
                        self._set(username, "failed", _Refused(r.status, message).describe(username))
                        return
                    break
        self._set(username, "started", "the hub is starting the server")
        await self._follow(username)

    async def _follow(self, username: str) -> None:
        """Read the hub's progress event stream until ready or failed."""
        http = await self._http()
        async with http.get(self._url(username, "/server/progress"), headers=self._headers(),
                            timeout=aiohttp.ClientTimeout(total=None, sock_read=self.spawn_timeout)) as r:
            if r.status == 200:
                async for raw in r.content:
                    line = raw.decode(errors="replace").strip()
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if event.get("ready"):
                        self._set(username, "running", "ready")
                        return
                    if event.get("failed"):
                        self._set(username, "failed", event.get("message") or "spawn failed")
                        return
                    if event.get("message"):
                        self._set(username, "started", event["message"])
        # The stream ended or was refused (e.g. 400 "not starting"): the user model has the truth.
        server = await self._server(username)
        if server and server.get("ready"):
            self._set(username, "running", "ready")
        else:
            self._set(username, "failed", "the spawn ended without a running server (see the hub log)")

    # --- keeping warm servers alive ------------------------------------------------------
    async def touch(self) -> list[str]:
        """Post fresh activity for every running participant; returns who was touched."""
        http = await self._http()
        stamp = _now().isoformat().replace("+00:00", "Z")
        touched = []
        for name, st in self.status.items():
            if st.state != "running":
                continue
            body = {"last_activity": stamp, "servers": {"": {"last_activity": stamp}}}
            async with http.post(self._url(name, "/activity"), headers=self._headers(), json=body) as r:
                if r.status < 300:
                    touched.append(name)
                else:
                    log.warning("keep-alive for %s refused: %s %s", name, r.status, await _message(r))
        return touched

    async def keep_alive(self, until: datetime, every: float = 60) -> None:
        """Touch the running servers every ``every`` seconds until ``until`` (aware datetime)."""
        while _now() < until:
            await self.touch()
            await asyncio.sleep(max(0.0, min(every, (until - _now()).total_seconds())))

    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in STATES}
        for st in self.status.values():
            counts[st.state] += 1
        return counts


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def describe(self, username: str) -> str:
        if self.status == 403:
            return f"the warm-start token may not start {username}'s server (not in the participant group?)"
        if self.status == 404:
            # The hub hides users outside the token's group filter behind the same 404.
            return f"{username} is not a hub user in the participant group"
        return f"the hub refused ({self.status}): {self.message}"


async def _message(r: aiohttp.ClientResponse) -> str:
    text = await r.text()
    try:
        return str(json.loads(text).get("message", text))[:300]
    except (ValueError, AttributeError):
        return text[:300]
