"""The session's end as the learner's server sees it: Slurm's own end time, or the hub's for the local backend.

Inside a Slurm job the end is asked from ``squeue`` (an admin or "More time" may move it) and
re-asked once it is older than ``recheck_seconds``; elsewhere it comes from ``ACADEMY_WALLTIME_END``,
which the hub sets and, after "More time", answers anew. "More time" itself is the hub's decision:
this server only forwards the request with its own API token (``hub_extend``).
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Mapping

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


@dataclass(frozen=True)
class Walltime:
    """When the session ends (epoch seconds, None: never), and how far it may be extended."""

    end: float | None
    hours: int | None
    max_hours: int | None
    source: str  # "slurm", "local" or "none"
    extendable: bool

    def as_json(self) -> dict:
        return asdict(self)


class ExtendRefused(Exception):
    """The hub said no (or could not be asked); ``status`` and ``message`` go to the learner."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def parse_squeue_end(text: str) -> float | None:
    """``squeue -o %e`` prints the end as local ISO time; 'N/A'/'Unknown' mean no end is known yet."""
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class SessionClock:
    """One per server: the current ``Walltime``, re-read from Slurm when stale."""

    def __init__(self, environ: Mapping[str, str], recheck_seconds: float, squeue: str = "squeue") -> None:
        self.env = dict(environ)
        self.recheck_seconds = recheck_seconds
        self.squeue = squeue
        self.job_id = self.env.get("SLURM_JOB_ID", "")
        self._end = float(self.env["ACADEMY_WALLTIME_END"]) if self.env.get("ACADEMY_WALLTIME_END", "").isdigit() else None
        self._hours = _int(self.env.get("ACADEMY_WALLTIME_HOURS"))
        self._max_hours = _int(self.env.get("ACADEMY_WALLTIME_MAX_HOURS"))
        self._checked = 0.0
        self._lock = asyncio.Lock()

    @property
    def source(self) -> str:
        if self.job_id.isdigit():
            return "slurm"
        return "local" if self._end is not None else "none"

    def current(self) -> Walltime:
        extendable = bool(self.env.get("JUPYTERHUB_API_URL")) and self._max_hours is not None and self._end is not None
        return Walltime(self._end, self._hours, self._max_hours, self.source, extendable)

    async def walltime(self, force: bool = False) -> Walltime:
        if self.source == "slurm" and (force or time.time() - self._checked >= self.recheck_seconds):
            async with self._lock:
                if force or time.time() - self._checked >= self.recheck_seconds:
                    await self._ask_slurm()
        return self.current()

    async def _ask_slurm(self) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.squeue, "--noheader", f"--jobs={self.job_id}", "--format=%e",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        except (OSError, asyncio.TimeoutError):
            return  # keep the last known end; the next request asks again
        self._checked = time.time()
        end = parse_squeue_end(out.decode(errors="replace")) if proc.returncode == 0 else None
        if end is not None:
            self._end = end

    async def extend(self, hours: int) -> Walltime:
        """Ask the hub for ``hours`` more; raises ``ExtendRefused`` with the hub's reason."""
        answer = await hub_extend(self.env, hours)
        self._hours = answer.get("hours", self._hours)
        self._max_hours = answer.get("max_hours", self._max_hours)
        if self.source == "slurm":
            return await self.walltime(force=True)
        if isinstance(answer.get("end"), (int, float)):
            self._end = float(answer["end"])
        return self.current()


async def hub_extend(env: Mapping[str, str], hours: int) -> dict:
    """``POST {hub API}/academy/walltime`` as this server (its own token): the hub checks and applies."""
    api, token = env.get("JUPYTERHUB_API_URL", ""), env.get("JUPYTERHUB_API_TOKEN", "")
    if not api or not token:
        raise ExtendRefused(409, "this server was not started by the hub, so there is nobody to ask")
    request = HTTPRequest(
        api.rstrip("/") + "/academy/walltime", method="POST", body=json.dumps({"hours": hours}),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"}, request_timeout=60,
    )
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as exc:
        message = f"the hub answered {exc.code}"
        if exc.response is not None and exc.response.body:
            try:
                message = json.loads(exc.response.body).get("message") or message
            except ValueError:
                pass
        raise ExtendRefused(exc.code if exc.code in (400, 403, 409) else 502, message) from None
    except OSError as exc:
        raise ExtendRefused(502, f"the hub could not be reached ({exc})") from None
    return json.loads(response.body)
