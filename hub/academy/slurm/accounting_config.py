"""``update_slurm_accounting(c, cfg)``: the site config's ``slurm.accounting`` as JupyterHub config.

With accounting on, the Slurm backend uses ``BudgetedSlurmSpawner`` (a subclass, so every
``AcademySlurmSpawner`` setting still applies to it) with the budget groups and default account.
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
