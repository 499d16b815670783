"""The live workshop dashboard: the page, its Server-Sent Events stream, the per-exercise view, a JSON API.

Authorised like every workshop page (``BaseHandler.workshop_or_403``): admins and the workshop's
trainers; anyone else, another workshop's trainer included, gets 403 on page, stream and API.
:class:`Live` connects the event API to the streams: an accepted event wakes every stream of its
workshop at once (``event: activity`` with the events, then ``event: row`` with the learner's new
row), and every ``REFRESH_SECONDS`` a stream re-reads the servers (one hub call per workshop,
shared by all its streams) and sends the rows that changed. The page's small script applies rows
by ``textContent`` only, so nothing a learner sends is ever parsed as HTML.
"""
from __future__ import annotations

import asyncio
import json
import time

from tornado import web
from tornado.iostream import StreamClosedError

from academy.workshop import actions, lifecycle
from academy.workshop.dashboard_assignments import read_cells, workshop_inputs
from academy.workshop.dashboard_rows import FILTERS, Server, add_slurm_details, build_rows, exercise_view, fetch_servers
from academy.workshop.service import BaseHandler

REFRESH_SECONDS = 5.0
KEEPALIVE_SECONDS = 15.0


class Live:
    """The open streams of each workshop, and the servers' states shared between them."""

    def __init__(self):
        self._queues: dict[str, set[asyncio.Queue]] = {}
        self._servers: dict[str, tuple[float, dict[str, Server]]] = {}
        self._assignments: dict[str, dict[str, list[dict]]] = {}  # slug -> user -> assignment cells
        self._locks: dict[str, asyncio.Lock] = {}

    def subscribe(self, slug: str) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self._queues.setdefault(slug, set()).add(q)
        return q

    def unsubscribe(self, slug: str, q: asyncio.Queue) -> None:
        self._queues.get(slug, set()).discard(q)

    def publish(self, slug: str, user: str, records: list) -> None:
        """Called by the event API after ``record``: wake the workshop's streams."""
        for q in self._queues.get(slug, ()):
            q.put_nowait((user, records))

    def cached(self, slug: str) -> dict[str, Server]:
        return self._servers.get(slug, (0.0, {}))[1]

    def cached_assignments(self, slug: str) -> dict[str, list[dict]]:
        return self._assignments.get(slug, {})

    async def servers(self, ctx: actions.Context, w, max_age: float = REFRESH_SECONDS - 0.5) -> dict[str, Server]:
        """The participants' servers, at most ``max_age`` old: one hub call per workshop per refresh."""
        lock = self._locks.setdefault(w.slug, asyncio.Lock())
        async with lock:
            at, known = self._servers.get(w.slug, (0.0, {}))
            if time.monotonic() - at < max_age:
                return known
            failed = {e.participant: e.reason or "warm start failed" for e in lifecycle.warm_entries(ctx, w.slug) if e.state == "failed"}
            try:
                known = await fetch_servers(ctx.hub.api_url, ctx.hub.token, [p.username for p in w.participants], failed)
                if ctx.cfg["backend"] == "slurm":
                    await add_slurm_details(known)
            except Exception as exc:  # noqa: BLE001 (the hub is down or slow: show the last known states)
                print(f"academy dashboard: server states of {w.slug}: {exc}", flush=True)
            inputs = workshop_inputs(ctx, w)
            try:  # the course's folders and the homes: off the event loop
                cells = await asyncio.get_running_loop().run_in_executor(None, read_cells, *inputs) if inputs else {}
                self._assignments[w.slug] = cells
            except Exception as exc:  # noqa: BLE001 (an unreadable course: keep the last column)
                print(f"academy dashboard: assignments of {w.slug}: {exc}", flush=True)
            self._servers[w.slug] = (time.monotonic(), known)
            return known


def live(handler: web.RequestHandler) -> Live:
    return handler.settings.setdefault("live", Live())


