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

from academy.spawners.options import ALLOWED_KEYS, OptionsError

PREFIX = "opt-"
# Keys a link may carry besides its options; anything else is refused, never silently ignored.
LINK_KEYS = frozenset({"next"})
# A lesson path as the builder accepts it: relative, plain names, no dot segments.
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. +@-]*$")


@dataclass(frozen=True)
class LinkQuery:
    """A link's raw options (``{"profile": "cpu", "hours": "2"}``, still to be vetted) and its requested ``next``."""

    options: dict[str, str]
    next: str


def is_link(query: Mapping[str, Sequence[str]]) -> bool:
    """Does this ``/hub/spawn`` query carry ``opt-`` options (a one-click link)?"""
    return any(key.startswith(PREFIX) for key in query)


def parse_link(query: Mapping[str, Sequence[str]]) -> LinkQuery:
    """The link's options and ``next``; raises ``OptionsError`` for a repeated or unknown key.

    The values are not judged here: the spawn form's parser does that, with its messages.
    """
    options: dict[str, str] = {}
    next_url = ""
    for key, values in query.items():
        if len(values) != 1:
            raise OptionsError(f"{key[:40]}: given {len(values)} times in the link; give it once")
        if key.startswith(PREFIX):
            name = key[len(PREFIX):]
            if name not in ALLOWED_KEYS:
                raise OptionsError(
                    f"unknown link option {key[:40]!r}; a link may set only opt-profile and opt-hours")
            options[name] = values[0]
        elif key == "next":
            next_url = values[0]
        else:
            raise OptionsError(f"unknown link parameter {key[:40]!r}; a link may carry opt-profile, opt-hours and next")
    return LinkQuery(options=options, next=next_url)


def safe_next(next_url: str, user_prefix: str, hub_prefix: str) -> str:
    """``next`` if it is a path on the user's own server, else ``""`` (dropped).

    ``user_prefix`` is the user's server path (``/user/ann/``), ``hub_prefix`` the hub's (``/hub/``):
    ``/hub/user-redirect/REST`` (what the link builder writes, for any learner) becomes
    ``/user/ann/REST``. Refused: another host or scheme, another user's server, dot segments
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
    redirect = hub_prefix + "user-redirect/"
    if path.startswith(redirect):
        path = user_prefix + path[len(redirect):]
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


def build_link(hub_url: str, profile: str, hours: int, path: str) -> str:
    """The link for vetted values: ``HUB/hub/spawn?opt-profile=..&opt-hours=..&next=/hub/user-redirect/lab/tree/PATH``.

    ``user-redirect`` makes one link work for every learner: the hub puts in the name of whoever opens it.
    """
    base = urlsplit(hub_url.rstrip("/"))
    prefix = base.path.rstrip("/")
    next_url = f"{prefix}/hub/user-redirect/lab/tree/{quote(path)}"
    query = urlencode({"opt-profile": profile, "opt-hours": str(hours), "next": next_url})
    return urlunsplit((base.scheme, base.netloc, f"{prefix}/hub/spawn", query, ""))
