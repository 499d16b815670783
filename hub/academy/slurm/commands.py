"""Run Slurm commands without a shell: one choke point that tests replay and benchmarks count.

batchspawner runs its commands through ``create_subprocess_shell`` with user-derived values
formatted in. Here every command is a string only for logging and for the replay tests'
regexes; it is split with ``shlex`` and executed directly, and every value interpolated into
it is checked (``unix_name``) and quoted (``shlex.quote``) first.
"""
from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections import Counter
from dataclasses import dataclass

# POSIX portable user names; anything else never reaches a command line.
UNIX_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
JOB_ID_RE = re.compile(r"^[0-9]{1,12}$")
# Slurm account names as the site config may give them (sacctmgr lower-cases names anyway).
ACCOUNT_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

SLURM_PROGRAMS = frozenset({"sbatch", "squeue", "scancel", "sinfo", "sacct", "scontrol", "sacctmgr", "sshare", "sreport"})
# Invocations per program name, for benchmarks and tests that count Slurm traffic.
CALLS: Counter[str] = Counter()


@dataclass(frozen=True)
class CommandResult:
    """What a command did; a non-zero ``returncode`` is data, not an exception."""

    cmd: str
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def message(self) -> str:
        """The most telling line for a log or an error: stderr, else stdout."""
        if self.timed_out:
            return f"timed out: {self.cmd}"
        text = (self.stderr or self.stdout).strip()
        return text.splitlines()[-1] if text else f"exit status {self.returncode}"


def unix_name(name: str) -> str:
    if not UNIX_NAME_RE.match(name or ""):
        raise ValueError(f"{name[:40]!r} is not a valid Unix user name for Slurm")
    return name


def account(name: str) -> str:
    if not ACCOUNT_RE.match(name or ""):
        raise ValueError(f"{name[:40]!r} is not a valid Slurm account name")
    return name


def job_id(value: str) -> str:
    if not JOB_ID_RE.match(value or ""):
        raise ValueError(f"{value[:40]!r} is not a Slurm job id")
    return value


def user_command(prefix: str, username: str, *argv: str) -> str:
    """``prefix`` (e.g. ``runuser -u {username} --``) with the checked name, then the quoted argv."""
    head = prefix.replace("{username}", shlex.quote(unix_name(username))).strip()
    return " ".join([head, *map(shlex.quote, argv)]).strip()


def hub_command(*argv: str) -> str:
    return " ".join(map(shlex.quote, argv))


async def run_command(cmd: str, input: str | None = None, env: dict[str, str] | None = None,
                      timeout: float = 30) -> CommandResult:
    """Execute ``cmd`` (split with shlex, no shell) and capture its output."""
    argv = shlex.split(cmd)
    names = [os.path.basename(a) for a in argv]
    # Count the Slurm program, not the user-switching prefix in front of it.
    CALLS[next((n for n in names if n in SLURM_PROGRAMS), names[0])] += 1
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd="/",
        )
    except OSError as exc:
        return CommandResult(cmd, 127, "", f"{argv[0]}: {exc.strerror or exc}")
    try:
        out, err = await asyncio.wait_for(proc.communicate(input.encode() if input is not None else None), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return CommandResult(cmd, -9, "", "", timed_out=True)
    return CommandResult(cmd, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
