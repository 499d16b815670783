"""Forward a learner's progress events to the Academy service: tail the JSON-lines file, queue, batch, retry.

``ProgressTail`` reads the lines ``academy.learn.record_event`` appends to the progress file (which
stays as it is: it is the learner's own record) from where the last successful send stopped (a
small cursor file beside it, so a restarted server resends what the service never got).
``EventForwarder`` holds a bounded queue (the oldest event drops out beyond ``max_queue``, counted)
and sends at most one batch per ``interval`` seconds, at most ``max_batch`` events and
``max_body`` bytes per request, under a client-side rate that stays below the service's flood
limit. A failed send (no answer, 5xx, 429) keeps the batch at the head of the queue and backs off
exponentially; 401/403/404 or a redirect (not in a workshop, no service there) pause it for ``pause_seconds``, dropping
what is queued; 400/413 drop only that batch. It never blocks: the post is a coroutine.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from academy.labtools.servicelink import Answer

KINDS = ("check", "hint", "solution", "hand", "hand_lowered", "share", "share_ended", "sessions")
LIMITS = {"notebook": 200, "exercise": 200, "message": 1000}


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def make_event(kind: str, *, notebook: str = "", exercise: str = "", passed: bool | None = None,
               message: str = "", time: str | None = None) -> dict:
    """One event of the contract, strings capped; it never carries a user name (the token says who)."""
    if kind not in KINDS:
        raise ValueError(f"event kind must be one of {', '.join(KINDS)}, not {kind!r}")
    event = {"kind": kind, "notebook": notebook, "exercise": exercise,
             "passed": passed if isinstance(passed, bool) else None, "message": message, "time": time or now_iso()}
    for key, limit in LIMITS.items():
        event[key] = str(event[key] or "")[:limit]
    return event


def event_from_line(line: bytes) -> dict | None:
    """A progress-file line as an event, or None when it is not one of ``record_event``'s lines."""
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict) or raw.get("kind") not in ("check", "hint", "solution"):
        return None
    return make_event(raw["kind"], notebook=raw.get("notebook", ""), exercise=raw.get("exercise", ""),
                      passed=raw.get("passed"), message=raw.get("message", ""), time=str(raw.get("time") or now_iso()))


@dataclass
class Cursor:
    """Where forwarding stopped in the progress file; a new inode means a new file, read from its start."""

    inode: int
    offset: int


class ProgressTail:
    """New complete lines of the progress file, each with the file offset just after it."""

    def __init__(self, path: Path, cursor_path: Path | None = None) -> None:
        self.path = path
        self.cursor_path = cursor_path or path.with_name(path.name + ".forwarded")
        self.cursor = self._start()

    def _stat(self) -> os.stat_result | None:
        try:
            return self.path.stat()
        except OSError:
            return None

    def _start(self) -> Cursor:
        st = self._stat()
        try:
            saved = Cursor(**json.loads(self.cursor_path.read_text()))
        except (OSError, ValueError, TypeError):
            saved = None
        if st is None:
            return Cursor(0, 0)
        if saved and saved.inode == st.st_ino and 0 <= saved.offset <= st.st_size:
            return saved
        # First start with forwarding: what is already in the file was the learner's alone; start at its end.
        return Cursor(st.st_ino, st.st_size)

    def read(self, max_bytes: int = 1 << 20) -> list[tuple[int, bytes]]:
        st = self._stat()
        if st is None:
            return []
        if st.st_ino != self.cursor.inode or st.st_size < self.cursor.offset:
            self.cursor = Cursor(st.st_ino, 0)  # replaced or truncated: a new file from its start
        if st.st_size == self.cursor.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.cursor.offset)
                chunk = f.read(max_bytes)
        except OSError:
            return []
        lines, pos = [], self.cursor.offset
        for line in chunk.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # a line still being written: read it whole next time
            pos += len(line)
            lines.append((pos, line))
        self.cursor = Cursor(st.st_ino, pos)
        return lines

    def save(self, offset: int) -> None:
        """Remember that everything up to ``offset`` reached the service."""
        try:
            tmp = self.cursor_path.with_name(self.cursor_path.name + ".tmp")
            tmp.write_text(json.dumps(asdict(Cursor(self.cursor.inode, offset))))
            tmp.replace(self.cursor_path)
        except OSError:
            pass  # a read-only home: after a restart the events since the last save are not resent


@dataclass
class ForwardStats:
    """Counts shown in ``GET academy/api/help`` and logs: nothing is lost silently."""

    sent: int = 0
    refused_by_service: int = 0
    dropped_overflow: int = 0
    dropped_bad_batch: int = 0
    dropped_paused: int = 0
    failures: int = 0
    last_status: int = 0
    last_error: str = ""
    paused_until: float = 0.0


