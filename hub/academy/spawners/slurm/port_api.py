"""Replace batchspawner's ``POST /hub/api/batchspawner`` with a handler that accepts only a port.

batchspawner 1.3.0 sets *every* attribute the caller names on the spawner, authenticated by the
server's own API token, which the learner's code can read from its environment. Setting
``exec_prefix`` or ``batch_query_cmd`` that way makes the hub run the learner's command as root
at the next poll. Our handler accepts exactly ``{"port": <int 1..65535>}`` from the token of the
server being started, while that server is starting, and hands it to ``report_port``.
"""
from __future__ import annotations

import hmac
import json

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

ROUTE = r"/api/batchspawner"


class PortReportHandler(APIHandler):
    """``POST /hub/api/batchspawner`` from ``batchspawner-singleuser`` inside the job."""

    @web.authenticated
    async def post(self):
        user = self.current_user
        token = self.get_auth_token() or ""
        spawners = getattr(user, "spawners", None) or {}
        spawner = next(
            (s for s in spawners.values() if s.api_token and hmac.compare_digest(s.api_token, token)),
            None,
        )
        if spawner is None:
            raise web.HTTPError(403, "only a server's own API token may report its port")
        port = parse_port_report(self.request.body)
        report = getattr(spawner, "report_port", None)
        if report is None or not spawner._spawn_pending:
            raise web.HTTPError(409, f"{spawner._log_name} is not waiting for a port")
        report(port)
        self.set_status(201)
        self.finish(json.dumps({"message": f"port {port} recorded"}))


def parse_port_report(body: bytes) -> int:
    """The port from ``{"port": N}``; anything else (other keys, strings, bools, out of range) is a 400."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        raise web.HTTPError(400, "body must be JSON: {\"port\": <integer>}") from None
    if not isinstance(data, dict) or set(data) != {"port"}:
        keys = ", ".join(sorted(map(str, data)))[:100] if isinstance(data, dict) else type(data).__name__
        raise web.HTTPError(400, f"only {{\"port\": <integer>}} is accepted, not: {keys}")
    port = data["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise web.HTTPError(400, "port must be an integer from 1 to 65535")
    return port


def install() -> None:
    """Swap batchspawner's handler for ours in JupyterHub's API route table (idempotent).

    JupyterHub adds ``extra_handlers`` *after* its defaults and tornado takes the first match,
    so the stock route has to be replaced in place, before the hub builds its handlers.
    """
    table = apihandlers.default_handlers
    table[:] = [entry for entry in table if entry[0] != ROUTE]
    table.append((ROUTE, PortReportHandler))
