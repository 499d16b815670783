"""The course roster: students are the members of a JupyterHub group, trainers its instructors.

The group is read through the hub's REST API (``GET /hub/api/groups/<name>``) with a token that may
read groups.  Instructors are listed in the group's ``properties["instructors"]`` (set by an admin);
every other member is a student.  Offline, a roster can be given directly (``--students a,b``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import requests

from academy.course.layout import check_id


@dataclass
class Roster:
    """Who takes the course and who grades it."""

    students: list[str] = field(default_factory=list)
    instructors: list[str] = field(default_factory=list)


class RosterError(RuntimeError):
    """The hub could not be asked, or answered something unusable."""


def from_hub(hub_url: str, group: str, token: str | None = None, timeout: float = 10.0) -> Roster:
    token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        raise RosterError("reading a hub group needs an API token ($JUPYTERHUB_API_TOKEN)")
    url = f"{hub_url.rstrip('/')}/hub/api/groups/{requests.utils.quote(group, safe='')}"
    try:
        reply = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=timeout)
    except requests.RequestException as exc:
        raise RosterError(f"cannot reach the hub at {hub_url}: {exc}") from None
    if reply.status_code != 200:
        raise RosterError(f"hub answered {reply.status_code} for group {group!r}")
    data = reply.json()
    if "users" not in data:  # every user may read group names (Ask a trainer): a name is not a roster
        raise RosterError(f"hub answered without the members of group {group!r}: this token may read its name "
                          "only (reading members needs read:groups)")
    instructors = [check_id(u, "instructor") for u in (data.get("properties") or {}).get("instructors", [])]
    students = sorted(check_id(u, "student id") for u in data.get("users", []) if u not in instructors)
    return Roster(students=students, instructors=sorted(instructors))


def from_list(text: str) -> Roster:
    return Roster(students=sorted({check_id(s.strip(), "student id") for s in text.split(",") if s.strip()}))