@dataclass
class _Item:
    event: dict
    offset: int | None  # end of its line in the progress file; None for events made by the server


@dataclass
class EventForwarder:
    """The queue and its sender; ``tick()`` is called every ``interval`` seconds by the extension."""

    post: Callable[[list[dict]], Awaitable[Answer]]
    max_queue: int = 1000
    max_batch: int = 50
    max_body: int = 30 * 1024
    rate_per_second: float = 8.0
    burst: int = 50
    interval: float = 1.0
    backoff_first: float = 2.0
    backoff_max: float = 60.0
    pause_seconds: float = 600.0
    clock: Callable[[], float] = time.monotonic
    on_sent: Callable[[int], None] | None = None  # called with the progress-file offset dealt with
    queue: collections.deque = field(default_factory=collections.deque)
    stats: ForwardStats = field(default_factory=ForwardStats)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._refilled = self.clock()
        self._next_send = 0.0
        self._backoff = 0.0
        self._sending = False

    @property
    def paused(self) -> bool:
        return self.clock() < self.stats.paused_until

    def resume(self) -> None:
        """The service now counts the learner in a workshop (its ``mine`` answered): send again at once."""
        if self.paused:
            self.stats.paused_until = 0.0
            self._next_send = 0.0

    def add(self, event: dict, offset: int | None = None) -> None:
        if self.paused:
            self.stats.dropped_paused += 1
            self._done([_Item(event, offset)])
            return
        self.queue.append(_Item(event, offset))
        while len(self.queue) > self.max_queue:
            self.queue.popleft()
            self.stats.dropped_overflow += 1

    def _done(self, items) -> None:
        """Lines of the progress file that are dealt with (sent or dropped) are not read again after a restart."""
        offsets = [item.offset for item in items if item.offset is not None]
        if offsets and self.on_sent:
            self.on_sent(max(offsets))

    def _batch(self) -> list[_Item]:
        batch, size = [], 16
        allowed = min(self.max_batch, int(self._tokens))
        for item in self.queue:
            item_size = len(json.dumps(item.event).encode()) + 1
            if len(batch) >= allowed or (batch and size + item_size > self.max_body):
                break
            batch.append(item)
            size += item_size
        return batch

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) * self.rate_per_second)
        self._refilled = now

    async def tick(self) -> None:
        """Send one batch if one is due; never two sends at once."""
        now = self.clock()
        if self._sending or not self.queue or now < self._next_send or self.paused:
            return
        self._refill(now)
        batch = self._batch()
        if not batch:
            return
        self._sending = True
        try:
            answer = await self.post([item.event for item in batch])
        finally:
            self._sending = False
        self._settle(batch, answer)

    def _remove(self, batch: list[_Item]) -> None:
        # Events added while the batch was in flight may have pushed some of it out already (overflow).
        sent = {id(item) for item in batch}
        while self.queue and id(self.queue[0]) in sent:
            self.queue.popleft()

    def _settle(self, batch: list[_Item], answer: Answer) -> None:
        now = self.clock()
        self.stats.last_status = answer.status
        if answer.ok:
            self._remove(batch)
            self._tokens -= len(batch)
            self._backoff = 0.0
            self._next_send = now + self.interval
            refused = answer.data.get("refused", 0) if isinstance(answer.data, dict) else 0
            self.stats.refused_by_service += int(refused) if isinstance(refused, int) else 0
            self.stats.sent += len(batch) - (refused if isinstance(refused, int) else 0)
            self._done(batch)
            return
        self.stats.last_error = f"{answer.status} {answer.reason}"[:300]
        if answer.status in (400, 413):
            # The service will never take this batch; retrying it would block every later event.
            self._remove(batch)
            self.stats.dropped_bad_batch += len(batch)
            self._next_send = now + self.interval
            self._done(batch)
        elif answer.status in (401, 403, 404, 405) or 300 <= answer.status < 400:
            # Not a participant of an active workshop, or no service at that address (a redirect is
            # the hub's own port answering): stay quiet for a long while.
            self.stats.dropped_paused += len(self.queue)
            self._done(self.queue)
            self.queue.clear()
            self.stats.paused_until = now + self.pause_seconds
        else:  # no answer, 5xx, 429: the batch stays first in line
            self.stats.failures += 1
            self._backoff = min(self.backoff_max, max(self.backoff_first, self._backoff * 2))
            # Jitter, so a class whose service came back does not retry in one wave.
            self._next_send = now + self._backoff * random.uniform(0.8, 1.2)
