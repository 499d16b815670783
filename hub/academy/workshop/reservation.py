"""Check a workshop against its Slurm reservation: it exists, covers the workshop window and has room.

``scontrol --oneliner show reservation NAME`` (and ``show node`` for the reserved nodes'
memory) run through the spawner's command choke point (no shell, a timeout), so unit tests
replay scripted output and an unreachable controller is a clear problem, never "ok".
Overlap of two workshops in one reservation is the caller's business (its own records);
``overlaps`` is the one rule for it.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Awaitable, Callable

from academy.slurm import commands

Runner = Callable[[str], Awaitable[commands.CommandResult]]
# Slurm reservation names: letters, digits and a few separators; nothing else reaches argv.
RESERVATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NODE_LIST_RE = re.compile(r"^[A-Za-z0-9_.,\[\]-]{1,512}$")
_FIELD_RE = re.compile(r"(\w+)=(\S*)")
_MEM_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass
class ReservationCheck:
    """Outcome of a check: ``ok`` only if nothing is wrong; ``problems`` are sentences for a form."""

    name: str
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    nodes: str = ""
    cores: int = 0
    memory_mb: int = 0
    start: datetime | None = None
    end: datetime | None = None
    state: str = ""


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Do the half-open intervals [a_start, a_end) and [b_start, b_end) share any instant?"""
    return a_start < b_end and b_start < a_end


def memory_mb(text: str) -> int:
    """``512M``, ``2G``, ``1024`` (MB) -> megabytes; ``ValueError`` for anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"{str(text)[:20]!r} is not a memory size like 512M or 2G")
    return int(float(m.group(1)) * _MEM_UNITS[(m.group(2) or "M").upper()])


def parse_fields(line: str) -> dict[str, str]:
    """``Key=Value`` pairs of one ``--oneliner`` record; the first occurrence of a key wins."""
    fields: dict[str, str] = {}
    for key, value in _FIELD_RE.findall(line):
        fields.setdefault(key, value)
    return fields


def _slurm_time(text: str, tz) -> datetime | None:
    """Slurm prints local wall time without a zone: read it in the controller's zone ``tz``."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz)
    except ValueError:
        return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.astimezone()


async def _default_runner(cmd: str, timeout: float) -> commands.CommandResult:
    return await commands.run_command(cmd, timeout=timeout)


async def check_reservation(
    name: str,
    start: datetime,
    end: datetime,
    participants: int,
    *,
    cores_per_participant: int = 1,
    memory_per_participant: str | int = 0,
    runner: Runner | None = None,
    timeout: float = 15,
    slurm_tz=None,
) -> ReservationCheck:
    """Look ``name`` up and list everything that keeps the workshop [start, end) from fitting in it.

    ``memory_per_participant`` is a size (``512M``, ``2G``) or MB; 0 skips the memory check.
    ``slurm_tz`` is the zone the controller prints times in (default: this machine's).
    """
    check = ReservationCheck(name=name)
    if not RESERVATION_RE.match(name or ""):
        check.problems.append(f"{str(name)[:40]!r} is not a Slurm reservation name (letters, digits, . _ -)")
        return check
    run = runner or (lambda cmd: _default_runner(cmd, timeout))
    tz = slurm_tz or datetime.now(timezone.utc).astimezone().tzinfo
    result = await run(commands.hub_command("scontrol", "--oneliner", "show", "reservation", name))
    text = f"{result.stdout}\n{result.stderr}"
    if not result.ok:
        if re.search(r"Reservation \S+ not found", text):
            check.problems.append(f"Slurm reservation {name!r} does not exist; ask the cluster admins to create it")
        else:
            check.problems.append(f"cannot check reservation {name!r}: the Slurm controller did not answer "
                                  f"({result.message}); try again when Slurm is reachable")
        return check
    line = next((ln for ln in result.stdout.splitlines() if f"ReservationName={name} " in ln + " "), "")
    if not line:
        check.problems.append(f"Slurm reservation {name!r} does not exist; ask the cluster admins to create it")
        return check
    info = parse_fields(line)
    check.nodes = info.get("Nodes", "")
    check.state = info.get("State", "")
    check.start = _slurm_time(info.get("StartTime", ""), tz)
    check.end = _slurm_time(info.get("EndTime", ""), tz)
    check.cores = int(info["CoreCnt"]) if info.get("CoreCnt", "").isdigit() else 0
    start, end = _aware(start), _aware(end)
    if end <= start:
        check.problems.append("the workshop ends before it starts")
    if check.start is None or check.end is None:
        check.problems.append(f"reservation {name!r} has no readable start/end time")
    elif not (check.start <= start and end <= check.end):
        check.problems.append(
            f"reservation {name!r} runs {check.start:%Y-%m-%d %H:%M} to {check.end:%Y-%m-%d %H:%M}, which does not "
            f"cover the workshop ({start.astimezone(tz):%Y-%m-%d %H:%M} to {end.astimezone(tz):%Y-%m-%d %H:%M})")
    if check.state and check.state not in {"ACTIVE", "INACTIVE"}:
        check.problems.append(f"reservation {name!r} is in state {check.state}")
    await _node_capacity(check, run)
    need_cores = participants * max(cores_per_participant, 0)
    if check.cores and need_cores > check.cores:
        check.problems.append(f"reservation {name!r} has {check.cores} cores; {participants} participants at "
                              f"{cores_per_participant} each need {need_cores}")
    need_mem = participants * (memory_mb(memory_per_participant) if memory_per_participant else 0)
    if check.memory_mb and need_mem > check.memory_mb:
        check.problems.append(f"reservation {name!r} has nodes with {check.memory_mb} MB memory; {participants} "
                              f"participants need {need_mem} MB")
    check.ok = not check.problems
    return check


async def _node_capacity(check: ReservationCheck, run: Runner) -> None:
    """Fill in cores (for whole-node reservations) and memory from the reserved nodes."""
    if not check.nodes or not NODE_LIST_RE.match(check.nodes):
        return
    result = await run(commands.hub_command("scontrol", "--oneliner", "show", "node", check.nodes))
    if not result.ok:
        check.problems.append(f"cannot read the reserved nodes {check.nodes}: {result.message}")
        return
    cores = mem = 0
    for line in result.stdout.splitlines():
        info = parse_fields(line)
        if "NodeName" not in info:
            continue
        cores += int(info.get("CPUTot", "0") or 0) if info.get("CPUTot", "").isdigit() else 0
        mem += int(info["RealMemory"]) if info.get("RealMemory", "").isdigit() else 0
    check.cores = check.cores or cores
    check.memory_mb = mem


def describe(check: ReservationCheck) -> str:
    """One line for a CLI or a log."""
    if check.ok:
        return f"reservation {check.name}: ok ({check.nodes}, {check.cores} cores, {check.start} to {check.end})"
    return f"reservation {check.name}: " + "; ".join(check.problems)


def check_reservation_sync(*args, **kwargs) -> ReservationCheck:
    """``check_reservation`` for callers without an event loop (the CLI)."""
    return asyncio.run(check_reservation(*args, **kwargs))
