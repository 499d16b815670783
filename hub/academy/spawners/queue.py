"""A fair, first-come-first-served queue for server starts, shown to the learner on the spawn page.

At 9:00 a whole class presses "Start" within a minute.  JupyterHub's own ``concurrent_spawn_limit``
answers everyone past the limit with a 429 "try again in N seconds", so learners retry at random and
the fastest clicker wins.  Here a start that finds every slot busy waits in line instead, inside the
spawn JupyterHub already tracks as pending: a second request for the same server joins that spawn (the
hub's own rule), and the spawn page's progress stream (``Spawner.progress``) reports the learner's
place and an estimate, so a reload of the page shows the same place.  The wait happens in
``run_pre_spawn_hook``, before JupyterHub starts its ``start_timeout`` clock, so a queued start is never
killed for waiting; the slot is held until the server answers HTTP, because that is where a local
start spends its CPU.  Concurrency comes from the backend (cores on the local backend; Slurm starts are
cheap for the hub and wait in Slurm's own queue) unless ``start_concurrency`` sets it.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from tornado import web
from traitlets import Float, HasTraits, Integer, observe

#: Concurrent starts per backend when ``start_concurrency`` is 0; the local figure is per core.
AUTO_SLURM_CONCURRENCY = 50
DEFAULT_START_SECONDS = 20.0


@dataclass(frozen=True)
class Place:
    """Where a waiting start stands: its 1-based position, how many wait, and a rough estimate."""

    position: int
    waiting: int
    running: int
    eta_seconds: float


class StartPhases:
    """Seconds per phase of one start, logged as ``home 0.41s, curriculum 0.20s, ...`` (benchmarks read it)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    async def time(self, name: str, awaitable):
        started = time.monotonic()
        try:
            return await awaitable
        finally:
            self.seconds[name] = time.monotonic() - started

    def __str__(self) -> str:
        return ", ".join(f"{name} {sec:.2f}s" for name, sec in self.seconds.items())


