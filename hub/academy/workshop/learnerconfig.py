"""Hub config for the learner side of the workshop service: announcements on the home page, the server token's scope.

Called by ``configurer.update_announcements`` (kept here so ``configurer.py`` stays under 400 lines);
like every updater it only sets values on the hub's ``Config``, and does nothing when workshops are off.
"""
from __future__ import annotations

from traitlets.config import Config

from academy.configurer import state_path


def update_learner_side(c: Config, cfg: dict) -> None:
    ws = cfg["workshops"]
    if not ws["enabled"]:
        return
    from academy.workshop.announcements import hub_page_announcements

    db = ws["db_url"] or "sqlite:///" + state_path(cfg, "workshops.sqlite")
    c.JupyterHub.template_vars.update({"academy_announcements": hub_page_announcements(db)})
    # STAND-IN for helper A's part of issue #10 (learner servers call the service with their own token):
    # when merging, keep A's version of these three settings and drop this block.
    hub = cfg["hub"]
    host = hub["ip"] if hub["ip"] not in ("0.0.0.0", "") else "127.0.0.1"
    public = ws.get("public_url") or f"http://{host}:{hub['port']}{hub['base_url']}"
    env = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    env.setdefault("ACADEMY_SERVICE_URL", public.rstrip("/") + "/services/academy/")
    c.Spawner.environment = env
    scopes = list(c.Spawner.server_token_scopes) if "server_token_scopes" in c.Spawner else ["users:activity!user", "access:servers!server"]
    c.Spawner.server_token_scopes = [*scopes, "access:services!service=academy"]
    # A server token only gets the scopes its user holds; the service still refuses non-trainers every page.
    c.JupyterHub.load_roles = [*c.JupyterHub.get("load_roles", []), {
        "name": "user", "description": "Standard user privileges, and the workshop service's learner API",
        "scopes": ["self", "access:services!service=academy"]}]
