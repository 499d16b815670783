"""Free GPUs and cores per profile for the spawn form, from one ``sinfo`` call cached a few seconds.

A learner choosing between "1 × H100" and "a MIG slice" should see which would start now.
One ``sinfo -N`` answers for every partition; the figures are shared by every spawner of
the hub and refreshed at most every ``cache_seconds``, so an opened form costs Slurm nothing.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from academy.profiles import Profile
from academy.slurm import commands

SINFO_FIELDS = ("PartitionName", "NodeHost", "StateLong", "Gres", "GresUsed", "CPUsState", "Memory", "AllocMem")
GRES_RE = re.compile(r"gpu:([^:(,]+):(\d+)")
# Nodes in these states take no new job, whatever their free resources say.
# "reserved" is left out: a node with a partial (core) reservation still takes other jobs.
UNUSABLE = ("down", "drain", "fail", "maint", "unknown", "not_responding", "power")


@dataclass
class NodeFree:
    """Free resources of one node in one partition."""

    partition: str
    node: str
    cpus_idle: int
    mem_free_mb: int
    gpus_total: dict[str, int] = field(default_factory=dict)
    gpus_used: dict[str, int] = field(default_factory=dict)

    def gpus_free(self, gpu_type: str) -> int:
        return self.gpus_total.get(gpu_type, 0) - self.gpus_used.get(gpu_type, 0)


def _gres(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for gpu_type, count in GRES_RE.findall(text):
        counts[gpu_type] = counts.get(gpu_type, 0) + int(count)
    return counts


def parse_sinfo(stdout: str) -> list[NodeFree]:
    nodes = []
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < len(SINFO_FIELDS):
            continue
        partition, node, state, gres, gres_used, cpus, memory, alloc = parts[: len(SINFO_FIELDS)]
        if any(word in state.lower() for word in UNUSABLE):
            continue
        try:
            idle = int(cpus.split("/")[1])
            mem_free = int(memory) - int(alloc)
        except (IndexError, ValueError):
            continue
        nodes.append(NodeFree(partition.rstrip("*"), node, idle, mem_free, _gres(gres), _gres(gres_used)))
    return nodes


def memory_mb(text: str) -> int:
    number, unit = int(text[:-1]), text[-1]
    return number * {"M": 1, "G": 1024, "T": 1024 * 1024}[unit]


def describe(profile: Profile, nodes: list[NodeFree]) -> str:
    """One short line: how much of what this profile needs is free right now."""
    mine = [n for n in nodes if profile.partition in (None, n.partition)]
    if not mine:
        return f"partition {profile.partition} has no node taking jobs now"
    fits = sum(1 for n in mine if n.mem_free_mb >= memory_mb(profile.memory)
               and (not profile.gpus or n.gpus_free(profile.gpus.type) >= profile.gpus.count))
    if profile.gpus:
        free = sum(max(0, n.gpus_free(profile.gpus.type)) for n in mine)
        total = sum(n.gpus_total.get(profile.gpus.type, 0) for n in mine)
        kind = "MIG slices" if profile.gpus.mig else f"{profile.gpus.type} GPUs"
        text = f"{free} of {total} {kind} free"
    else:
        text = f"{sum(n.cpus_idle for n in mine)} idle cores"
    return text if fits else text + " · will queue"


class Availability:
    """Cached ``sinfo`` figures shared by all spawners of the hub."""

    def __init__(self, cache_seconds: float = 10.0, timeout: float = 10.0) -> None:
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._nodes: list[NodeFree] | None = None
        self._fetched = float("-inf")
        self._lock: asyncio.Lock | None = None

    async def nodes(self) -> list[NodeFree] | None:
        """Nodes with free resources, or None when Slurm cannot be asked right now."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self._fetched > self.cache_seconds:
                fmt = ",".join(f"{name}:|" for name in SINFO_FIELDS)
                result = await commands.run_command(
                    commands.hub_command("sinfo", "--noheader", "--Node", f"--Format={fmt}"), timeout=self.timeout
                )
                self._nodes = parse_sinfo(result.stdout) if result.ok else None
                self._fetched = time.monotonic()
            return self._nodes

    async def for_profiles(self, profiles: list[Profile]) -> dict[str, str]:
        nodes = await self.nodes()
        if nodes is None:
            return {p.slug: "availability unknown right now" for p in profiles}
        return {p.slug: describe(p, nodes) for p in profiles}


_shared: dict[float, Availability] = {}


def shared_availability(cache_seconds: float) -> Availability:
    if cache_seconds not in _shared:
        _shared[cache_seconds] = Availability(cache_seconds)
    return _shared[cache_seconds]
