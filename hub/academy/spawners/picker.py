"""The profile picker every backend shares: the spawn form and strict ``user_options`` checking."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import jinja2
from sqlalchemy.orm import object_session
from tornado import web
from tornado.log import app_log
from traitlets import Bool, HasTraits, Unicode, default

from academy.profiles import Profile, load_profiles
from academy.spawners import link_pages
from academy.spawners.options import OptionsError, SpawnRequest, parse_user_options, preferred_profile

link_pages.install()  # one-click links (/hub/spawn?opt-profile=...) for every backend that uses the picker
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("academy", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class SpawnRefused(web.HTTPError):
    """A spawn request refused with HTTP 400 (JupyterHub may rewrite ``reason`` on the way; the class stays)."""

    def __init__(self, message: str):
        super().__init__(400, message, reason="Invalid spawn request")


class _QuietRefusals(logging.Filter):
    """Drops the traceback JupyterHub logs with each refused spawn request (form, URL, API), and its ERROR level.

    A refusal is the user's input, not a hub fault: its one-line message says it all, and
    tracebacks and ERROR lines in the log should mean bugs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            exc = record.exc_info[1]
        else:
            # JupyterHub's REST path logs "Error starting NAME's server: <the error>" without
            # exc_info, inside its except block: logging is synchronous, so that is the one handled now.
            exc = sys.exc_info()[1]
            if not (isinstance(exc, SpawnRefused) and str(exc) in record.getMessage()):
                return True
        if isinstance(exc, SpawnRefused):
            record.exc_info = record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


