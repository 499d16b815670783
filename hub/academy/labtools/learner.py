"""Server extension ``academy.labtools.learner``: a learner's server in their workshop (events out, help in).

It starts, in the server's own event loop, the progress forwarder (:mod:`academy.labtools.forward`:
the progress file tailed every ``forward_interval`` seconds, new events sent to the Academy service's
``POST api/events``), a ``sessions`` event when the notebooks open in this server change (from the
server's own session manager, at most every ``sessions_seconds``), and "Ask a trainer"
(:mod:`academy.labtools.help`; End access cuts off open connections at once: :mod:`academy.labtools.cutoff`).
A server the hub did not start, or whose owner is in no active workshop (the service answers 403),
sends nothing: the forwarder pauses and the top bar hides the button.
Enabled next to ``academy.labtools`` in ``hub/singleuser/jupyter_server_config.json``.
"""
from __future__ import annotations

import asyncio
import json
import os

from tornado.ioloop import IOLoop, PeriodicCallback
from traitlets import Enum, Float, Int, default
from traitlets.config import Configurable

from academy.labtools.cutoff import cut_off_others, track_kernel_connections
from academy.labtools.forward import EventForwarder, ProgressTail, event_from_line, make_event
from academy.labtools.groupshare import ShareGroups, honour_group_shares
from academy.labtools.help import MODES, HelpDesk, routes
from academy.labtools.servicelink import ServerIdentity, call
from academy.learn import progress_path


class AcademyLearnerLink(Configurable):
    """Settings of the extension (``c.AcademyLearnerLink.*``); the hub sets ``trainer_access`` by environment."""

    trainer_access = Enum(
        list(MODES), config=True,
        help="consent: a learner shares their server with the trainers only after a dialog; always: shared at start "
             "(a site whose terms of use say so). Default: $ACADEMY_TRAINER_ACCESS, else consent.",
    )
    forward_interval = Float(1.0, config=True, help="Seconds between reads of the progress file and between sends.")
    max_queue = Int(1000, config=True, help="Events kept while the service is down; beyond it the oldest drop (counted).")
    max_batch = Int(50, config=True, help="Most events in one POST (the service takes at most 50).")
    rate_per_second = Float(8.0, config=True, help="Events per second sent at most (below the service's flood limit of 10).")
    backoff_max = Float(60.0, config=True, help="Longest wait, in seconds, between retries while the service fails.")
    pause_seconds = Float(600.0, config=True, help="Seconds to stay quiet after the service says 401/403/404 (not in a workshop).")
    sessions_seconds = Float(10.0, config=True, help="Seconds between looks at the open notebooks (a sessions event on change).")
    refresh_seconds = Float(60.0, config=True, help="Seconds the help state (workshop, trainer group, share) is reused.")
    share_recheck_seconds = Float(
        10.0, config=True, help="While shared, seconds between looks at the hub's shares (one revoked elsewhere ends here too).")

    @default("trainer_access")
    def _trainer_access(self):
        mode = os.environ.get("ACADEMY_TRAINER_ACCESS", "consent")
        return mode if mode in MODES else "consent"


class LearnerLink:
    """The running parts: tail, forwarder, sessions watch, help desk."""

    def __init__(self, settings: AcademyLearnerLink, me: ServerIdentity, session_manager, log, on_revoked=None,
                 share_groups: ShareGroups | None = None) -> None:
        self.me, self.log, self.session_manager = me, log, session_manager
        self.tail = ProgressTail(progress_path())
        self.forwarder = EventForwarder(
            post=self.post, max_queue=settings.max_queue, max_batch=settings.max_batch,
            rate_per_second=settings.rate_per_second, interval=settings.forward_interval,
            backoff_max=settings.backoff_max, pause_seconds=settings.pause_seconds, on_sent=self.tail.save,
        )
        self.desk = HelpDesk(me, self.forwarder, settings.trainer_access, settings.refresh_seconds, log,
                             on_revoked=on_revoked, share_groups=share_groups)
        self._open: list[str] | None = None
        self._callbacks = [
            PeriodicCallback(self.pump, settings.forward_interval * 1000),
            PeriodicCallback(self.watch_sessions, settings.sessions_seconds * 1000),
            PeriodicCallback(self.desk.recheck_shares, settings.share_recheck_seconds * 1000),
        ]
        if settings.trainer_access == "always":
            # The site's share is kept in place even when no browser tab asks for the state.
            self._callbacks.append(PeriodicCallback(self.desk.refresh, settings.refresh_seconds * 1000))

    async def post(self, events: list[dict]):
        return await call(self.me.service_url + "api/events", self.me.token, "POST", {"events": events})

    async def pump(self) -> None:
        """Read new progress lines (off the event loop: homes may be on NFS) and send what is due."""
        lines = await asyncio.get_running_loop().run_in_executor(None, self.tail.read)
        for offset, line in lines:
            event = event_from_line(line)
            if event is not None:
                self.forwarder.add(event, offset)
        try:
            await self.forwarder.tick()
        except Exception:  # a bug here must not stop the callback; the next tick tries again
            self.log.exception("academy forwarder")

    async def watch_sessions(self) -> None:
        if self.forwarder.paused:
            self._open = None  # sent again once the service takes events
            return
        try:
            sessions = await self.session_manager.list_sessions()
        except Exception as exc:  # the session store is the server's; report and keep watching
            self.log.warning("academy forwarder: open notebooks not read: %s", exc)
            return
        paths = sorted({s.get("path", "") for s in sessions if s.get("type") == "notebook" and s.get("path")})
        if paths == self._open:
            return
        self._open = paths
        message = json.dumps(paths)
        while len(message) > 1000 and paths:  # the contract's message cap: name fewer, never cut JSON
            paths = paths[:-1]
            message = json.dumps(paths)
        self.forwarder.add(make_event("sessions", message=message))

    def start(self) -> None:
        for cb in self._callbacks:
            cb.start()
        IOLoop.current().call_later(2, self.desk.refresh)


def _jupyter_server_extension_points():
    return [{"module": "academy.labtools.learner"}]


def _load_jupyter_server_extension(serverapp) -> None:
    settings = AcademyLearnerLink(parent=serverapp)
    web_app = serverapp.web_app
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
    me = ServerIdentity.from_env()
    if me is None:
        web_app.settings["academy_help"] = None
        serverapp.log.info("academy.labtools.learner: not started by a hub; no events are forwarded")
        return
    track_kernel_connections(web_app)
    share_groups = ShareGroups()
    hub_auth = getattr(serverapp.identity_provider, "hub_auth", None)
    if hub_auth is not None:
        honour_group_shares(hub_auth, share_groups, serverapp.log)
    link = LearnerLink(settings, me, serverapp.session_manager, serverapp.log,
                       on_revoked=lambda: cut_off_others(serverapp, me.user), share_groups=share_groups)
    web_app.settings["academy_help"] = link.desk
    web_app.settings["academy_learner_link"] = link
    link.start()
    serverapp.log.info("academy.labtools.learner: events to %s, trainer access %s", me.service_url, settings.trainer_access)
