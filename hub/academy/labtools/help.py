""""Ask a trainer": the learner's hand, and a share of their server with their workshop's trainer group.

``HelpDesk`` keeps the state the lab extension shows in the top bar and acts on it:

- ``ask``: raises the hand (a ``hand`` event) and, with the learner's consent, shares this server
  through the hub's sharing API with the trainer group that the Academy service names in
  ``GET api/events/mine`` (never a group from the browser), then sends a ``share`` event whose
  message is the URL path a trainer opens (``/user/ann/``).
- ``end``: revokes every share of this server (``DELETE /hub/api/shares/{user}/{server}``) and
  sends ``share_ended`` and ``hand_lowered``.
- With the site setting ``workshops.trainer_access: always`` the share is made at start without
  asking (the site's terms of use say so); the learner still sees it, and cannot end it.

The hub is the truth about the share (it survives a server restart), the service about the workshop.
HTTP routes (the server's own auth and XSRF): ``GET|POST|DELETE academy/api/help`` and
``GET academy/api/help/mine`` (the learner's privacy view, passed through from the service).
Asking and the privacy view are the owner's alone; a trainer in the shared server may end its access.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass

from jupyter_server.base.handlers import APIHandler
from tornado import web

from academy.labtools.forward import EventForwarder, make_event
from academy.labtools.groupshare import ShareGroups
from academy.labtools.servicelink import GROUP_NAME, Answer, HubShares, ServerIdentity, call

MODES = ("consent", "always")
HAND_MESSAGE_LIMIT = 1000


class HelpRefused(Exception):
    """An action that cannot be done now; ``status`` and ``message`` go back to the browser."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class HelpState:
    """What the top bar shows; ``available`` means the service counts this learner in an active workshop."""

    available: bool = False
    reason: str = "not checked yet"
    trainer_access: str = "consent"
    trainer_group: str = ""
    hand: bool = False
    shared: bool = False
    share_path: str = ""


def _unavailable_reason(answer: Answer) -> str:
    if answer.status in (401, 403):
        return "you are not a participant of a workshop that is running now"
    if answer.status in (404, 405) or 300 <= answer.status < 400:
        return "no workshop service answers at this server's service address"
    return f"the workshop service does not answer now ({answer.status} {answer.reason})".strip()


class HelpDesk:
    """The learner's help state for one server, refreshed from the service and the hub."""

    def __init__(self, me: ServerIdentity, forwarder: EventForwarder, mode: str = "consent",
                 refresh_seconds: float = 60.0, log=None, clock=time.monotonic, on_revoked=None,
                 share_groups: ShareGroups | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"trainer_access must be one of {', '.join(MODES)}, not {mode!r}")
        self.me, self.forwarder, self.mode = me, forwarder, mode
        self.shares = HubShares(me)
        self.state = HelpState(trainer_access=mode)
        self.refresh_seconds, self.log, self.clock = refresh_seconds, log, clock
        self.on_revoked = on_revoked  # cuts off connections the share let in (academy.labtools.cutoff)
        self.share_groups = share_groups or ShareGroups(clock)  # what academy.labtools.groupshare honours
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    def stale(self) -> bool:
        return self.clock() - self._checked >= self.refresh_seconds

    async def refresh(self) -> HelpState:
        """Ask the service (workshop, trainer group) and the hub (shares); in ``always`` mode, share now."""
        async with self._lock:
            await self._refresh()
            if self.mode == "always" and self.state.available and not self.state.shared:
                try:
                    await self._share()
                except HelpRefused as exc:
                    self._warn("trainer access (always) not made: %s", exc.message)
            return self.state

    async def _refresh(self) -> None:
        self._checked = self.clock()
        mine = await self.mine()
        st = self.state
        if not mine.ok or not isinstance(mine.data, dict):
            st.available, st.reason = False, _unavailable_reason(mine)
        else:
            group = mine.data.get("trainer_group")
            if isinstance(group, str) and GROUP_NAME.match(group):
                st.available, st.reason, st.trainer_group = True, "", group
                self.forwarder.resume()  # a pause from before the workshop began must not eat the hand
            else:
                st.available, st.reason = False, "the workshop service names no trainer group for you"
            if isinstance(mine.data.get("hand"), bool):
                st.hand = mine.data["hand"]
        groups = await self.shares.groups()
        if groups.ok:
            st.shared = bool(groups.data)
            st.share_path = self.me.prefix if st.shared else ""
            self.share_groups.update(groups.data)
        else:
            self._warn("could not read this server's shares from the hub: %s %s", groups.status, groups.reason)

    async def mine(self) -> Answer:
        return await call(self.me.service_url + "api/events/mine", self.me.token)

    async def _share(self) -> None:
        group = self.state.trainer_group
        answer = await self.shares.share_with_group(group)
        if not answer.ok:
            raise HelpRefused(502, f"the hub did not share your server with {group}: {answer.status} {answer.reason}")
        server = answer.data.get("server", {}) if isinstance(answer.data, dict) else {}
        self.state.shared = True
        self.state.share_path = server.get("url") or self.me.prefix
        self.share_groups.update(self.share_groups.groups | {group})
        self.forwarder.add(make_event("share", message=self.state.share_path))
        self._info("server shared with the trainer group %s", group)

    async def ask(self, message: str = "", share: bool = True) -> HelpState:
        """The learner's request for help; ``share`` is their consent to let a trainer in."""
        async with self._lock:
            await self._refresh()
            if not self.state.available:
                raise HelpRefused(409, f"Ask a trainer is not available: {self.state.reason}")
            self.forwarder.add(make_event("hand", message=message))
            self.state.hand = True
            if share and not self.state.shared:
                await self._share()
            return self.state

    async def end(self) -> HelpState:
        """End trainer access (unless the site keeps it on) and lower the hand."""
        async with self._lock:
            st = self.state
            if self.mode != "always":
                # Asked afresh: a share made before this server started (or by hand) ends too.
                groups = await self.shares.groups()
                was_shared = st.shared or (groups.ok and bool(groups.data))
                answer = await self.shares.revoke_all()
                if not answer.ok and answer.status != 404:
                    raise HelpRefused(502, f"the hub did not end the access: {answer.status} {answer.reason}")
                st.shared, st.share_path = False, ""
                self.share_groups.clear()
                closed = self.on_revoked() if self.on_revoked else 0
                if was_shared:
                    self.forwarder.add(make_event("share_ended"))
                    self._info("shares of this server revoked; %s open connection(s) of others closed", closed)
            if st.hand:
                st.hand = False
                self.forwarder.add(make_event("hand_lowered"))
            return st

    async def recheck_shares(self) -> None:
        """Re-read the shares: often while shared (one revoked elsewhere, by teardown or an admin, ends here
        too), every third call otherwise (one made outside this server, e.g. by the site's tooling, is honoured)."""
        self._rechecks = getattr(self, "_rechecks", 0) + 1
        if not self.share_groups.groups and self._rechecks % 3:
            return
        groups = await self.shares.groups()
        if not groups.ok:
            return
        self.share_groups.update(groups.data)
        was_shared, self.state.shared = self.state.shared, bool(groups.data)
        self.state.share_path = self.me.prefix if self.state.shared else ""
        if was_shared and not self.state.shared and self.on_revoked:
            self.on_revoked()

    def as_json(self) -> dict:
        stats = self.forwarder.stats
        return {**asdict(self.state), "forwarding": {
            "sent": stats.sent, "queued": len(self.forwarder.queue), "refused_by_service": stats.refused_by_service,
            "dropped": stats.dropped_overflow + stats.dropped_bad_batch, "paused": self.forwarder.paused,
            "last_error": stats.last_error}}

    def _info(self, msg, *args) -> None:
        if self.log:
            self.log.info("academy help: " + msg, *args)

    def _warn(self, msg, *args) -> None:
        if self.log:
            self.log.warning("academy help: " + msg, *args)


