"""How a learner's server reaches the hub and the Academy service with its own token, without blocking.

``ServerIdentity.from_env`` reads what the hub gives every server (``JUPYTERHUB_USER``,
``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_SERVICE_PREFIX``); ``call`` is one
asynchronous JSON request (tornado's ``AsyncHTTPClient``, so the server's event loop never waits on
a slow hub or service); ``HubShares`` wraps the hub's sharing API for this server only.

The service's address: ``$ACADEMY_SERVICE_URL`` when the hub sets it, else the hub API URL minus
``/hub/api`` plus ``/services/academy/`` (the contract of issue #10).  Every request carries the
server's own token; no request body ever names the user, since the service takes the user from the token.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

SERVICE_PATH = "/services/academy/"
# What the hub accepts as a group name is wider, but a trainer group from the service must look like one.
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Answer:
    """One HTTP answer: ``status`` 599 means no answer at all (refused connection, timeout)."""

    status: int
    data: dict | list | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ServerIdentity:
    """This server as the hub knows it: owner, server name, URL prefix, hub API and service URLs, token."""

    user: str
    server_name: str
    prefix: str
    hub_api: str
    service_url: str
    token: str

    @classmethod
    def from_env(cls, env=os.environ) -> "ServerIdentity | None":
        """None when the server was not started by a hub (a plain ``jupyter lab``): then nothing is sent."""
        user, api, token = env.get("JUPYTERHUB_USER"), env.get("JUPYTERHUB_API_URL"), env.get("JUPYTERHUB_API_TOKEN")
        if not (user and api and token):
            return None
        api = api.rstrip("/")
        service = env.get("ACADEMY_SERVICE_URL") or (re.sub(r"/hub/api$", "", api) + SERVICE_PATH)
        return cls(user=user, server_name=env.get("JUPYTERHUB_SERVER_NAME", ""),
                   prefix=env.get("JUPYTERHUB_SERVICE_PREFIX") or f"/user/{user}/",
                   hub_api=api, service_url=service.rstrip("/") + "/", token=token)


async def call(url: str, token: str, method: str = "GET", body: dict | None = None, timeout: float = 20) -> Answer:
    """One JSON request with ``Authorization: token``; never raises for HTTP or network failures."""
    request = HTTPRequest(
        url, method=method, headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
        request_timeout=timeout, connect_timeout=min(timeout, 10), follow_redirects=False,
        allow_nonstandard_methods=True,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as exc:  # refused, reset, DNS: the service is not there now
        return Answer(599, None, f"{exc.__class__.__name__}: {exc}")
    data = None
    if response.body:
        try:
            data = json.loads(response.body)
        except ValueError:
            data = None
    reason = (data.get("message") if isinstance(data, dict) else None) or response.reason or ""
    if response.code == 599:
        reason = str(response.error or reason)
    return Answer(response.code, data, str(reason))


class HubShares:
    """The hub's sharing API for this one server (``/hub/api/shares/{user}/{server}``), with the server's token.

    The token needs ``shares!user`` and ``read:groups:name`` (``Spawner.server_token_scopes``, set by
    ``configurer.update_trainer_access``), which the hub only grants when the user's own role has them.
    """

    def __init__(self, me: ServerIdentity) -> None:
        self.me = me
        self.url = f"{me.hub_api}/shares/{quote(me.user, safe='')}/{quote(me.server_name, safe='')}"

    async def share_with_group(self, group: str) -> Answer:
        if not GROUP_NAME.match(group or ""):
            return Answer(400, None, f"not a group name: {group!r}")
        return await call(self.url, self.me.token, "POST", {"group": group})

    async def groups(self) -> Answer:
        """The groups this server is shared with now (``data`` becomes a list of names)."""
        answer = await call(self.url, self.me.token)
        if answer.ok:
            # A plain list, or {"items": [...]} when the hub paginates.
            items = answer.data.get("items", []) if isinstance(answer.data, dict) else answer.data or []
            answer.data = sorted(s["group"]["name"] for s in items if isinstance(s, dict) and s.get("group"))
        return answer

    async def revoke_all(self) -> Answer:
        """Every share and share code of this server ends (DELETE): also any the learner made by hand."""
        answer = await call(self.url, self.me.token, "DELETE")
        codes = await call(self.url.replace("/shares/", "/share-codes/", 1), self.me.token, "DELETE")
        return answer if not answer.ok or codes.ok or codes.status == 404 else codes
