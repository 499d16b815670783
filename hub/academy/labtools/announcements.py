"""``GET academy/api/announcements`` on the learner's server: the workshop service's announcements, fetched with the server's token.

The learner's browser never holds a token: this handler (the server's own auth, so only the
server's owner gets in) asks the trainer service's ``GET api/announcements`` with
``JUPYTERHUB_API_TOKEN``, and passes on only the fields the lab extension shows, as plain strings.
The service is found at ``ACADEMY_SERVICE_URL`` (set by the hub config when workshops are on; not
derived from ``JUPYTERHUB_API_URL``, which is the hub's own port and does not route to services). A caller who is in no
active workshop gets an empty list (so the lab extension simply keeps polling); a server outside a
hub answers 404 (so the lab extension stops).
"""
from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

FIELDS = ("workshop", "text", "time", "author")


def service_url() -> str | None:
    url = os.environ.get("ACADEMY_SERVICE_URL", "").strip()
    if url:
        return url.rstrip("/") + "/"
    return None


def clean(body: dict) -> list[dict]:
    """The service's answer reduced to ``id`` (int) and the shown fields (strings); anything else is dropped."""
    out = []
    for item in body.get("announcements", []) if isinstance(body, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), int):
            out.append({"id": item["id"], **{k: str(item.get(k, ""))[:1000] for k in FIELDS}})
    return out


class AnnouncementsHandler(APIHandler):
    @web.authenticated
    async def get(self):
        base, token = service_url(), os.environ.get("JUPYTERHUB_API_TOKEN")
        if not base or not token:
            raise web.HTTPError(404, "not a hub server: no workshop service to ask")
        try:
            r = await AsyncHTTPClient().fetch(base + "api/announcements", headers={"Authorization": f"token {token}"},
                                              request_timeout=15)
        except HTTPClientError as exc:
            if exc.code in (401, 403):  # not (or no longer) in an active workshop
                return self.finish({"announcements": [], "participant": False})
            raise web.HTTPError(502, f"the workshop service answered {exc.code}") from None
        except OSError as exc:
            raise web.HTTPError(502, f"the workshop service cannot be reached ({exc})") from None
        try:
            body = json.loads(r.body or b"{}")
        except ValueError:
            raise web.HTTPError(502, "the workshop service did not answer JSON") from None
        self.set_header("Cache-Control", "no-store")
        self.finish({"announcements": clean(body), "participant": True})


def routes(base_url: str) -> list[tuple]:
    from jupyter_server.utils import url_path_join as join

    return [(join(base_url, "academy", "api", "announcements"), AnnouncementsHandler)]
