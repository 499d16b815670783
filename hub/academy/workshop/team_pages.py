"""``GET teams`` on the trainer service: every team folder (README "Team folders"), its members and disk use.

For admins only (like the audit log): team folders belong to companies and projects, not to a workshop,
so a workshop's trainers have no business with other teams' members. The figures are the rows of
``academy teams`` (``academy.teams.cli.rows``), measured in a worker thread and reused for
``team_folders.usage_refresh_seconds``, so page views never walk the folders again.
"""
from __future__ import annotations

import asyncio
import time

from tornado import web

from academy.workshop.service import BaseHandler

WALK_BUDGET_SECONDS = 10.0


class TeamsHandler(BaseHandler):
    _cache: tuple[float, list[dict]] | None = None

    def prepare(self):
        super().prepare()
        if self._finished:
            return
        if not self.hub_user.admin:
            raise web.HTTPError(403, "team folders are for admins")

    async def get(self):
        from academy.teams.cli import rows

        cfg = self.ctx.cfg
        cached = TeamsHandler._cache
        if cached is None or time.monotonic() - cached[0] >= cfg["team_folders"]["usage_refresh_seconds"]:
            cached = (time.monotonic(), await asyncio.to_thread(rows, cfg, WALK_BUDGET_SECONDS))
            TeamsHandler._cache = cached
        self.render_page("teams.html", teams=cached[1], warn_gib=cfg["team_folders"]["warn_gib"])


def routes() -> list[tuple[str, type]]:
    return [("teams", TeamsHandler)]
