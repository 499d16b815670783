"""The profile picker every backend shares: the spawn form and strict ``user_options`` checking."""
from __future__ import annotations

import os
from pathlib import Path

import jinja2
from tornado import web
from traitlets import Bool, HasTraits, Unicode, default

from academy.profiles import Profile, load_profiles
from academy.spawners.options import OptionsError, SpawnRequest, parse_user_options

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("academy", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


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

    spawn_request: SpawnRequest | None = None
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

    def user_groups(self) -> set[str]:
        return {g.name for g in self.user.groups}

    def allowed_profiles(self) -> list[Profile]:
        admin = bool(getattr(self.user, "admin", False))
        groups = self.user_groups()
        return [p for p in self.load_profiles() if p.allows(groups, admin)]

    async def profile_availability(self, profiles: list[Profile]) -> dict[str, str]:
        """Text per profile slug about free capacity now; backends with a scheduler override this."""
        return {}

    async def _render_form(self) -> str:
        profiles = self.allowed_profiles()
        if not profiles:
            return '<p class="alert alert-warning">No resource profile is available to your account. Ask a trainer to add you to a group.</p>'
        availability = await self.profile_availability(profiles)
        return _templates.get_template("spawn_form.html").render(
            profiles=profiles,
            availability=availability,
            note=self.form_note_text(),
            show_resources=self.show_resources,
            max_hours=max(p.max_hours for p in profiles),
            default_hours=profiles[0].default_hours,
        )

    def form_note_text(self) -> str:
        """The note above the profiles; backends may add what they enforce here."""
        return self.form_note

    @default("options_form")
    def _default_options_form(self):
        # A callable form is re-rendered on each visit, so availability stays current.
        return lambda spawner: spawner._render_form()

    def options_from_form(self, formdata):
        # Keep only our two fields; parse_user_options refuses anything odd, but dropping the
        # rest here keeps form noise (e.g. xsrf) out of the persisted user_options.
        return {k: v for k, v in formdata.items() if k in ("profile", "hours")}

    def _apply_profile_options(self, user_options):
        try:
            request = parse_user_options(
                user_options,
                self.load_profiles(),
                self.user_groups(),
                bool(getattr(self.user, "admin", False)),
            )
        except OptionsError as exc:
            raise web.HTTPError(400, str(exc), reason="Invalid spawn request") from None
        self.spawn_request = request
        # Persist the normalised form so a hub restart re-reads clean values only.
        self.user_options = request.as_user_options()
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
