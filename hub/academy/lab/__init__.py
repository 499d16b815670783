"""Jupyter server extension ``academy.lab``: what the Academy's JupyterLab extension asks its own server.

``GET academy/api/session`` gives the walltime (:mod:`academy.lab.clock`), the centre's help links
and the welcome/curriculum paths; ``POST academy/api/walltime/extend`` forwards "More time" to
the hub. The prebuilt lab extension (source in ``labextension/``, built by ``make`` into
``labextensions/``) is found by learner servers through ``LabApp.extra_labextensions_path``
(``hub/singleuser/jupyter_server_config.py``), so learners' machines never build anything.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Float, Unicode, default
from traitlets.config import Configurable

from academy.lab.clock import ExtendRefused, SessionClock

LABEXTENSIONS_DIR = Path(__file__).parent / "labextensions"


class AcademyLab(Configurable):
    """Settings of the learner-side Academy extension (the hub passes them as ACADEMY_* variables)."""

    walltime_recheck_seconds = Float(
        config=True,
        help="Seconds before the job's end time is asked from squeue again (an admin or More time may move it).",
    )
    poll_seconds = Float(20.0, config=True, help="How often the browser asks this server for the session state.")
    help_url = Unicode(config=True, help="The centre's help pages, linked from JupyterLab's Help menu.")
    help_email = Unicode(config=True, help="The centre's helpdesk e-mail, linked from JupyterLab's Help menu.")
    ask_trainer_url = Unicode(config=True, help="Where a learner asks a trainer (a workshop's page); empty: hidden.")
    curriculum = Unicode(config=True, help="Folder of the curriculum in the learner's home (Launcher: Curriculum).")
    welcome = Unicode(config=True, help="Notebook opened on the learner's first start, relative to the home.")

    @default("walltime_recheck_seconds")
    def _recheck(self):
        return float(os.environ.get("ACADEMY_WALLTIME_RECHECK") or 180)

    @default("help_url")
    def _help_url(self):
        return os.environ.get("ACADEMY_HELP_URL", "")

    @default("help_email")
    def _help_email(self):
        return os.environ.get("ACADEMY_HELP_EMAIL", "")

    @default("ask_trainer_url")
    def _ask_trainer_url(self):
        return os.environ.get("ACADEMY_ASK_TRAINER_URL", "")

    @default("curriculum")
    def _curriculum(self):
        return os.environ.get("ACADEMY_CURRICULUM", "")

    @default("welcome")
    def _welcome(self):
        return os.environ.get("ACADEMY_WELCOME", "")


class _Base(APIHandler):
    @property
    def lab(self) -> AcademyLab:
        return self.settings["academy_lab"]

    @property
    def clock(self) -> SessionClock:
        return self.settings["academy_clock"]


class SessionHandler(_Base):
    """``GET academy/api/session``: everything the front end shows about this session."""

    @web.authenticated
    async def get(self):
        lab = self.lab
        walltime = await self.clock.walltime()
        root = Path(self.settings.get("server_root_dir") or os.getcwd())
        welcome = lab.welcome if lab.welcome and (root / lab.welcome).is_file() else ""
        self.finish(json.dumps({
            "now": time.time(),
            "walltime": walltime.as_json(),
            "help": {"url": lab.help_url, "email": lab.help_email, "ask_trainer_url": lab.ask_trainer_url},
            "welcome": welcome,
            "curriculum": lab.curriculum if lab.curriculum and (root / lab.curriculum).is_dir() else "",
            "poll_seconds": lab.poll_seconds,
        }))


class ExtendHandler(_Base):
    """``POST academy/api/walltime/extend`` ``{"hours": n}``: ask the hub for more time."""

    @web.authenticated
    async def post(self):
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "body must be JSON: {\"hours\": <whole number>}") from None
        hours = body.get("hours") if isinstance(body, dict) else None
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 168:
            raise web.HTTPError(400, "hours must be a whole number from 1 to 168")
        try:
            walltime = await self.clock.extend(hours)
        except ExtendRefused as exc:
            raise web.HTTPError(exc.status, exc.message) from None
        self.finish(json.dumps({"walltime": walltime.as_json()}))


def _jupyter_server_extension_points():
    return [{"module": "academy.lab"}]


def _jupyter_labextension_paths():
    return [{"src": "labextensions/academy-lab", "dest": "academy-lab"}]


def _load_jupyter_server_extension(serverapp):
    lab = AcademyLab(config=serverapp.config, parent=serverapp)
    web_app = serverapp.web_app
    web_app.settings["academy_lab"] = lab
    web_app.settings["academy_clock"] = SessionClock(os.environ, lab.walltime_recheck_seconds)
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [
        (url_path_join(base, "academy/api/session"), SessionHandler),
        (url_path_join(base, "academy/api/walltime/extend"), ExtendHandler),
    ])
    serverapp.log.info("academy.lab: walltime %s", web_app.settings["academy_clock"].current())
