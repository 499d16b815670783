"""Strict parsing of spawn requests: only a known profile slug and hours within bounds get through.

batchspawner copies ``user_options`` into batch-script variables, so anything a user
posts (form or REST API) is reduced here to a ``SpawnRequest`` of two vetted values,
and everything else is refused with a message the user can act on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from academy.profiles import Profile

ALLOWED_KEYS = frozenset({"profile", "hours"})


class OptionsError(ValueError):
    """A spawn request was refused; the message is shown to the user (HTTP 400)."""


@dataclass(frozen=True)
class SpawnRequest:
    """A vetted spawn request: which profile and for how many hours."""

    profile: Profile
    hours: int

    def as_user_options(self) -> dict[str, Any]:
        return {"profile": self.profile.slug, "hours": self.hours}


def _single(value: Any, key: str) -> Any:
    """Form data arrives as lists of strings; the API may send scalars. Accept one value only."""
    if isinstance(value, list):
        if len(value) != 1:
            raise OptionsError(f"{key}: expected exactly one value")
        value = value[0]
    return value


def parse_hours(value: Any, profile: Profile) -> int:
    if isinstance(value, bool):
        raise OptionsError("hours: must be a whole number")
    if isinstance(value, str):
        text = value.strip()
        # str.isdigit() also accepts "３", "٣" and "²" (which int() then rejects): ASCII digits only.
        if not (text.isascii() and text.isdigit()) or len(text) > 3:
            raise OptionsError("hours: must be a whole number")
        value = int(text)
    if not isinstance(value, int):
        raise OptionsError("hours: must be a whole number")
    if not 1 <= value <= profile.max_hours:
        raise OptionsError(f"hours: {profile.display_name} allows 1 to {profile.max_hours} hours, not {value}")
    return value


def preferred_profile(allowed: Sequence[Profile], user_groups: set[str] | frozenset[str]) -> Profile:
    """The profile to preselect: the most specific one made for the user's groups, else the first allowed.

    A profile limited to groups the user is in was put there for them (the smallest such set of
    groups is the most specific; ties go to the file's order). Admins, allowed everything without
    being in the groups, get the first.
    """
    mine = [p for p in allowed if p.groups & set(user_groups)]
    return min(mine, key=lambda p: len(p.groups)) if mine else allowed[0]


def parse_user_options(
    options: Mapping[str, Any] | None,
    profiles: Sequence[Profile],
    user_groups: set[str] | frozenset[str],
    is_admin: bool = False,
) -> SpawnRequest:
    """Turn raw ``user_options`` into a ``SpawnRequest`` or raise ``OptionsError``.

    An empty request (a plain ``POST /users/NAME/server``) gets the ``preferred_profile``,
    with its default hours: that is what the form preselects too.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - ALLOWED_KEYS)
    if unknown:
        raise OptionsError(f"unknown option(s): {', '.join(map(str, unknown))[:200]} (only 'profile' and 'hours' are accepted)")
    allowed = [p for p in profiles if p.allows(user_groups, is_admin)]
    if not allowed:
        raise OptionsError("no resource profile is available to your account; ask a trainer to add you to a group")
    slug = _single(options.get("profile", preferred_profile(allowed, user_groups).slug), "profile")
    if not isinstance(slug, str):
        raise OptionsError("profile: must be a profile name")
    by_slug = {p.slug: p for p in profiles}
    profile = by_slug.get(slug)
    if profile is None:
        raise OptionsError(f"profile: unknown profile {slug[:40]!r}; choose one of: {', '.join(p.slug for p in allowed)}")
    if profile not in allowed:
        raise OptionsError(f"profile: {profile.display_name} is limited to the groups {', '.join(sorted(profile.groups))}")
    hours = parse_hours(_single(options.get("hours", profile.default_hours), "hours"), profile)
    return SpawnRequest(profile=profile, hours=hours)
