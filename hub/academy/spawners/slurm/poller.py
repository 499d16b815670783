"""One batched ``squeue`` per poll interval for every server of the hub, cached for all spawners.

Stock batchspawner runs one ``squeue -j ID`` per server per poll, so controller load grows
with the number of learners. Here a single ``SlurmPoller`` per hub asks about all tracked
jobs at once, every ``interval`` seconds (every ``startup_interval`` while some spawn is
waiting for its job), and each spawner's ``poll()`` reads the cache. A job counts as ended
only on Slurm's own word: a terminal state, or a confirmation query for a job the batched
answer left out (``squeue`` says "Invalid job id", or ``sacct`` names a terminal state).
Controller outages and unrecognised answers leave the last known state in place.

A ``scancel`` that the controller could not take is retried every cycle until it is accepted, and
kept in a journal file in the hub's state directory meanwhile: a hub restarted during the outage
re-sends it as soon as it polls any Slurm server (at start-up when servers are running, else at the
next spawn), so the job is not left running until its walltime.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Callable

from academy.slurm import commands
from academy.slurm.states import (
    INVALID_JOB_RE,
    SQUEUE_FORMAT,
    UNREACHABLE_RE,
    JobInfo,
    Phase,
    classify,
    parse_sacct_state,
    parse_squeue,
)

log = logging.getLogger("academy.slurm")
# squeue accepts long --jobs lists; chunk anyway so a huge hub never hits ARG_MAX.
CHUNK = 500
# scancel's answers that mean "nothing left to cancel".
ALREADY_GONE = ("Invalid job id", "already completing or completed", "Job has already finished")


@dataclass(frozen=True)
class JobView:
    """What the hub believes about one job, and how fresh that belief is."""

    job_id: str
    phase: Phase = Phase.UNKNOWN
    info: JobInfo | None = None
    checked: float = 0.0  # time.monotonic() of the query this view came from
    note: str = ""  # why the phase is what it is when Slurm gave no state (outage, confirmation)
    since: float = 0.0  # time.monotonic() when the phase last changed


class SlurmPoller:
    """Shared, coalescing cache of job states; one instance per hub process (see ``shared_poller``)."""

    def __init__(self, interval: float = 5.0, startup_interval: float = 1.0, query_timeout: float = 30.0,
                 use_sacct: bool = True, background: bool = True, journal: str | None = None) -> None:
        self.background = background  # False: only explicit refresh() calls ask Slurm (replay tests)
        self.interval = interval
        self.startup_interval = startup_interval
        self.query_timeout = query_timeout
        self.use_sacct = use_sacct
        self._views: dict[str, JobView] = {}
        self._on_end: dict[str, Callable[[JobView], object]] = {}
        self._hurry: set[object] = set()
        self._cancel_retry: dict[str, str] = {}
        self._inflight: asyncio.Task | None = None
        self._inflight_started = 0.0
        self._last_started = 0.0
        self._updated = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self.queries = 0
        self.journal = journal
        self._load_journal()

    # -- registry -------------------------------------------------------------------------------
    def track(self, job_id: str, on_end: Callable[[JobView], object] | None = None) -> None:
        """Include ``job_id`` in every batched query; ``on_end`` runs once when Slurm says it ended."""
        commands.job_id(job_id)
        self._views.setdefault(job_id, JobView(job_id))
        if on_end is not None:
            self._on_end[job_id] = on_end
        self._ensure_loop()

    def untrack(self, job_id: str) -> None:
        self._views.pop(job_id, None)
        self._on_end.pop(job_id, None)

    def is_tracked(self, job_id: str) -> bool:
        return job_id in self._views

    def view(self, job_id: str) -> JobView:
        return self._views.get(job_id) or JobView(job_id)

    def hurry(self, who: object) -> None:
        """Poll at ``startup_interval`` while ``who`` (a starting or stopping spawner) waits."""
        self._hurry.add(who)
        self._wake.set()
        self._ensure_loop()

    def relax(self, who: object) -> None:
        self._hurry.discard(who)

    def cancel_later(self, job_id: str, cmd: str) -> None:
        """Retry a failed ``scancel`` every cycle until Slurm accepts it: never leave an orphan job."""
        self._cancel_retry[job_id] = cmd
        self._save_journal()
        self._ensure_loop()

    def _load_journal(self) -> None:
        if not self.journal or not os.path.exists(self.journal):
            return
        try:
            with open(self.journal, encoding="utf-8") as fh:
                owed = dict(json.load(fh))
        except (OSError, ValueError, TypeError) as exc:  # a damaged journal must not stop the hub
            log.error("Ignoring the pending-cancel journal %s: %s", self.journal, exc)
            return
        for job_id, cmd in owed.items():
            # Only ever "<user switch> scancel <that job id>", whatever else the file may hold.
            if isinstance(cmd, str) and commands.JOB_ID_RE.match(job_id) and cmd.split()[-2:] == ["scancel", job_id]:
                self._cancel_retry[job_id] = cmd
            else:
                log.error("Ignoring a malformed entry in %s: %r", self.journal, job_id)
        if self._cancel_retry:
            log.warning("Re-sending scancel for %s, owed from before the hub restarted",
                        ", ".join(sorted(self._cancel_retry)))
            self._ensure_loop()

    def _save_journal(self) -> None:
        if not self.journal:
            return
        tmp = f"{self.journal}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._cancel_retry, fh)
            os.replace(tmp, self.journal)
        except OSError as exc:  # a full disk costs the journal, not the retries in memory
            log.error("Could not write the pending-cancel journal %s: %s", self.journal, exc)

    @property
    def pending_cancels(self) -> list[str]:
        return sorted(self._cancel_retry)

    # -- queries --------------------------------------------------------------------------------
    async def refresh(self, newer_than: float | None = None) -> None:
        """Wait for a query that started at or after ``newer_than``; without it, join any query in flight.

        Concurrent callers share one query, so twenty spawners asking at once cost one ``squeue``.
        """
        if newer_than is None:
            task = self._inflight
            if task is not None and not task.done():
                await asyncio.shield(task)
                return
            newer_than = time.monotonic()
        wanted = newer_than
        while True:
            task = self._inflight
            if task is not None and not task.done():
                started = self._inflight_started
                await asyncio.shield(task)
                if started >= wanted:
                    return
                continue
            if self._last_started >= wanted:
                return
            self._inflight_started = self._last_started = time.monotonic()
            self._inflight = asyncio.ensure_future(self._query())
            await asyncio.shield(self._inflight)
            return

    async def wait_update(self, timeout: float) -> None:
        """Sleep until the next query finishes, or ``timeout`` seconds.

        ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a cancellation
        that arrives as the event fires, and the hub cancels a spawn's progress stream exactly
        when the server becomes ready, which is also when a query tends to finish.  A swallowed
        cancel left that stream open for good, and the browser (or the warm start) never heard
        "ready".
        """
        event = self._updated
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    async def _query(self) -> None:
        started = time.monotonic()
        # An ended job stays ended: asking again would only cost confirmation queries.
        ids = [jid for jid, view in self._views.items() if view.phase is not Phase.ENDED]
        try:
            for i in range(0, len(ids), CHUNK):
                await self._query_chunk(ids[i:i + CHUNK], started)
            await self._retry_cancels()
        except Exception:  # a bug here must not stop polling for everyone
            log.exception("Slurm poll failed")
        finally:
            self._updated.set()
            self._updated = asyncio.Event()

    async def _query_chunk(self, ids: list[str], started: float) -> None:
        if not ids:
            return
        self.queries += 1
        result = await commands.run_command(
            commands.hub_command("squeue", "--noheader", "--all", "--states=all", f"--jobs={','.join(ids)}",
                                 f"--format={SQUEUE_FORMAT}"),
            timeout=self.query_timeout,
        )
        if not result.ok and not (INVALID_JOB_RE.search(result.stderr) and not result.stdout.strip()):
            # Outage or an error we do not understand: keep every job as it was.
            self._mark_unknown(ids, started, f"Slurm did not answer ({result.message})")
            return
        jobs, odd = parse_squeue(result.stdout if result.ok else "")
        for line in odd[:3]:
            log.warning("Unrecognised squeue line kept as unknown: %r", line[:200])
        missing = []
        for jid in ids:
            if jid in jobs:
                self._set(jid, JobView(jid, jobs[jid].phase, jobs[jid], started))
            elif odd:
                self._mark_unknown([jid], started, "Slurm's answer was not recognised")
            else:
                missing.append(jid)
        for jid in missing:
            self._set(jid, await self._confirm_gone(jid, started))

    async def _confirm_gone(self, jid: str, started: float) -> JobView:
        """A job left out of the batched answer: ask Slurm about it alone before believing it ended."""
        old = self.view(jid)
        if self.use_sacct:
            acct = await commands.run_command(
                commands.hub_command("sacct", "--noheader", "--allocations", "--parsable2", f"--jobs={jid}",
                                     "--format=State"),
                timeout=self.query_timeout,
            )
            state = parse_sacct_state(acct.stdout) if acct.ok else None
            if state and classify(state) is Phase.ENDED:
                info = replace(old.info, state=state) if old.info else JobInfo(jid, state)
                # The whole answer, e.g. "CANCELLED by 0": messages.ended() says who cancelled it.
                return JobView(jid, Phase.ENDED, info, started, f"sacct: {acct.stdout.strip().splitlines()[0]}")
            if not acct.ok and "disabled" in acct.stderr:
                self.use_sacct = False
        single = await commands.run_command(
            commands.hub_command("squeue", "--noheader", f"--jobs={jid}", f"--format={SQUEUE_FORMAT}"),
            timeout=self.query_timeout,
        )
        if not single.ok and INVALID_JOB_RE.search(single.stderr):
            info = replace(old.info, state="GONE") if old.info else JobInfo(jid, "GONE")
            return JobView(jid, Phase.ENDED, info, started, "Slurm no longer knows this job (Invalid job id)")
        jobs, _ = parse_squeue(single.stdout) if single.ok else ({}, [])
        if jid in jobs:
            return JobView(jid, jobs[jid].phase, jobs[jid], started)
        return replace(old, phase=old.phase if old.info else Phase.UNKNOWN, checked=started,
                       note=f"job missing from squeue, not confirmed ({single.message})")

    def _mark_unknown(self, ids: list[str], started: float, note: str) -> None:
        for jid in ids:
            old = self.view(jid)
            # The last known phase stays visible; only a confirmed end changes what the hub does.
            self._set(jid, replace(old, checked=started, note=note))

    def _set(self, jid: str, view: JobView) -> None:
        if jid not in self._views:
            return  # untracked while the query ran
        before = self._views[jid]
        view = replace(view, since=before.since if view.phase is before.phase and before.since else view.checked)
        self._views[jid] = view
        if view.phase is Phase.ENDED and before.phase is not Phase.ENDED:
            callback = self._on_end.pop(jid, None)
            if callback is not None:
                result = callback(view)
                if asyncio.iscoroutine(result):
                    asyncio.ensure_future(result)

    async def _retry_cancels(self) -> None:
        for jid, cmd in list(self._cancel_retry.items()):
            result = await commands.run_command(cmd, timeout=self.query_timeout)
            if result.ok or any(s in result.stderr for s in ALREADY_GONE):
                log.info("Cancelled job %s after an earlier failure", jid)
                self._cancel_retry.pop(jid, None)
                self._save_journal()
            elif not UNREACHABLE_RE.search(result.message):
                log.warning("Retrying scancel of job %s: %s", jid, result.message)

    # -- background loop ------------------------------------------------------------------------
    def _ensure_loop(self) -> None:
        if self.background and (self._loop_task is None or self._loop_task.done()):
            try:
                self._loop_task = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:  # no loop yet (config time); the first refresh() starts one
                self._loop_task = None

    async def _run(self) -> None:
        while self._views or self._cancel_retry:
            wait = self.startup_interval if self._hurry else self.interval
            due = self._last_started + wait - time.monotonic()
            if due <= 0:
                # A query someone else started since then counts: no back-to-back duplicates.
                await self.refresh(newer_than=self._last_started + wait)
                continue
            self._wake.clear()
            try:
                async with asyncio.timeout(due):  # not wait_for: see wait_update
                    await self._wake.wait()
            except TimeoutError:
                pass


_shared: dict[tuple, SlurmPoller] = {}


def shared_poller(interval: float, startup_interval: float, query_timeout: float,
                  journal: str | None = None) -> SlurmPoller:
    """The hub-wide poller for these settings (one per hub process in practice)."""
    key = (interval, startup_interval, query_timeout, journal)
    if key not in _shared:
        _shared[key] = SlurmPoller(interval, startup_interval, query_timeout, journal=journal)
    return _shared[key]
