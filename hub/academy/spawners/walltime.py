"""More time for a running server, within its profile's maximum: the rule, shared by both backends.

The hub decides, never the learner: ``walltime_api`` hands a request from the server's own token to
``extend_walltime``, which checks the profile's ``hours.max`` and asks the backend to move the end
(``apply_walltime``: ``scontrol update`` on Slurm, the hub's own timer locally).
"""
from __future__ import annotations

import asyncio

from traitlets import HasTraits, Integer

from academy.profiles import Profile
from academy.spawners.options import SpawnRequest


class WalltimeRefused(Exception):
    """More time was refused; ``status`` (400/409/502) and the message go back to the learner."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class WalltimeMixin(HasTraits):
    """Mixed in before ``ProfilePickerMixin``: tracks the hours a server has and extends them."""

    walltime_hours = Integer(0, help="Hours the running server has now: chosen on the form, plus any More time.")

    _walltime_lock: asyncio.Lock | None = None

    def apply_spawn_request(self, request: SpawnRequest) -> None:
        super().apply_spawn_request(request)
        self.walltime_hours = request.hours
        self.environment = {**self.environment, "ACADEMY_WALLTIME_MAX_HOURS": str(request.profile.max_hours)}

    def walltime_profile(self) -> Profile | None:
        """The running server's profile (after a hub restart: from its stored options)."""
        request = getattr(self, "spawn_request", None)
        if request is not None:
            return request.profile
        slug = (self.user_options or {}).get("profile")
        return next((p for p in self.load_profiles() if p.slug == slug), None)

    def current_hours(self) -> int:
        return self.walltime_hours or int((self.user_options or {}).get("hours") or 0)

    def check_extension(self, more: int) -> tuple[Profile, int]:
        """The profile and the new total, or ``WalltimeRefused`` saying what is allowed."""
        profile = self.walltime_profile()
        hours = self.current_hours()
        if profile is None or not hours:
            raise WalltimeRefused(409, "this server's profile is no longer known; start a new server")
        total = hours + more
        if total > profile.max_hours:
            room = profile.max_hours - hours
            allowed = f"at most {room} more hour(s)" if room > 0 else "no more time"
            raise WalltimeRefused(
                400, f"{profile.display_name} allows at most {profile.max_hours} h per session; this session has "
                     f"{hours} h, so you can ask for {allowed}. Save your work and start a new session later.")
        return profile, total

    async def extend_walltime(self, more: int) -> dict:
        """Give the running server ``more`` hours; returns the new ``hours``, ``max_hours`` and ``end``."""
        if self._walltime_lock is None:
            self._walltime_lock = asyncio.Lock()
        async with self._walltime_lock:  # two clicks must not both pass the maximum check
            profile, total = self.check_extension(more)
            end = await self.apply_walltime(total)
            self.walltime_hours = total
            save = getattr(self, "_save_state", None)
            if save is not None:  # Slurm jobs outlive a hub restart: keep the new hours with the job id
                save()
        self.log.info("More time for %s: %d h now (profile %s allows %d h)", self.user.name, total, profile.slug,
                      profile.max_hours)
        return {"hours": total, "max_hours": profile.max_hours, "end": end}

    async def apply_walltime(self, total_hours: int) -> float | None:
        """Backend part: make the session last ``total_hours`` from its start; the new end, if known."""
        raise WalltimeRefused(409, "this backend cannot extend a running server")

    def get_state(self):
        state = super().get_state()
        if self.walltime_hours:
            state["walltime_hours"] = self.walltime_hours
        return state

    def load_state(self, state):
        super().load_state(state)
        self.walltime_hours = int(state.get("walltime_hours") or 0)