class _Base(APIHandler):
    @property
    def desk(self) -> HelpDesk | None:
        return self.settings.get("academy_help")

    def need_desk(self) -> HelpDesk:
        if self.desk is None:
            raise web.HTTPError(409, "Ask a trainer is not available: this server was not started by the hub")
        return self.desk

    def need_owner(self) -> None:
        # A trainer in a shared server is authenticated too; consent and the privacy view are the learner's.
        name = getattr(self.current_user, "username", None)
        if name != self.need_desk().me.user:
            raise web.HTTPError(403, "only the owner of this server may do this")


class HelpHandler(_Base):
    @web.authenticated
    async def get(self):
        desk = self.desk
        if desk is None:
            self.finish(json.dumps({**asdict(HelpState(reason="this server was not started by the hub")),
                                    "forwarding": None}))
            return
        if desk.stale():
            await desk.refresh()
        self.finish(json.dumps(desk.as_json()))

    @web.authenticated
    async def post(self):
        self.need_owner()
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "body: expected JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "body: expected a JSON object")
        unknown = sorted(set(body) - {"share", "message"})
        if unknown:
            # The group is the service's choice alone; a body naming one (or anything else) is refused.
            raise web.HTTPError(400, f"body: unknown key(s) {', '.join(unknown)} (allowed: share, message)")
        share, message = body.get("share", True), body.get("message", "")
        if not isinstance(share, bool):
            raise web.HTTPError(400, "share: true or false")
        if not isinstance(message, str) or len(message) > HAND_MESSAGE_LIMIT:
            raise web.HTTPError(400, f"message: a text of at most {HAND_MESSAGE_LIMIT} characters")
        try:
            await self.need_desk().ask(message.strip(), share)
        except HelpRefused as exc:
            raise web.HTTPError(exc.status, exc.message) from None
        self.finish(json.dumps(self.desk.as_json()))

    @web.authenticated
    async def delete(self):
        try:
            await self.need_desk().end()
        except HelpRefused as exc:
            raise web.HTTPError(exc.status, exc.message) from None
        self.finish(json.dumps(self.desk.as_json()))


class MineHandler(_Base):
    @web.authenticated
    async def get(self):
        self.need_owner()
        answer = await self.need_desk().mine()
        if not answer.ok:
            raise web.HTTPError(answer.status if answer.status in (401, 403, 404) else 502,
                                _unavailable_reason(answer))
        self.finish(json.dumps(answer.data))


def routes(base_url: str) -> list[tuple]:
    from jupyter_server.utils import url_path_join as join

    api = join(base_url, "academy", "api", "help")
    return [(api, HelpHandler), (join(api, "mine"), MineHandler)]
