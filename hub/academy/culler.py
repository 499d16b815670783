"""The GPU-aware idle culler: a hub service that stops servers whose kernels AND GPUs sat idle.

jupyterhub-idle-culler judges a server by the hub's ``last_activity``, which an open browser tab
keeps fresh, and knows nothing of GPUs (its 2.x has no arbiter hook to add that).  This service asks
each running server's ``academy.labtools`` extension (``academy/api/activity``, through the proxy,
with its own token holding ``access:servers``) when its kernels and terminals were last active,
whether a kernel is busy, and when its GPUs were last busy.  A server is stopped when all of those
are older than its profile's ``idle_seconds`` (``profiles.yaml``; default ``culler.timeout``): a
GPU-busy server with no browser open is kept, an idle GPU under an open tab is freed.  Before that,
the learner gets a warning notice in JupyterLab (``academy/api/notices``).

Run by the hub (``python -m academy.culler``, see ``configurer.update_culler``).  SIGINT/SIGTERM end
it at once, whatever it is waiting on, so stopping the hub never waits for the culler.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from academy.profiles import load_profiles

log = logging.getLogger("academy.culler")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


@dataclass
class Verdict:
    """What to do with one server this round, and why (logged)."""

    action: str  # "keep", "warn" or "cull"
    idle_seconds: float
    limit_seconds: int
    reason: str


def judge(server: dict, activity: dict | None, limit: int, warn_before: int, now: dt.datetime,
          held_until: dt.datetime | None = None) -> Verdict:
    """Pure decision for one server from the hub's model and its extension's activity report.

    ``held_until``: the start of the workshop this server was warm-started for; it is kept until
    then, and its idle time counts from then, not from the warm start.
    """
    if held_until is not None:
        if now < held_until:
            return Verdict("keep", 0.0, limit, "warm-started for a workshop that has not begun")
        server = {**server, "started": max(parse_time(server.get("started")) or held_until, held_until).isoformat()}
    if activity is None:
        # No extension answering (an old server): fall back to the hub's own activity record.
        last = parse_time(server.get("last_activity")) or parse_time(server.get("started")) or now
        idle = (now - last).total_seconds()
        return Verdict("cull" if idle >= limit else "keep", idle, limit, "hub activity (no academy extension)")
    if activity.get("busy"):
        return Verdict("keep", 0.0, limit, "a kernel is busy")
    times = [parse_time(server.get("started")), parse_time(activity.get("last_activity")),
             parse_time(activity.get("gpu_last_busy"))]
    last = max(t for t in times if t is not None) if any(times) else now
    idle = max(0.0, (now - last).total_seconds())
    gpu_busy_recently = parse_time(activity.get("gpu_last_busy")) == last and last != times[0]
    if idle >= limit:
        return Verdict("cull", idle, limit, "kernels, terminals and GPUs idle")
    if idle >= max(0, limit - warn_before):
        return Verdict("warn", idle, limit, "idle, warning the learner")
    return Verdict("keep", idle, limit, "GPU busy recently" if gpu_busy_recently else "active recently")


@dataclass
class Culler:
    """One culling loop against the hub's REST API."""

    api_url: str
    proxy_url: str
    token: str
    profiles_file: str
    default_idle: int
    warn_before: int
    every: float
    concurrency: int = 10
    workshops_db: str = ""  # warm-started servers are held until their workshop starts (academy.workshop)
    warned: dict = field(default_factory=dict)
    _profiles: tuple = (None, {})
    holds: dict = field(default_factory=dict)

    def __post_init__(self):
        self.http = AsyncHTTPClient(force_instance=True)
        self.sem = asyncio.Semaphore(self.concurrency)

    async def fetch(self, url: str, method: str = "GET", body: dict | None = None) -> dict | None:
        req = HTTPRequest(url, method=method, headers={"Authorization": f"token {self.token}",
                                                       "Content-Type": "application/json"},
                          body=json.dumps(body) if body is not None else None,
                          request_timeout=15, follow_redirects=False)
        resp = await self.http.fetch(req)
        return json.loads(resp.body) if resp.body else None

    def idle_limits(self) -> dict[str, int]:
        """Per-profile idle seconds, re-read when profiles.yaml changes."""
        try:
            mtime = Path(self.profiles_file).stat().st_mtime
            if self._profiles[0] != mtime:
                limits = {p.slug: p.idle_seconds for p in load_profiles(Path(self.profiles_file)) if p.idle_seconds}
                self._profiles = (mtime, limits)
        except Exception as exc:  # keep the last good profiles rather than stop culling
            log.warning("Could not read %s: %s", self.profiles_file, exc)
        return self._profiles[1]

    async def servers(self):
        offset = 0
        while True:
            page = await self.fetch(f"{self.api_url}/users?state=ready&offset={offset}&limit=200",)
            items = page["items"] if isinstance(page, dict) and "items" in page else page
            for user in items or []:
                for name, server in (user.get("servers") or {}).items():
                    yield user["name"], name, server
            if not isinstance(page, dict) or not page.get("_pagination", {}).get("next"):
                return
            offset = page["_pagination"]["next"]["offset"]

    async def handle(self, user: str, name: str, server: dict, limits: dict[str, int]) -> Verdict | None:
        if not server.get("ready") or server.get("pending"):
            return None
        profile = (server.get("user_options") or {}).get("profile")
        limit = limits.get(profile, self.default_idle)
        base = self.proxy_url.rstrip("/") + server["url"]
        async with self.sem:
            try:
                activity = await self.fetch(base + "academy/api/activity")
            except (HTTPClientError, OSError, ValueError) as exc:
                log.info("%s/%s: no activity report (%s); using the hub's", user, name, exc)
                activity = None
            verdict = judge(server, activity, limit, self.warn_before, dt.datetime.now(dt.timezone.utc),
                            self.holds.get(user) if not name else None)
            key = (user, name, server.get("started"))
            if verdict.action == "warn" and key not in self.warned:
                left = max(0, int(limit - verdict.idle_seconds))
                minutes = max(1, round(left / 60))
                message = (f"Your server has been idle for {int(verdict.idle_seconds // 60)} min (no running cell, "
                           f"no GPU use). It will be stopped in about {minutes} min to free its resources for others; "
                           "your saved files stay. Run a cell to keep it.")
                try:
                    await self.fetch(base + "academy/api/notices", "POST", {"level": "warning", "message": message})
                    self.warned[key] = True
                    log.info("%s/%s: warned (idle %ds of %ds)", user, name, verdict.idle_seconds, limit)
                except (HTTPClientError, OSError) as exc:
                    log.warning("%s/%s: could not post the warning: %s", user, name, exc)
            elif verdict.action == "cull":
                path = f"/users/{quote(user)}/servers/{quote(name)}" if name else f"/users/{quote(user)}/server"
                log.info("Culling %s/%s: %s for %ds (limit %ds, profile %s)", user, name, verdict.reason,
                         verdict.idle_seconds, limit, profile)
                try:
                    await self.fetch(self.api_url + path, "DELETE")
                except HTTPClientError as exc:
                    log.warning("%s/%s: stop refused: %s", user, name, exc)
                self.warned.pop(key, None)
            elif verdict.action == "keep":
                self.warned.pop(key, None)
            return verdict

    async def cull_once(self) -> list[Verdict]:
        limits = self.idle_limits()
        self.holds = {}
        if self.workshops_db:
            from academy.workshop.lifecycle_models import warm_holds

            try:
                self.holds = warm_holds(self.workshops_db)
            except Exception as exc:  # noqa: BLE001 (an unreadable workshop db must not stop culling)
                log.warning("Could not read warm-start holds from the workshop database: %s", exc)
        tasks = [self.handle(u, n, s, limits) async for u, n, s in self.servers()]
        return [v for v in await asyncio.gather(*tasks) if v is not None]

    async def run(self) -> None:
        while True:
            try:
                await self.cull_once()
            except (HTTPClientError, OSError, ValueError) as exc:
                log.warning("Culling round failed: %s", exc)
            await asyncio.sleep(self.every)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m academy.culler", description=__doc__.splitlines()[0])
    p.add_argument("--profiles-file", required=True)
    p.add_argument("--timeout", type=int, default=3600, help="idle seconds for profiles without idle_seconds")
    p.add_argument("--warn-before", type=int, default=600, help="seconds before the cull that the learner is warned")
    p.add_argument("--every", type=float, default=60, help="seconds between rounds")
    p.add_argument("--proxy-url", default=os.environ.get("ACADEMY_PROXY_URL", ""), help="public URL of the proxy")
    p.add_argument("--workshops-db", default="", help="workshop database: warm-started servers are kept until their workshop starts")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s academy.culler] %(message)s")

    async def run() -> None:
        culler = Culler(
            api_url=os.environ["JUPYTERHUB_API_URL"].rstrip("/"), proxy_url=args.proxy_url,
            token=os.environ["JUPYTERHUB_API_TOKEN"], profiles_file=args.profiles_file,
            default_idle=args.timeout, warn_before=args.warn_before, every=args.every, workshops_db=args.workshops_db,
        )
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Cancel whatever is in flight: a half-finished round is simply redone by the next start.
            loop.add_signal_handler(sig, task.cancel)
        await culler.run()

    try:
        asyncio.run(run())
    except asyncio.CancelledError:
        pass
    log.info("stopped")
    return 0


if __name__ == "__main__":
    from academy.shutdown import exit_now

    exit_now(main())