class ProfilePickerMixin(HasTraits):
    """Adds the profile form and turns posted options into a vetted ``self.spawn_request``.

    Mixed into a Spawner class before the Spawner base. Validation runs in JupyterHub's
    ``apply_user_options`` hook, which covers the form and the REST API alike and turns
    our ``HTTPError(400)`` into the response.
    """

    profiles_file = Unicode(
        config=True,
        help="Path of the profiles YAML (spawner_config/profiles.yaml); validated on every load.",
    )
    form_note = Unicode(
        "",
        config=True,
        help="A note shown above the profile list, e.g. that the local backend ignores GPU fields.",
    )
    curriculum_source = Unicode(
        "", config=True, help="Directory copied into each user's home on spawn (empty: none)."
    )
    curriculum_target = Unicode(
        "ai-factory-academy", config=True, help="Folder name for the curriculum inside the user's home."
    )
    show_resources = Bool(
        True, config=True, help="Show cores, memory and GPUs under each profile on the form."
    )

    workshops_db_url = Unicode(
        "", config=True, help="Workshop database (academy.workshop); a participant's spawns follow their running workshop."
    )

    spawn_request: SpawnRequest | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # JupyterHub overwrites the stored options with each request before any hook runs:
        # keep the last accepted ones (the stored ones at start) to put back after a refusal.
        self._accepted_user_options = dict(self.user_options or {})
        # JupyterHub's User logs through tornado's app_log (renamed "JupyterHub"), a logger of its own.
        for logger in (self.log, app_log):
            if not any(isinstance(f, _QuietRefusals) for f in logger.filters):
                logger.addFilter(_QuietRefusals())
    _profiles_cache: tuple[float, list[Profile]] | None = None

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return type(self)._apply_profile_options

    def load_profiles(self) -> list[Profile]:
        """Profiles, re-read when the file changes so admins can edit them without a restart."""
        path = Path(self.profiles_file)
        mtime = path.stat().st_mtime
        if self._profiles_cache is None or self._profiles_cache[0] != mtime:
            type(self)._profiles_cache = (mtime, load_profiles(path))
        return self._profiles_cache[1]

    def session_profiles(self):
        """All profiles, or those of the user's running workshop (bound to its reservation), and the form's message."""
        from academy.workshop.binding import Binding, bind

        if not self.workshops_db_url:
            return Binding(self.load_profiles())
        return bind(self.workshops_db_url, self.user.name, self.load_profiles())

    def user_groups(self) -> set[str]:
        return {g.name for g in self.user.groups}

    def allowed_profiles(self) -> list[Profile]:
        admin = bool(getattr(self.user, "admin", False))
        groups = self.user_groups()
        return [p for p in self.session_profiles().profiles if p.allows(groups, admin)]

    async def profile_availability(self, profiles: list[Profile]) -> dict[str, str]:
        """Text per profile slug about free capacity now; backends with a scheduler override this."""
        return {}

    async def _render_form(self, preselect: SpawnRequest | None = None, extra_note: str = "") -> str:
        """The form; a one-click link (academy.spawners.link_pages) preselects its vetted profile and hours."""
        profiles = self.allowed_profiles()
        if not profiles:
            return '<p class="alert alert-warning">No resource profile is available to your account. Ask a trainer to add you to a group.</p>'
        availability = await self.profile_availability(profiles)
        chosen = preferred_profile(profiles, self.user_groups())
        if preselect is not None and preselect.profile in profiles:
            chosen = preselect.profile
        return _templates.get_template("spawn_form.html").render(
            profiles=profiles,
            chosen=chosen.slug,
            availability=availability,
            notes=self.profile_notes(profiles),
            note=" ".join(filter(None, [extra_note, self.session_profiles().message, self.form_note_text()])),
            show_resources=self.show_resources,
            max_hours=max(p.max_hours for p in profiles),
            default_hours=preselect.hours if preselect is not None and preselect.profile == chosen else chosen.default_hours,
        )

    def form_note_text(self) -> str:
        """The note above the profiles; backends may add what they enforce here."""
        return self.form_note

    def profile_notes(self, profiles: list[Profile]) -> dict[str, str]:
        """A line under a profile (slug -> text), e.g. that this machine cannot give all it asks."""
        return {}

    @default("options_form")
    def _default_options_form(self):
        # A callable form is re-rendered on each visit, so availability stays current.
        return lambda spawner: spawner._render_form()

    def options_from_form(self, formdata):
        # Drop only the hub's own anti-forgery field: any other field reaches parse_user_options,
        # which refuses unknown ones, as the REST API does (spawn-by-URL comes through here too).
        options = {k: v for k, v in formdata.items() if k != "_xsrf"}
        # Vetted here too, before JupyterHub stores the options: a refused form or URL request
        # never reaches the database (the REST API's reaches it only until the hook puts the
        # last accepted options back).
        self._parse_request(options)
        return options

    def _parse_request(self, user_options) -> SpawnRequest:
        """Vet ``user_options``; a refusal restores the last accepted options in the database.

        JupyterHub stores what was posted before any hook runs, and the admin page shows it:
        a refused value must not stay there.
        """
        try:
            return parse_user_options(
                user_options,
                self.session_profiles().profiles,
                self.user_groups(),
                bool(getattr(self.user, "admin", False)),
            )
        except OptionsError as exc:
            self._store_user_options(self._accepted_user_options)
            self.log.warning("Refused spawn request for %s: %s", self._log_name, exc)
            raise SpawnRefused(str(exc)) from None

    def _store_user_options(self, options: dict) -> None:
        self.user_options = dict(options)
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = dict(options)
            session = object_session(self.orm_spawner)
            if session is not None:
                session.commit()

    def _apply_profile_options(self, user_options):
        request = self._parse_request(user_options)
        self.spawn_request = request
        # Persist the normalised form so a hub restart re-reads clean values only.
        self._accepted_user_options = request.as_user_options()
        self._store_user_options(self._accepted_user_options)
        self.apply_spawn_request(request)

    def apply_spawn_request(self, request: SpawnRequest) -> None:
        """Backends translate the vetted request into their own attributes."""
        self.environment = {
            **self.environment,
            "ACADEMY_PROFILE": request.profile.slug,
            "ACADEMY_WALLTIME_HOURS": str(request.hours),
            # The server extension (academy.labtools) says "no GPU" for 0 instead of asking NVML.
            "ACADEMY_GPUS": str(request.profile.gpus.count if request.profile.gpus else 0),
        }

    @staticmethod
    def _hub_is_root() -> bool:
        return os.geteuid() == 0
