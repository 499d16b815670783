"""``GET academy/api/teams``: the learner's team folders and their disk use, for JupyterLab's status bar.

The server looks at what its own process may reach: its supplementary Unix groups named
``$ACADEMY_TEAMS_PREFIX<group>`` whose folder ``$ACADEMY_TEAMS_ROOT/<group>`` exists. Disk use is one
bounded ``os.scandir`` walk per folder (``academy.teams.folders.measure``), in a worker thread, at most
every ``$ACADEMY_TEAMS_REFRESH`` seconds however often the page asks; a walk that runs out of time
reports a lower bound (``complete: false``). 404 when the hub configured no team folders.
"""
from __future__ import annotations

import asyncio
import grp
import os
import time
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from tornado import web

from academy.teams.folders import Usage, human, measure

WALK_BUDGET_SECONDS = 2.0


class TeamUsage:
    """Per-server cache of each team folder's disk use."""

    def __init__(self, root: str, prefix: str, refresh: float, warn_bytes: int) -> None:
        self.root, self.prefix, self.refresh, self.warn_bytes = Path(root), prefix, refresh, warn_bytes
        self.cache: dict[str, Usage] = {}
        self.lock = asyncio.Lock()

    def my_teams(self) -> list[str]:
        names = []
        for gid in {os.getegid(), *os.getgroups()}:
            try:
                name = grp.getgrgid(gid).gr_name
            except KeyError:
                continue
            if name.startswith(self.prefix) and (self.root / name[len(self.prefix):]).is_dir():
                names.append(name[len(self.prefix):])
        return sorted(set(names))

    async def view(self) -> list[dict]:
        async with self.lock:  # one walk at a time, whatever the number of open tabs
            rows = []
            for team in self.my_teams():
                usage = self.cache.get(team)
                if usage is None or time.time() - usage.measured_at >= self.refresh:
                    usage = await asyncio.to_thread(measure, self.root / team, WALK_BUDGET_SECONDS)
                    self.cache[team] = usage
                rows.append({
                    "group": team, "link": f"team-{team}", "bytes": usage.bytes, "files": usage.files,
                    "complete": usage.complete, "human": ("" if usage.complete else "at least ") + human(usage.bytes),
                    "warn": bool(self.warn_bytes) and usage.bytes >= self.warn_bytes,
                    "warn_bytes": self.warn_bytes, "measured_at": usage.measured_at,
                })
            return rows


class TeamsHandler(APIHandler):
    @web.authenticated
    async def get(self):
        usage: TeamUsage | None = self.settings.get("academy_teams")
        if usage is None:
            raise web.HTTPError(404, "no team folders on this site")
        self.finish({"teams": await usage.view(), "refresh_seconds": usage.refresh})


def routes(base_url: str) -> list:
    return [(base_url.rstrip("/") + "/academy/api/teams", TeamsHandler)]


def install(web_app) -> None:
    """Register the route; the cache only when the hub passed a team root (``academy.teams.hook``)."""
    root = os.environ.get("ACADEMY_TEAMS_ROOT")
    if root:
        web_app.settings["academy_teams"] = TeamUsage(
            root, os.environ.get("ACADEMY_TEAMS_PREFIX", "acadteam-"),
            float(os.environ.get("ACADEMY_TEAMS_REFRESH", "300") or 300),
            int(os.environ.get("ACADEMY_TEAMS_WARN_BYTES", "0") or 0))
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
