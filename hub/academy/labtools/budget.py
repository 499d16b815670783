"""``GET academy/api/budget`` on the learner's server: their team's GPU-hours used and left, for JupyterLab's status bar.

The server asks the hub's ``/hub/api/academy/budget`` (:mod:`academy.slurm.budget_api`) with its own
``JUPYTERHUB_API_TOKEN``, so the hub decides whose figures these are; nothing from the browser's
request (query, body) is passed on. The answer is kept for the hub's refresh period (30 s after a
failure), so however many tabs poll, the hub sees at most one call per period from this server,
and the hub's own cache makes at most one ``sshare`` per period for everyone. 404 when the server
was not started by a hub or the hub has no budgets.
"""
from __future__ import annotations

import asyncio
import time

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from academy.labtools.servicelink import ServerIdentity, call

FIELDS = ("status", "account", "limit_gpu_hours", "used_gpu_hours", "reserved_gpu_hours", "left_gpu_hours", "message")
STATUSES = ("ok", "unavailable", "none")
RETRY_SECONDS = 30.0


def clean(data) -> dict:
    """The hub's answer reduced to the shown fields, numbers as numbers and text as short text."""
    if not isinstance(data, dict) or data.get("status") not in STATUSES:
        return {"status": "unavailable", "message": "the hub's answer about GPU budgets was not understood"}
    out = {"status": data["status"], "account": str(data.get("account") or "")[:100], "message": str(data.get("message") or "")[:500]}
    for key in FIELDS[2:6]:
        value = data.get(key)
        out[key] = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return out


class BudgetCache:
    """One answer per refresh period for this server, whatever the number of tabs."""

    def __init__(self, me: ServerIdentity | None) -> None:
        self.me = me
        self.answer: dict | None = None
        self.expires = 0.0
        self.lock = asyncio.Lock()

    async def view(self) -> dict | None:
        async with self.lock:
            if self.answer is None or time.monotonic() >= self.expires:
                self.answer, keep = await self._ask()
                self.expires = time.monotonic() + keep
            return self.answer

    async def _ask(self) -> tuple[dict | None, float]:
        got = await call(f"{self.me.hub_api}/academy/budget", self.me.token, timeout=30)
        if got.status == 404:
            return None, 600.0  # the hub has no budgets: ask again only rarely
        if not got.ok:
            return {"status": "unavailable", "message": f"the hub did not answer ({got.status} {got.reason})"[:500]}, RETRY_SECONDS
        refresh = got.data.get("refresh_seconds") if isinstance(got.data, dict) else None
        keep = float(refresh) if isinstance(refresh, (int, float)) and 5 <= refresh <= 3600 else 120.0
        answer = clean(got.data)
        return answer, keep if answer["status"] != "unavailable" else min(keep, RETRY_SECONDS)


class BudgetHandler(APIHandler):
    @web.authenticated
    async def get(self):
        cache: BudgetCache = self.settings["academy_budget"]
        if cache.me is None:
            raise web.HTTPError(404, "not a hub server: no GPU budget to show")
        answer = await cache.view()
        if answer is None:
            raise web.HTTPError(404, "GPU budgets are not enabled on this hub")
        self.set_header("Cache-Control", "no-store")
        self.finish({**answer, "refresh_seconds": max(30.0, cache.expires - time.monotonic())})


def install(web_app) -> None:
    web_app.settings["academy_budget"] = BudgetCache(ServerIdentity.from_env())
    web_app.add_handlers(".*$", [(url_path_join(web_app.settings["base_url"], "academy", "api", "budget"), BudgetHandler)])
