"""``update_slurm_accounting(c, cfg)``: the site config's ``slurm.accounting`` as JupyterHub config.

With accounting on, the Slurm backend uses ``BudgetedSlurmSpawner`` (a subclass, so every
``AcademySlurmSpawner`` setting still applies to it) with the budget groups and default account,
and the hub serves each user their own budget at ``/hub/api/academy/budget``
(:mod:`academy.slurm.budget_api`, for JupyterLab's status bar) under a custom scope that every user
and every server token holds (added to what other updaters set, never replacing it).
"""
from __future__ import annotations

from traitlets.config import Config

BUDGETED_SPAWNER = "academy.spawners.slurm.budgeted.BudgetedSlurmSpawner"


def update_slurm_accounting(c: Config, cfg: dict) -> None:
    accounting = cfg["slurm"].get("accounting") or {}
    if cfg["backend"] != "slurm" or not accounting.get("enabled"):
        return
    c.JupyterHub.spawner_class = BUDGETED_SPAWNER
    s = c.BudgetedSlurmSpawner
    s.budget_groups = {group: budget["account"] for group, budget in accounting.get("budgets", {}).items()}
    s.default_account = accounting.get("default_account", "")
    s.budget_refresh_seconds = float(accounting.get("refresh_seconds", 120))
    # The learner's server asks for its user's budget with its own token (academy.labtools.budget).
    from academy.slurm.budget_api import ROUTE, SCOPE, BudgetHandler

    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}),
                                  SCOPE: {"description": "Read your own team's GPU-hour budget (used, reserved, left)."}}
    c.JupyterHub.extra_user_scopes = {*c.JupyterHub.get("extra_user_scopes", set()), SCOPE}
    scopes = list(c.Spawner.server_token_scopes) if "server_token_scopes" in c.Spawner else ["access:servers!server", "users:activity!user"]
    c.Spawner.server_token_scopes = [*scopes, *([SCOPE] if SCOPE not in scopes else [])]
    c.JupyterHub.extra_handlers = [*c.JupyterHub.get("extra_handlers", []), (ROUTE, BudgetHandler)]