class StartQueue:
    """Slots for concurrent starts, granted strictly in arrival order; keys are ``user:server``."""

    def __init__(self, concurrency: int):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._waiting: OrderedDict[str, asyncio.Future] = OrderedDict()
        self._running: dict[str, float] = {}
        self._durations: deque[float] = deque(maxlen=20)
        self.granted: list[str] = []  # order of grants, for the log and tests

    def place(self, key: str) -> Place | None:
        if key not in self._waiting:
            return None
        position = list(self._waiting).index(key) + 1
        return Place(position, len(self._waiting), len(self._running), self.estimate(position))

    def estimate(self, position: int) -> float:
        """Seconds until a start at ``position`` gets a slot: whole rounds of recent start times."""
        typical = sorted(self._durations)[len(self._durations) // 2] if self._durations else DEFAULT_START_SECONDS
        return math.ceil(position / self.concurrency) * typical

    def holds(self, key: str) -> bool:
        return key in self._running

    async def acquire(self, key: str) -> int:
        """Wait for a slot; returns the place the start had on arrival (0: no wait)."""
        if key in self._running:
            return 0
        if key not in self._waiting and not self._waiting and len(self._running) < self.concurrency:
            self._grant(key)
            return 0
        future = self._waiting.get(key)
        if future is None:  # a second request for the same start joins it rather than queueing twice
            future = self._waiting[key] = asyncio.get_running_loop().create_future()
        arrived_at = list(self._waiting).index(key) + 1
        try:
            await asyncio.shield(future)
        except BaseException:
            if self._waiting.get(key) is future:
                del self._waiting[key]
            elif future.done() and not future.cancelled():
                self.release(key, record=False)  # granted just as the waiter gave up
            raise
        return arrived_at

    def _grant(self, key: str) -> None:
        self._running[key] = time.monotonic()
        self.granted.append(key)
        del self.granted[:-1000]

    def release(self, key: str, record: bool = True) -> None:
        started = self._running.pop(key, None)
        if started is not None and record:
            self._durations.append(time.monotonic() - started)
        while self._waiting and len(self._running) < self.concurrency:
            next_key, future = self._waiting.popitem(last=False)
            if future.done():
                continue
            self._grant(next_key)
            future.set_result(None)


def auto_concurrency(backend: str, cores: int | None = None) -> int:
    """Starts at once that the backend can take: one per core locally, many under Slurm."""
    if backend == "slurm":
        return AUTO_SLURM_CONCURRENCY
    return max(1, cores or os.cpu_count() or 1)


class TooManyIsNotAnError(logging.Filter):
    """JupyterHub logs a refused (429) spawn as ERROR, with a traceback from the API and as a bare
    "Error starting server NAME: HTTP 429: ..." from the spawn form; it is a capacity answer."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        from_form = exc is None and record.levelno >= logging.ERROR and str(record.msg).startswith(
            "Error starting server") and "HTTP 429:" in record.getMessage()
        if getattr(exc, "status_code", None) == 429 or from_form:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.getMessage()}: too many starts at once, the user was asked to try later"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


_FILTER = TooManyIsNotAnError()


class QueuedStartMixin(HasTraits):
    """Spawner mixin: wait for a start slot before ``start()``, report the place through ``progress()``."""

    start_concurrency = Integer(
        0, config=True, help="Servers that may start at once; more wait in line (0: from the backend)."
    ).tag(min=0)
    queue_wait_limit = Float(
        3600, config=True, help="Seconds a start may wait in line before it is given up."
    )
    _queues: dict[str, StartQueue] = {}
    _slot_granted = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if _FILTER not in logging.getLogger("JupyterHub").filters:
            logging.getLogger("JupyterHub").addFilter(_FILTER)

    @property
    def queue_backend(self) -> str:
        """Batch spawners (batchspawner's ``batch_submit_cmd``) start cheaply for the hub."""
        return "slurm" if hasattr(self, "batch_submit_cmd") else "local"

    @observe("job_id")
    def _submitted(self, change):
        # A batch job, once submitted, waits in the scheduler's own queue: the hub's slot is free again.
        if change.new:
            self.release_start_slot()

    @property
    def queue_key(self) -> str:
        return f"{self.user.name}:{self.name}"

    def start_queue(self) -> StartQueue:
        """One queue per backend class, shared by every spawner of the hub."""
        name = type(self).__name__
        if name not in self._queues:
            n = self.start_concurrency or auto_concurrency(self.queue_backend)
            type(self)._queues[name] = StartQueue(n)
            self.log.info("Spawn queue: %d server(s) may start at once (%s backend)", n, self.queue_backend)
        return self._queues[name]

    async def run_pre_spawn_hook(self):
        result = super().run_pre_spawn_hook()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            await result
        queue = self.start_queue()
        self._slot_granted = False
        waited = time.monotonic()
        try:
            # asyncio.timeout, not wait_for, which on 3.11 can swallow a cancel that comes with the grant.
            async with asyncio.timeout(self.queue_wait_limit):
                arrived = await queue.acquire(self.queue_key)
        except TimeoutError:
            raise web.HTTPError(
                503, f"Waited {self.queue_wait_limit:.0f} s in line for a start slot; please try again later"
            ) from None
        self._slot_granted = True
        self.log.info(
            "Start slot granted to %s (number %d in line on arrival, waited %.1f s)",
            self.queue_key, arrived, time.monotonic() - waited,
        )

    def release_start_slot(self) -> None:
        queue = self.start_queue()
        if queue.holds(self.queue_key):
            queue.release(self.queue_key)

    def hold_slot_until_answering(self, root_url: str, phases: StartPhases, then=None) -> None:
        """Keep the slot, in the background, until the new server answers or dies (start() returns at
        once, so JupyterHub's start_timeout and http_timeout keep their meaning); then call ``then``."""

        async def hold():
            try:
                await phases.time("server", wait_answering(self, root_url))
                self.log.info("Start phases of %s: %s", self.queue_key, phases)
            finally:
                self.release_start_slot()
                if then is not None:
                    then()

        self._holding = asyncio.ensure_future(hold())

    def run_post_stop_hook(self):
        # JupyterHub stops every failed start and always runs this hook: no slot outlives its start.
        self.release_start_slot()
        return super().run_post_stop_hook()

    async def progress(self):
        async for event in self.queue_progress():
            yield event
        async for event in super().progress():
            yield event

    async def queue_progress(self):
        """Progress events while this start waits in line (backends with their own progress call it first)."""
        queue = self.start_queue()
        while self._spawn_pending and not self._slot_granted:
            place = queue.place(self.queue_key)
            if place is None:  # the spawn has not reached the queue yet
                await asyncio.sleep(0.2)
                continue
            minutes = max(1, round(place.eta_seconds / 60))
            yield {
                "progress": 5,
                "message": (
                    f"Many learners are starting at once. You are number {place.position} in line "
                    f"(about {minutes} min). Your place is kept if you reload or leave this page."
                ),
                "academy_queue": {"position": place.position, "waiting": place.waiting,
                                  "eta_seconds": round(place.eta_seconds)},
            }
            await asyncio.sleep(1)


async def wait_answering(spawner, root_url: str, poll_interval: float = 1.0) -> None:
    """Until the new server answers HTTP (any status), exits, or ``http_timeout`` passes; the hub checks again after.

    A server that dies while it starts would otherwise hold its slot, and keep the line waiting, for
    the whole ``http_timeout``.
    """
    from jupyterhub.utils import AnyTimeoutError, wait_for_http_server

    async def exited():
        while (status := await spawner.poll()) is None:
            await asyncio.sleep(poll_interval)
        spawner.log.warning("%s exited while starting (status %s): its start slot is free", spawner.queue_key, status)

    base = spawner.server.base_url if spawner.server else "/"
    answering = asyncio.ensure_future(wait_for_http_server(root_url + base, timeout=spawner.http_timeout))
    dead = asyncio.ensure_future(exited())
    try:
        await asyncio.wait({answering, dead}, return_when=asyncio.FIRST_COMPLETED)
        if answering.done() and isinstance(answering.exception(), AnyTimeoutError):
            spawner.log.warning("%s did not answer within %s s of starting", spawner.queue_key, spawner.http_timeout)
    finally:
        for task in (answering, dead):
            task.cancel()
        await asyncio.gather(answering, dead, return_exceptions=True)

