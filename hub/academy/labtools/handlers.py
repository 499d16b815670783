"""HTTP API of the ``academy.labtools`` server extension (the contract the Academy lab extension calls).

All routes sit under the server's base URL and use the Jupyter server's own authentication (the hub's
token or cookie; XSRF for browser POST/DELETE), so only the server's owner and hub services granted
``access:servers`` on it (the culler) get in:

- ``GET academy/api/resources``: memory and CPU against the session's limits, per-GPU figures.
- ``GET|POST academy/api/notices``: short messages for the learner (the culler's warning).
- ``GET academy/api/activity``: when kernels, terminals and GPUs were last busy (for the culler).
- ``GET|POST academy/api/envs``, ``DELETE academy/api/envs/<name>``: own environments (:mod:`academy.envs`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

from jupyter_server.base.handlers import APIHandler
from tornado import web

from academy import envs
from academy.labtools import limits

LEVELS = ("info", "warning", "error")


def iso(ts: float | dt.datetime | None) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, dt.datetime):
        return (ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)).isoformat()
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


class _Base(APIHandler):
    @property
    def tools(self):
        return self.settings["academy_labtools"]

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "body: expected JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "body: expected a JSON object")
        return data


class ResourcesHandler(_Base):
    @web.authenticated
    async def get(self):
        t = self.tools
        lim = limits.session_limits()
        gpus, note = t.gpu_view()
        self.finish({
            "memory": {"used_bytes": limits.memory_used_bytes(), "limit_bytes": lim.memory_bytes},
            "cpu": {"percent": t.cpu.percent(), "limit_cores": lim.cpus},
            "gpus": gpus,
            "gpu_note": note,
        })


class NoticesHandler(_Base):
    @web.authenticated
    def get(self):
        self.finish({"notices": list(self.tools.notices)})

    @web.authenticated
    def post(self):
        data = self.body()
        level, message = data.get("level", "info"), data.get("message")
        if level not in LEVELS:
            raise web.HTTPError(400, f"level: one of {', '.join(LEVELS)}")
        limit = self.tools.config_obj.max_notice_length
        if not isinstance(message, str) or not message.strip() or len(message) > limit:
            raise web.HTTPError(400, f"message: a non-empty text of at most {limit} characters")
        notice = {"id": uuid.uuid4().hex, "level": level, "message": message.strip(),
                  "created": iso(dt.datetime.now(dt.timezone.utc))}
        self.tools.notices.append(notice)  # a bounded deque: the oldest drops out
        self.log.info("Academy notice (%s): %s", level, notice["message"][:200])
        self.set_status(201)
        self.finish(notice)


class ActivityHandler(_Base):
    @web.authenticated
    def get(self):
        t = self.tools
        km = self.kernel_manager
        last: list[dt.datetime] = []
        busy = False
        for kid in list(km.list_kernel_ids()):
            kernel = km.get_kernel(kid)
            last.append(kernel.last_activity)
            busy = busy or getattr(kernel, "execution_state", "") == "busy"
        terminals = getattr(self.settings.get("terminal_manager"), "terminals", {}) or {}
        for term in terminals.values():
            if getattr(term, "last_activity", None):
                last.append(term.last_activity)
        sampler = t.sampler
        self.finish({
            "kernels": len(km.list_kernel_ids()),
            "busy": busy,
            "last_activity": iso(max(last)) if last else None,
            "gpus": len(sampler.latest) if sampler else 0,
            "gpu_utilization_known": bool(sampler and any(r.utilization_percent is not None for r in sampler.latest)),
            "gpu_last_busy": iso(sampler.last_busy) if sampler else None,
            "now": iso(dt.datetime.now(dt.timezone.utc)),
        })


class EnvsHandler(_Base):
    @web.authenticated
    async def get(self):
        found = await asyncio.get_running_loop().run_in_executor(None, envs.list_envs)
        rows = [{"name": e.name, "kernel": e.kernel, "packages": e.packages, "status": "ready"} for e in found]
        known = {e.name for e in found}
        for name, status in self.tools.env_jobs.items():
            if name not in known or status != "ready":
                rows = [r for r in rows if r["name"] != name]
                rows.append({"name": name, "kernel": f"{envs.KERNEL_PREFIX}{name}", "packages": [], "status": status})
        self.finish({"envs": sorted(rows, key=lambda r: r["name"])})

    @web.authenticated
    async def post(self):
        data = self.body()
        try:
            name = envs.check_name(data.get("name"))
            packages = envs.check_packages(data.get("packages", []))
        except envs.EnvError as exc:
            raise web.HTTPError(400, str(exc)) from None
        jobs = self.tools.env_jobs
        if jobs.get(name) == "creating":
            raise web.HTTPError(409, f"name {name!r}: already being created")
        if (envs.envs_root() / name).exists():
            raise web.HTTPError(409, f"name {name!r}: an environment of that name exists")
        jobs[name] = "creating"
        asyncio.get_running_loop().create_task(self._create(name, packages))
        self.set_status(202)
        self.finish({"name": name, "status": "creating"})

    async def _create(self, name: str, packages: list[str]) -> None:
        jobs = self.tools.env_jobs
        try:
            await asyncio.get_running_loop().run_in_executor(None, lambda: envs.create(name, packages))
            jobs[name] = "ready"
            self.log.info("Academy environment %s created with %s", name, packages)
        except Exception as exc:  # reported through GET, as the request has long returned
            jobs[name] = f"failed: {exc}"
            self.log.warning("Academy environment %s failed: %s", name, exc)


class EnvHandler(_Base):
    @web.authenticated
    async def delete(self, name: str):
        try:
            envs.check_name(name)
        except envs.EnvError as exc:
            raise web.HTTPError(400, str(exc)) from None
        if self.tools.env_jobs.get(name) == "creating":
            raise web.HTTPError(409, f"name {name!r}: still being created")
        try:
            await asyncio.get_running_loop().run_in_executor(None, envs.remove, name)
        except envs.EnvError as exc:
            if self.tools.env_jobs.pop(name, None) is None:
                raise web.HTTPError(404, str(exc)) from None
        self.tools.env_jobs.pop(name, None)
        self.set_status(204)
        self.finish()


def routes(base_url: str) -> list[tuple]:
    from jupyter_server.utils import url_path_join as join

    api = join(base_url, "academy", "api")
    return [
        (join(api, "resources"), ResourcesHandler),
        (join(api, "notices"), NoticesHandler),
        (join(api, "activity"), ActivityHandler),
        (join(api, "envs"), EnvsHandler),
        # Any single path segment reaches the handler, which refuses what is not a valid name.
        (join(api, "envs", "([^/]+)"), EnvHandler),
    ]
