"""One-click links, the pure part: read a link's query, keep only a safe ``next``, and build links.

A link is ``/hub/spawn?opt-profile=SLUG&opt-hours=N&next=/hub/user-redirect/lab/tree/PATH``. Its
options go through the spawn form's own checks (:func:`academy.spawners.options.parse_user_options`);
this module only refuses what the form can never receive (a key twice, an unknown key) and decides
which ``next`` may be followed: a path on the learner's own server, nothing else.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from academy.spawners.options import OptionsError

PREFIX = "opt-"
# Query keys JupyterHub keeps for itself (never user options); every other key is an option to vet.
RESERVED = frozenset({"next", "display_name"})
# A lesson path as the builder accepts it: relative, plain names, no dot segments.
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. +@-]*$")


@dataclass(frozen=True)
class LinkQuery:
    """A link's raw options (``{"profile": "cpu", "hours": "2"}``, still to be vetted) and its requested ``next``."""

    options: dict[str, str]
    next: str


def is_link(query: Mapping[str, Sequence[str]]) -> bool:
    """Does this spawn GET carry user options (``opt-`` keys, or JupyterHub's older bare keys)?

    JupyterHub would start a server from either; a link only ever preselects the form.
    """
    return any(key not in RESERVED for key in query)


def parse_link(query: Mapping[str, Sequence[str]]) -> LinkQuery:
    """The link's options and ``next``; raises ``OptionsError`` for a key given twice.

    ``opt-`` keys lose their prefix (JupyterHub's rule); bare keys next to them are kept as options
    too, so the form's parser refuses them by name instead of JupyterHub silently ignoring them.
    The values are not judged here: the spawn form's parser does that, with its messages.
    """
    for key, values in query.items():
        if len(values) != 1:
            raise OptionsError(f"{key[:40]}: given {len(values)} times in the link; give it once")
    options = {key[len(PREFIX):]: values[0] for key, values in query.items() if key.startswith(PREFIX)}
    for key, values in query.items():
        if key.startswith(PREFIX) or key in RESERVED:
            continue
        if key in options:
            raise OptionsError(f"{key[:40]}: given twice in the link (as {key[:40]} and {PREFIX}{key[:40]}); give it once")
        options[key] = values[0]
    return LinkQuery(options=options, next=(query.get("next") or [""])[0])


def safe_next(next_url: str, user_prefix: str, hub_prefix: str) -> str:
    """``next`` if it is a path on the user's own server, else ``""`` (dropped).

    ``user_prefix`` is the user's server path (``/user/ann/``), ``hub_prefix`` the hub's (``/hub/``):
    ``/hub/user-redirect/REST`` (what the link builder writes, for any learner) and
    ``/hub/user/ann/REST`` (JupyterHub's own "start your server" links) become ``/user/ann/REST``. Refused: another host or scheme, another user's server, dot segments
    (plain or percent-encoded: a browser would resolve ``/user/ann/../bob/`` to Bob's server),
    backslashes, doubled slashes and control characters.
    """
    # Checked before urlsplit, which silently strips tabs and newlines.
    if not next_url or len(next_url) > 2000 or any(ord(ch) < 32 or ord(ch) == 127 for ch in next_url):
        return ""
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc or parts.fragment:
        return ""
    path = parts.path
    base = hub_prefix[: -len("hub/")] if hub_prefix.endswith("/hub/") else "/"
    for alias in (hub_prefix + "user-redirect/", hub_prefix + user_prefix[len(base):]):
        if path.startswith(alias):
            path = user_prefix + path[len(alias):]
            break
    if not path.startswith(user_prefix):
        return ""
    for text in (path, unquote(path), unquote(unquote(path)), parts.query):
        if "\\" in text or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            return ""
    for text in (path, unquote(path), unquote(unquote(path))):
        if "//" in text or any(seg in (".", "..") for seg in text.split("/")):
            return ""
    return urlunsplit(("", "", path, parts.query, ""))


def check_lesson_path(path: str) -> str:
    """A notebook or folder path inside the home (``lessons/01.ipynb``) for a link; raises ``OptionsError``."""
    parts = path.strip().strip("/").split("/")
    if not path.strip() or path.startswith("/") or not all(_PATH_PART.match(p) and p not in (".", "..") for p in parts):
        raise OptionsError(
            f"path: {path[:80]!r} must be relative to the home folder, with plain names (letters, digits, _ . - + @, spaces) and no '..'")
    return "/".join(parts)


#: The JupyterLab query parameter that opens "New project" with one template chosen (labextension projects.ts).
TEMPLATE_PARAM = "academy-template"


def build_link(hub_url: str, profile: str, hours: int, path: str = "", template: str = "") -> str:
    """The link for vetted values: ``HUB/hub/spawn?opt-profile=..&opt-hours=..&next=/hub/user-redirect/lab/tree/PATH``,
    or, for a project template, ``next=/hub/user-redirect/lab?academy-template=SLUG`` (JupyterLab then opens
    "New project" with that template chosen: the learner names the folder, nothing is made unasked).

    ``user-redirect`` makes one link work for every learner: the hub puts in the name of whoever opens it.
    """
    base = urlsplit(hub_url.rstrip("/"))
    prefix = base.path.rstrip("/")
    if template:
        next_url = f"{prefix}/hub/user-redirect/lab?{urlencode({TEMPLATE_PARAM: template})}"
    else:
        next_url = f"{prefix}/hub/user-redirect/lab/tree/{quote(path)}"
    query = urlencode({"opt-profile": profile, "opt-hours": str(hours), "next": next_url})
    return urlunsplit((base.scheme, base.netloc, f"{prefix}/hub/spawn", query, ""))
