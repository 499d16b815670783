"""Hub config for the learner side of the workshop service (#10), called by ``configurer.update_learner_api``.

Learner servers call the service with their own token (``learnerapi.py``): the token needs the scope
``access:services!service=academy``, and a server's token only gets scopes its user holds, so every user
holds it too (the service's trainer pages still answer 403 to learners). Servers find the service at
``$ACADEMY_SERVICE_URL``: ``JUPYTERHUB_API_URL`` is the hub's own port, which does not route to services.
The hub's home page shows a participant's announcements. Kept out of ``configurer.py`` so that stays
under 400 lines; like every updater it only sets values on the hub's ``Config``, and does nothing when
workshops are off.
"""
from __future__ import annotations

from traitlets.config import Config

from academy.configurer import state_path


def update_learner_side(c: Config, cfg: dict) -> None:
    ws = cfg["workshops"]
    if not ws["enabled"]:
        return
    from academy.workshop.announcements import hub_page_announcements
    from academy.workshop.learnerapi import SCOPE, service_url

    # Additive: the default "server" role's scopes (or what another updater set) plus ours.
    scopes = c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner else ["users:activity!user", "access:servers!server"]
    c.Spawner.server_token_scopes = [*scopes, SCOPE]
    c.JupyterHub.extra_user_scopes = {*c.JupyterHub.get("extra_user_scopes", set()), SCOPE}
    c.Spawner.environment = {**(c.Spawner.environment if "environment" in c.Spawner else {}), "ACADEMY_SERVICE_URL": service_url(cfg)}
    db = ws["db_url"] or "sqlite:///" + state_path(cfg, "workshops.sqlite")
    c.JupyterHub.template_vars = {**(c.JupyterHub.template_vars if "template_vars" in c.JupyterHub else {}),
                                  "academy_announcements": hub_page_announcements(db)}
