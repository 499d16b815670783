"""``GET /hub/api/academy/budget``: the calling user's own GPU budget, from the hub process's one cached ``sshare``.

A JupyterHub ``extra_handlers`` API handler (``update_slurm_accounting`` installs it), so it uses the
hub's own authentication: the learner server's ``JUPYTERHUB_API_TOKEN`` (or the user's cookie or token)
identifies the user, and the token needs the custom scope ``custom:academy-budget:read``, which every
user and every server token holds. The account comes from the user's own spawner
(``BudgetedSlurmSpawner.account_choice``: their budget group), never from the request: query
parameters and paths are ignored, so no caller can read another team's figures.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from academy.slurm import budgets

SCOPE = "custom:academy-budget:read"
ROUTE = r"/api/academy/budget"


@dataclass(frozen=True)
class BudgetAnswer:
    """What a learner may know of their own account: ``status`` is 'ok', 'unavailable' or 'none' (no budget)."""

    status: str
    account: str = ""
    limit_gpu_hours: float | None = None
    used_gpu_hours: float | None = None
    reserved_gpu_hours: float | None = None
    left_gpu_hours: float | None = None
    refresh_seconds: float = 120.0
    message: str = ""


def answer_for(choice, snapshot: budgets.BudgetSnapshot | None, refresh_seconds: float) -> BudgetAnswer:
    """The user's account's figures from the snapshot; nothing of any other account ever goes in."""
    if choice is None or not choice.budgeted:
        return BudgetAnswer("none", refresh_seconds=refresh_seconds, message="Your account has no GPU budget.")
    if snapshot is None or not snapshot.available:
        why = snapshot.error if snapshot else "no figures yet"
        return BudgetAnswer("unavailable", choice.account, refresh_seconds=refresh_seconds,
                            message=f"GPU budgets are unavailable right now ({why}).")
    usage = snapshot.accounts.get(choice.account)
    if usage is None:
        return BudgetAnswer("unavailable", choice.account, refresh_seconds=refresh_seconds,
                            message=f"GPU budgets are unavailable: Slurm account {choice.account!r} does not exist.")
    if usage.limit_gpu_minutes is None:
        return BudgetAnswer("none", choice.account, used_gpu_hours=round(usage.used_gpu_minutes / 60, 2),
                            refresh_seconds=refresh_seconds, message=budgets.describe(usage))
    return BudgetAnswer(
        "ok", usage.account, limit_gpu_hours=round(usage.limit_gpu_minutes / 60, 2),
        used_gpu_hours=round(usage.used_gpu_minutes / 60, 2), reserved_gpu_hours=round(usage.reserved_gpu_minutes / 60, 2),
        left_gpu_hours=round((usage.left or 0) / 60, 2), refresh_seconds=refresh_seconds, message=budgets.describe(usage))


class BudgetHandler(APIHandler):
    """Only ``self.current_user``'s own account: the request's arguments are never read."""

    async def get(self):
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "only a user (or their server) may ask for their own GPU budget")
        if SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, f"this token lacks the scope {SCOPE}")
        spawner = user.spawner
        choose = getattr(spawner, "account_choice", None)
        if choose is None:
            raise web.HTTPError(404, "GPU budgets are not enabled on this hub")
        choice = choose(None)
        reader = spawner.budget_reader
        snapshot = await reader.snapshot() if choice.budgeted else None
        self.set_header("Cache-Control", "no-store")
        self.finish(asdict(answer_for(choice, snapshot, reader.refresh_seconds)))
