"""Learner servers calling the trainer service with their own token: who is calling, and in which workshops.

A learner's Jupyter server (its server extension) calls ``/services/academy/api/...`` with
``Authorization: token $JUPYTERHUB_API_TOKEN``. :class:`LearnerTokenHandler` asks the hub whose
token it is (``HubAuth.user_for_token``, cached for ``CACHE_SECONDS``), so the caller's name always
comes from the hub, never from the request. It then needs the token to carry
``access:services!service=academy`` and the user to be a participant of an active workshop.

- **Which scope, and how the server's token gets it.** JupyterHub (4.0+) gives a server's token the
  scopes of ``Spawner.server_token_scopes``, but only those its user holds. ``configurer.update_learner_api``
  therefore sets ``server_token_scopes`` to the default ``server`` role's scopes (or what another
  updater set) plus
  ``access:services!service=academy``, and grants every user that scope with ``JupyterHub.extra_user_scopes``
  (6.0+). The service's own pages still refuse anyone who is not a trainer or admin (service.BaseHandler).
- **A user's own API token** (made at /hub/token; it inherits the user's scopes) is accepted too: it is
  the same user, and everything a learner can post is about themselves.
- **How a server finds the service.** ``$ACADEMY_SERVICE_URL`` in every server's environment (set by
  ``update_learner_api`` from :func:`service_url`): the site's public address (``workshops.public_url``,
  else the hub's ``ip:port`` and ``base_url``) plus ``services/academy/``. ``$JUPYTERHUB_API_URL`` is the
  hub's internal port, which does not route to services, so it is not used.
- **Active workshop:** the user is a (not disabled) participant, and the workshop is neither over nor
  torn down. Events may therefore arrive before the start (warm start, preparation).

Only the ``Authorization`` header is read: no cookie and no ``?token=`` (URLs end up in logs), so the
XSRF check, which guards cookie-authenticated forms, does not apply.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from jupyterhub.services.auth import HubAuth, check_scopes
from sqlalchemy import select
from tornado import web

from academy.workshop import actions
from academy.workshop.models import Participant, Workshop, utcnow

SCOPE = "access:services!service=academy"
CACHE_SECONDS = 30  # a revoked token keeps working at most this long; the hub is asked once per period


@dataclass
class LearnerCaller:
    """The hub user behind a learner token, and the active workshops they take part in."""

    name: str
    workshop_slugs: list[str]


def service_url(cfg: dict) -> str:
    """The service's address as learner servers reach it (through the proxy), ending in ``/``."""
    hub = cfg["hub"]
    public = cfg["workshops"].get("public_url") or ""
    if not public:
        host = hub["ip"] if hub["ip"] not in ("0.0.0.0", "", "::") else "127.0.0.1"
        public = f"http://{host}:{hub['port']}{hub['base_url']}"
    return public.rstrip("/") + "/services/academy/"


def active_workshops(ctx: actions.Context, name: str) -> list[str]:
    """Slugs of the workshops ``name`` takes part in that are neither over nor torn down."""
    now = utcnow()
    with ctx.sessions() as db:
        q = (select(Workshop.slug).join(Participant, Participant.workshop_id == Workshop.id)
             .where(Participant.username == name, Participant.disabled.is_(False),
                    Workshop.torn_down_at.is_(None), Workshop.end > now).order_by(Workshop.start))
        return list(db.scalars(q))


class LearnerTokenHandler(web.RequestHandler):
    """Base of the API that learner servers call; ``await self.learner()`` or 401/403."""

    @property
    def ctx(self) -> actions.Context:
        return self.settings["ctx"]

    @property
    def hub_auth(self) -> HubAuth:
        auth = self.settings.get("learner_auth")
        if auth is None:
            auth = HubAuth(api_url=self.ctx.hub.api_url, api_token=self.ctx.hub.token, cache_max_age=CACHE_SECONDS)
            self.settings["learner_auth"] = auth
        return auth

    def check_xsrf_cookie(self) -> None:
        """No cookie is ever read here (see the module docstring), so there is nothing to forge."""

    def token(self) -> str:
        head = self.request.headers.get("Authorization", "")
        scheme, _, value = head.partition(" ")
        return value.strip() if scheme.lower() in ("token", "bearer") else ""

    async def hub_model(self) -> dict:
        """The hub's model of the token's owner (401 without a valid token, 403 without the scope)."""
        token = self.token()
        if not token:
            raise web.HTTPError(401, "send the server's token: Authorization: token $JUPYTERHUB_API_TOKEN")
        model = await self.hub_auth.user_for_token(token, sync=False)
        if not model:
            raise web.HTTPError(401, "the hub does not know this token")
        if model.get("kind", "user") != "user":
            raise web.HTTPError(403, "only users' servers post here")
        if not check_scopes({SCOPE}, set(model.get("scopes") or [])):
            raise web.HTTPError(403, f"the token lacks {SCOPE}")
        return model

    async def learner(self) -> LearnerCaller:
        """The caller, if they take part in an active workshop; else 403."""
        name = (await self.hub_model())["name"]
        slugs = active_workshops(self.ctx, name)
        if not slugs:
            raise web.HTTPError(403, "not a participant of an active workshop")
        return LearnerCaller(name, slugs)

    def write_error(self, status_code, **kwargs):
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": reason}))
