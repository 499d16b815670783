"""A Server-Sent Events client for tests and benchmarks: read a stream in a thread, wait for a matching event.

Used on the workshop dashboard's stream (``/services/academy/w/<slug>/dashboard/stream``): every event
is kept with the wall-clock time it arrived, so a benchmark can measure send-to-stream latency and a
test can wait (with a generous timeout) for the event it caused.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import requests


@dataclass
class SseEvent:
    """One event of the stream: its ``event:`` name, its data, and when it arrived (``time.time()``)."""

    event: str
    data: str
    at: float

    def json(self):
        return json.loads(self.data)


class SseReader:
    """Reads ``url`` with ``headers`` in a daemon thread until :meth:`close`."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, session: requests.Session | None = None):
        self.events: list[SseEvent] = []
        self.status: int | None = None
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._response = None
        self._thread = threading.Thread(target=self._run, args=(url, headers or {}, session or requests.Session()), daemon=True)
        self._thread.start()

    def _run(self, url, headers, session) -> None:
        try:
            with session.get(url, headers={"Accept": "text/event-stream", **headers}, stream=True, timeout=(30, 120)) as r:
                self._response = r
                with self._cond:
                    self.status = r.status_code
                    self._cond.notify_all()
                if r.status_code != 200:
                    return
                buf, name, data = "", "message", []
                for chunk in r.iter_content(chunk_size=None, decode_unicode=True):
                    buf += chunk
                    while "\n" in buf:
                        line, buf = buf.split("\n", 1)
                        line = line.rstrip("\r")
                        if not line:
                            if data:
                                with self._cond:
                                    self.events.append(SseEvent(name, "\n".join(data), time.time()))
                                    self._cond.notify_all()
                            name, data = "message", []
                        elif line.startswith("event:"):
                            name = line[6:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].lstrip(" "))
                    if self._closed:
                        return
        except BaseException as exc:  # noqa: BLE001 (reported to the waiting test through .error)
            if not self._closed:
                self.error = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    def wait_status(self, timeout: float = 60) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: self.status is not None or self.error is not None, timeout)
            return self.status

    def wait_for(self, predicate, timeout: float = 60, start: int = 0) -> SseEvent:
        """The first event from index ``start`` on for which ``predicate(event)`` is true; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for ev in self.events[seen:]:
                    if predicate(ev):
                        return ev
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None:
                    raise TimeoutError(f"no matching event in {timeout} s (error: {self.error!r}, {len(self.events)} events)")
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        self._closed = True
        r = self._response
        if r is not None:
            try:  # the reading thread notices at the stream's next write at the latest (rows, keepalive)
                r.close()
            except Exception:  # noqa: BLE001 (best effort; it is a daemon thread)
                pass
