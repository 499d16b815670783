"""STAND-IN for helper A's learner-token auth (issue #10): replace this file with A's ``learnerapi.py``.

Written by helper C only so that ``GET api/announcements`` runs and is tested before A's branch is
merged; it keeps exactly the contract's signature: ``LearnerTokenHandler.learner() -> LearnerCaller``.
A request carries ``Authorization: token <token>`` (a learner server's JUPYTERHUB_API_TOKEN, or the
learner's own API token); the hub says whose token it is (``HubAuth.user_for_token``, cached
briefly), the token must hold ``access:services!service=academy``, and the caller's workshops are
those they take part in that are not torn down and not over. 401 without a valid token, 403 for a
token without the scope or a caller in no active workshop.
"""
from __future__ import annotations

from dataclasses import dataclass

from jupyterhub.services.auth import HubAuth
from sqlalchemy import select
from tornado import web

from academy.workshop.models import Participant, Workshop, utcnow

SCOPE = "access:services!service=academy"


@dataclass
class LearnerCaller:
    """Who called: the token's user and the slugs of their active workshops."""

    name: str
    workshop_slugs: list[str]


def active_slugs(sessions, name: str) -> list[str]:
    """Workshops ``name`` takes part in that are neither torn down nor over."""
    with sessions() as db:
        return list(db.scalars(select(Workshop.slug).join(Participant, Participant.workshop_id == Workshop.id)
                               .where(Participant.username == name, Workshop.torn_down_at.is_(None), Workshop.end > utcnow())
                               .order_by(Workshop.slug)))


class LearnerTokenHandler(web.RequestHandler):
    """Base of the learner-server API: ``await self.learner()`` or an HTTP error."""

    def check_xsrf_cookie(self):
        # Token-authenticated calls from servers, never a browser form: XSRF does not apply.
        return None

    @property
    def _hub_auth(self) -> HubAuth:
        ctx = self.settings["ctx"]
        if "learner_hub_auth" not in self.settings:
            self.settings["learner_hub_auth"] = HubAuth(api_url=ctx.hub.api_url, api_token=ctx.hub.token, cache_max_age=60)
        return self.settings["learner_hub_auth"]

    async def learner(self) -> LearnerCaller:
        header = self.request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() not in ("token", "bearer") or not token.strip():
            raise web.HTTPError(401, "a learner server's token is needed (Authorization: token ...)")
        model = await self._hub_auth.user_for_token(token.strip(), sync=False)
        if not model or model.get("kind", "user") != "user":
            raise web.HTTPError(401, "the hub does not know this token")
        if not self._hub_auth.check_scopes({SCOPE}, model):
            raise web.HTTPError(403, f"the token lacks {SCOPE}")
        slugs = active_slugs(self.settings["ctx"].sessions, model["name"])
        if not slugs:
            raise web.HTTPError(403, "not a participant of an active workshop")
        return LearnerCaller(model["name"], slugs)

    def write_error(self, status_code, **kwargs):
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        self.finish({"status": status_code, "message": reason})
