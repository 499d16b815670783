"""The trainer service's GPU budgets page: usage per Slurm account, for admins and trainers.

``GET budgets`` shows every account of ``slurm.accounting.budgets`` (and any other account Slurm
reports) with its hub group, GPU-hours used, reserved by running jobs, the limit and what is left.
The figures come from the service's own ``BudgetReader`` (one ``sshare`` call per refresh, like the
hub's), so reloading the page costs Slurm nothing. Participants get 403, as on the audit page.
"""
from __future__ import annotations

from dataclasses import dataclass
from tornado import web

from academy.workshop import actions
from academy.workshop.service import BaseHandler


@dataclass(frozen=True)
class BudgetRow:
    """One account as the page shows it, in GPU-hours."""

    account: str
    group: str
    used: str
    reserved: str
    limit: str
    left: str
    missing: bool = False


def rows(cfg: dict, snapshot) -> list[BudgetRow]:
    from academy.slurm.budgets import hours

    groups = {b["account"]: g for g, b in cfg["slurm"]["accounting"]["budgets"].items()}
    out = []
    for account in sorted(set(groups) | set(snapshot.accounts)):
        usage = snapshot.accounts.get(account)
        if usage is None:
            out.append(BudgetRow(account, groups.get(account, ""), "", "", "", "", missing=True))
            continue
        limit = hours(usage.limit_gpu_minutes) if usage.limit_gpu_minutes is not None else "no limit"
        left = hours(usage.left) if usage.left is not None else ""
        out.append(BudgetRow(account, groups.get(account, ""), hours(usage.used_gpu_minutes),
                             hours(usage.reserved_gpu_minutes), limit, left))
    return out


class BudgetsHandler(BaseHandler):
    async def get(self):
        from academy.slurm.budgets import shared_reader

        if not actions.may_use_service(self.hub_user, self.ctx.cfg):
            raise web.HTTPError(403, "GPU budgets are for trainers and admins")
        accounting = self.ctx.cfg["slurm"]["accounting"]
        if self.ctx.cfg["backend"] != "slurm" or not accounting["enabled"]:
            return self.render_page("budgets.html", rows=[], error="Slurm accounting is off (slurm.accounting.enabled).")
        snapshot = await shared_reader(float(accounting["refresh_seconds"]), 30.0).snapshot()
        self.render_page("budgets.html", rows=rows(self.ctx.cfg, snapshot) if snapshot.available else [],
                         error="" if snapshot.available else f"GPU budgets are unavailable: {snapshot.error}.")


def routes() -> list[tuple[str, type]]:
    return [("budgets", BudgetsHandler)]
