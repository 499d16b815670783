"""``POST /hub/api/academy/walltime`` ``{"hours": n}``: More time, asked by a learner's server for itself.

Only a server's own API token is accepted (the ``academy.lab`` server extension forwards the
learner's click with it); the spawner it belongs to decides within its profile's maximum
(:mod:`academy.spawners.walltime`). A learner who reads the token from their environment gains
nothing: the same rule applies, to their own server only.
"""
from __future__ import annotations

import hmac
import json

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

from academy.spawners.walltime import WalltimeRefused

ROUTE = r"/api/academy/walltime"


def parse_request(body: bytes) -> int:
    """The extra hours from ``{"hours": N}`` (1..168); anything else is a 400."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        raise web.HTTPError(400, "body must be JSON: {\"hours\": <whole number>}") from None
    if not isinstance(data, dict) or set(data) != {"hours"}:
        raise web.HTTPError(400, "only {\"hours\": <whole number>} is accepted")
    hours = data["hours"]
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 168:
        raise web.HTTPError(400, "hours must be a whole number from 1 to 168")
    return hours


class WalltimeHandler(APIHandler):
    """More time for the server whose token calls."""

    @web.authenticated
    async def post(self):
        user = self.current_user
        token = self.get_auth_token() or ""
        spawners = getattr(user, "spawners", None) or {}
        spawner = next(
            (s for s in spawners.values() if s.api_token and hmac.compare_digest(s.api_token, token)), None,
        )
        if spawner is None:
            raise web.HTTPError(403, "only a server's own API token may ask for more time for it")
        more = parse_request(self.request.body)
        if not spawner.ready or not hasattr(spawner, "extend_walltime"):
            raise web.HTTPError(409, "this server is not running, or its backend cannot extend it")
        try:
            answer = await spawner.extend_walltime(more)
        except WalltimeRefused as exc:
            raise web.HTTPError(exc.status, exc.message) from None
        self.finish(json.dumps(answer))


def install() -> None:
    """Add our route to JupyterHub's API table (idempotent); called where the spawners are imported."""
    table = apihandlers.default_handlers
    if not any(entry[0] == ROUTE for entry in table):
        table.append((ROUTE, WalltimeHandler))
