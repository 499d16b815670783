"""Hub config for "Ask a trainer": learners may share their own server, and their server's token may too.

One pure ``update_<area>(c, cfg)`` function, listed last in ``configurer.UPDATERS`` (it adds to the
server token scopes and the user scopes that other areas may have set). Kept apart from
``configurer.py`` only for its size limit; tested on a bare ``Config()`` as the others are.
"""
from __future__ import annotations

from traitlets.config import Config

# Sharing one's own server with a group by name (JupyterHub 5+ sharing API; see its sharing tutorial).
SHARE_SCOPES = ["shares!user", "read:groups:name"]
# JupyterHub's own `server` role: what a server token holds when nothing else is asked for.
DEFAULT_SERVER_TOKEN_SCOPES = ["access:servers!server", "users:activity!user"]


def update_trainer_access(c: Config, cfg: dict) -> None:
    """Ask a trainer (academy.labtools.help): a server's own token may share that server with a group.

    The hub gives a server token only scopes its user holds, so every user holds them too
    (see the README's "Ask a trainer" for what that lets a learner do, and why it is safe).
    """
    ws = cfg["workshops"]
    if not ws["enabled"]:
        return
    env = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    c.Spawner.environment = {**env, "ACADEMY_TRAINER_ACCESS": ws["trainer_access"]}
    scopes = list(c.Spawner.server_token_scopes) if "server_token_scopes" in c.Spawner else list(DEFAULT_SERVER_TOKEN_SCOPES)
    c.Spawner.server_token_scopes = [*scopes, *(s for s in SHARE_SCOPES if s not in scopes)]
    # Added to JupyterHub's default user role, as update_learner_api does: a "user" role in load_roles
    # would make the hub ignore extra_user_scopes (and so the other area's scope).
    c.JupyterHub.extra_user_scopes = {*c.JupyterHub.get("extra_user_scopes", set()), *SHARE_SCOPES}