def rows_json(ctx: actions.Context, w, servers: dict[str, Server], users: list[str] | None = None,
              assignments: dict[str, list[dict]] | None = None) -> list[dict]:
    with ctx.sessions() as db:
        names = users if users is not None else [p.username for p in w.participants]
        return [r.as_json() for r in build_rows(db, w.slug, names, servers, assignments=assignments)]


class DashboardHandler(BaseHandler):
    async def get(self, slug):
        w = self.workshop_or_403(slug)
        hub = live(self)
        servers = await hub.servers(self.ctx, w)
        rows = rows_json(self.ctx, w, servers, assignments=hub.cached_assignments(slug))
        self.render_page("dashboard.html", workshop=w, rows=rows, filters=FILTERS)


class ExercisesHandler(BaseHandler):
    def get(self, slug):
        w = self.workshop_or_403(slug)
        with self.ctx.sessions() as db:
            exercises = exercise_view(db, slug)
        self.render_page("dashboard_exercises.html", workshop=w, exercises=exercises, learners=len(w.participants))


class ApiDashboardHandler(BaseHandler):
    async def get(self, slug):
        """The rows as JSON; ``?filter=stuck|not-started|hand``."""
        w = self.workshop_or_403(slug)
        wanted = self.get_argument("filter", "all")
        if wanted not in FILTERS:
            raise web.HTTPError(400, f"filter must be one of {', '.join(FILTERS)}")
        hub = live(self)
        rows = rows_json(self.ctx, w, await hub.servers(self.ctx, w), assignments=hub.cached_assignments(slug))
        self.set_header("Cache-Control", "no-store")
        self.finish({"workshop": slug, "filter": wanted, "rows": [r for r in rows if wanted in r["filters"]]})


class StreamHandler(BaseHandler):
    async def get(self, slug):
        w = self.workshop_or_403(slug)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        hub, loop = live(self), asyncio.get_running_loop()
        q, sent = hub.subscribe(slug), {}
        next_refresh, last_write = 0.0, loop.time()
        try:
            self.write("retry: 2000\n\n")
            await self.flush()
            while True:
                changed: dict[str, list] = {}
                try:
                    user, records = await asyncio.wait_for(q.get(), max(0.05, next_refresh - loop.time()))
                    changed.setdefault(user, []).extend(records)
                    while not q.empty():  # what arrived meanwhile goes in the same write
                        user, records = q.get_nowait()
                        changed.setdefault(user, []).extend(records)
                except asyncio.TimeoutError:
                    pass
                if loop.time() >= next_refresh:
                    w = actions.get_workshop(self.ctx, slug) or w  # participants added or removed meanwhile
                    await hub.servers(self.ctx, w)
                    changed.update({p.username: changed.get(p.username, []) for p in w.participants})
                    next_refresh = loop.time() + REFRESH_SECONDS
                members = {p.username for p in w.participants}
                activity = [r.as_json() for u, recs in changed.items() if u in members for r in recs]
                chunks = [f"event: activity\ndata: {json.dumps(activity)}\n\n"] if activity else []
                for row in rows_json(self.ctx, w, hub.cached(slug), [u for u in changed if u in members],
                                     hub.cached_assignments(slug)):
                    if sent.get(row["user"]) != row:
                        sent[row["user"]] = row
                        chunks.append(f"event: row\ndata: {json.dumps(row)}\n\n")
                if not chunks and loop.time() - last_write > KEEPALIVE_SECONDS:
                    chunks.append(": keepalive\n\n")  # also how a closed connection is noticed
                if chunks:
                    self.write("".join(chunks))
                    await self.flush()
                    last_write = loop.time()
                if self._gone:
                    break
        except StreamClosedError:
            pass
        finally:
            hub.unsubscribe(slug, q)

    _gone = False

    def on_connection_close(self):
        self._gone = True


def routes(slug: str) -> list[tuple[str, type]]:
    return [(f"w/{slug}/dashboard", DashboardHandler), (f"w/{slug}/dashboard/stream", StreamHandler),
            (f"w/{slug}/dashboard/exercises", ExercisesHandler), (f"api/workshops/{slug}/dashboard", ApiDashboardHandler)]
