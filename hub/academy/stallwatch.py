"""Say what the hub was doing when its event loop stalled: a watchdog thread logs the loop's stack.

JupyterHub's own measurement (``PeriodicMetricsCollector``) logs *that* the loop was unresponsive, after
the fact, when the culprit has long returned.  This watchdog beats on the loop every few milliseconds
from a thread of its own; when the beat is late by ``threshold`` seconds, the loop's thread is still
inside the code that blocks it, so the thread samples that thread's stack and logs it once per stall.
It costs a thread waking every ``interval`` seconds, so it is off unless the site config asks for it
(``spawn_queue.stall_stacks``), for diagnosing a hub that stalls under load.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger("academy.stallwatch")


class StallWatch:
    """Beat on ``loop`` every ``interval`` s; log the loop thread's stack when a beat is ``threshold`` s late."""

    def __init__(self, threshold: float, interval: float = 0.02, frames: int = 14, logger=log):
        if threshold <= interval:
            raise ValueError(f"stall threshold {threshold} s must exceed the beat interval {interval} s")
        self.threshold = threshold
        self.interval = interval
        self.frames = frames
        self.log = logger
        self.stacks: list[str] = []  # every stack logged, for tests
        self._last = time.perf_counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._stop = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start beating on ``loop``; call from the loop's own thread."""
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._last = time.perf_counter()
        loop.call_soon(self._beat)
        threading.Thread(target=self._watch, name="academy-stallwatch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        self._last = time.perf_counter()
        if not self._stop.is_set():
            self._loop.call_later(self.interval, self._beat)

    def _watch(self) -> None:
        reported = None
        while not self._stop.wait(self.interval):
            last = self._last
            late = time.perf_counter() - last
            if late < self.threshold or reported == last:
                continue
            reported = last  # one stack per stall, taken while the stall still lasts
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                return  # the loop's thread has ended
            stack = "".join(traceback.format_stack(frame)[-self.frames:])
            self.stacks.append(stack)
            self.log.warning("Event loop blocked for %.2fs so far, in:\n%s", late, stack)


def install(cfg: dict) -> StallWatch | None:
    """Start a watch on the running loop when ``spawn_queue.stall_stacks`` is on (the hub's config load runs in it)."""
    queue = cfg.get("spawn_queue", {})
    if not queue.get("stall_stacks"):
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None  # loaded outside the hub (a test applying config to a bare Config)
    watch = StallWatch(float(queue["stall_log_threshold"]), logger=logging.getLogger("JupyterHub"))
    watch.start(loop)
    return watch
