"""Let members of a group this server is shared with in: JupyterHub 6.1 drops group shares from tokens.

The hub grants a group share to the group's members as *users* (``get_scopes_for(user)`` adds
``group.shared_with_me``), but when a request comes with a token (every request to a server: the
browser's OAuth token or an API token), ``get_scopes_for(token)`` adds only the owner's *direct* shares
(``owner.shared_with_me``), so the server's ``access:servers!server=…`` never reaches it and the server
answers 403 to the very trainer the learner let in (found by tests/hub/test_trainer_share.py).

Until JupyterHub counts group shares for tokens, this server does that one step itself, narrowly:
``HubOAuth.check_scopes`` (what jupyterhub-singleuser's identity provider asks) still answers from the
hub's scopes first; only when they lack access does it look at the hub's own answer about the caller
(their groups, from ``/hub/api/user``) and at ``ShareGroups``: the groups the hub says this server is
shared with (``GET /hub/api/shares/{owner}/{server}`` with the server's token), refreshed while any
exist and emptied at once by End access. Nothing else is trusted, and the owner's own access is unchanged.
"""
from __future__ import annotations

import time


class ShareGroups:
    """The groups the hub says this server is shared with, as last read (a set, replaced whole)."""

    def __init__(self, clock=time.monotonic) -> None:
        self.groups: frozenset[str] = frozenset()
        self.read_at = float("-inf")
        self.clock = clock

    def update(self, groups) -> None:
        self.groups = frozenset(groups)
        self.read_at = self.clock()

    def clear(self) -> None:
        self.update(())


def honour_group_shares(hub_auth, shares: ShareGroups, log=None) -> None:
    """Wrap ``hub_auth.check_scopes`` (an instance of JupyterHub's ``HubAuth``) for this server's group shares."""
    if getattr(hub_auth, "_academy_group_shares", None) is not None:
        return
    original = hub_auth.check_scopes
    seen: set = set()  # (user, groups) already logged

    def check_scopes(required_scopes, user):
        allowed = original(required_scopes, user)
        if allowed or not isinstance(user, dict) or user.get("kind", "user") != "user":
            return allowed
        via = shares.groups & set(user.get("groups") or ())
        if not via:
            return allowed
        first = (user.get("name"), shares.groups) not in seen
        if log and first:
            seen.add((user.get("name"), shares.groups))
            log.info("academy: letting %s in through the share with group %s", user.get("name"), sorted(via)[0])
        return set(required_scopes)

    hub_auth.check_scopes = check_scopes
    hub_auth._academy_group_shares = shares
