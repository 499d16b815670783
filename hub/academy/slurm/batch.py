"""Submit a batch script and wait for its job (or job array) to end, for callers without the hub's poller.

``sbatch --wait`` would be one command blocking for the whole job: with the controller gone it keeps
retrying, and when a timeout kills it the job id dies with it and the job runs on unobserved.  Here
``sbatch --parsable`` returns the id at once (under the runner's timeout), the wait is one ``squeue``
every ``poll_s`` through the same runner, and two limits end it with an error that says what happened:
the controller silent for ``outage_s``, or the job not ended after ``deadline_s``.  Either way, and when
the waiting caller is interrupted, the job is cancelled, because its caller is about to remove its files.
Only Slurm's own word ends the wait (every state terminal, or the job no longer known), as in the spawner.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from academy.slurm import commands
from academy.slurm.states import INVALID_JOB_RE, UNREACHABLE_RE, Phase, classify


class BatchError(RuntimeError):
    """A job could not be submitted, or its end was not seen in time; the message says what was done."""


@dataclass(frozen=True)
class WaitLimits:
    """How long to wait for a job, and how patiently to ask."""

    deadline_s: float  # the whole wait, queue time included
    outage_s: float  # the controller silent (or answering nonsense) this long ends the wait
    poll_s: float = 5.0
    command_timeout_s: float = 60.0


async def submit(argv: list[str], timeout: float) -> str:
    """Run ``sbatch --parsable …`` and return the new job's id."""
    if argv[:2] != ["sbatch", "--parsable"]:
        raise ValueError("submit() runs 'sbatch --parsable …' only")
    result = await commands.run_command(commands.hub_command(*argv), timeout=timeout)
    if result.timed_out:
        raise BatchError(f"sbatch did not answer within {timeout:g} s (is the Slurm controller up?); "
                         "the job may or may not have been submitted: check squeue")
    if not result.ok:
        raise BatchError(f"sbatch failed: {result.message}")
    answer = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    try:  # "1234" or "1234;cluster"
        return commands.job_id(answer.split(";")[0].strip())
    except ValueError:
        raise BatchError(f"sbatch answered {answer[:80]!r}, not a job id") from None


async def job_phase(job: str, timeout: float) -> tuple[Phase, str]:
    """The phase of a job and all its array tasks together, and a note for errors when it is ``UNKNOWN``."""
    cmd = commands.hub_command("squeue", "--noheader", "--states=all", f"--jobs={commands.job_id(job)}",
                               "--format=%i|%T")
    result = await commands.run_command(cmd, timeout=timeout)
    if result.timed_out or UNREACHABLE_RE.search(result.stderr):
        return Phase.UNKNOWN, result.message
    if not result.ok:
        if INVALID_JOB_RE.search(result.stderr):  # finished long enough ago that Slurm forgot it
            return Phase.ENDED, "no longer known to Slurm"
        return Phase.UNKNOWN, result.message
    states = [line.split("|")[1].strip() for line in result.stdout.splitlines() if line.count("|") == 1]
    if not states:
        if result.stdout.strip():
            return Phase.UNKNOWN, f"unrecognised squeue answer {result.stdout.strip()[:80]!r}"
        return Phase.ENDED, "no longer listed"
    phases = {classify(state) for state in states}
    if Phase.UNKNOWN in phases:
        return Phase.UNKNOWN, f"unrecognised job state in {', '.join(sorted(set(states)))[:80]}"
    for phase in (Phase.RUNNING, Phase.ENDING, Phase.PENDING):
        if phase in phases:
            return phase, ""
    return Phase.ENDED, ""


async def wait_until_ended(job: str, limits: WaitLimits) -> None:
    """Return when Slurm says the job ended; ``BatchError`` when a limit runs out first."""
    started = last_answer = time.monotonic()
    while True:
        phase, note = await job_phase(job, limits.command_timeout_s)
        now = time.monotonic()
        if phase is Phase.ENDED:
            return
        if phase is not Phase.UNKNOWN:
            last_answer = now
        elif now - last_answer >= limits.outage_s:
            raise BatchError(f"Slurm has not answered about job {job} for {now - last_answer:.0f} s "
                             f"(limit {limits.outage_s:g} s; last answer: {note})")
        if now - started >= limits.deadline_s:
            raise BatchError(f"job {job} has not ended after {limits.deadline_s:g} s")
        await asyncio.sleep(limits.poll_s)


async def cancel(job: str, timeout: float) -> str:
    """``scancel`` the job; returns a sentence saying whether that worked, for the caller's error."""
    result = await commands.run_command(commands.hub_command("scancel", commands.job_id(job)), timeout=timeout)
    if result.ok:
        return f"job {job} was cancelled"
    return f"cancelling it failed too ({result.message}): run 'scancel {job}' once Slurm answers"


async def run_to_end(argv: list[str], limits: WaitLimits) -> str:
    """Submit with ``argv`` (``sbatch --parsable … script``), wait for the end, return the job id."""
    job = await submit(argv, limits.command_timeout_s)
    try:
        await wait_until_ended(job, limits)
    except BatchError as exc:
        raise BatchError(f"{exc}; {await cancel(job, limits.command_timeout_s)}") from None
    except BaseException:  # interrupted (Ctrl-C, a cancelled task): the caller's files are about to go
        with contextlib.suppress(Exception):
            await cancel(job, limits.command_timeout_s)
        raise
    return job
