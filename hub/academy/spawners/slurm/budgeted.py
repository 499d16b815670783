"""The Slurm spawner with Slurm accounting: the learner's account, its GPU budget on the form, and the budget check.

Used instead of ``AcademySlurmSpawner`` when the site config's ``slurm.accounting.enabled`` is true
(academy.slurm.accounting_config). Each learner's jobs run under one Slurm account: their budget
group's account (``slurm.accounting.budgets``), else the profile's, else the default account. The
cluster enforces associations, so before the first sbatch the hub registers the learner's Unix user in
that account (``sacctmgr -i add user``) unless Slurm already lists the pair. A spawn whose GPUs × hours
exceed what the account has left (counting time reserved by running jobs) is refused before sbatch.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, replace

from traitlets import Bool, Dict, Float, Unicode, default

from academy.slurm import budgets, commands
from academy.spawners.options import SpawnRequest
from academy.spawners.picker import SpawnRefused
from academy.spawners.slurm.messages import JobFailed
from academy.spawners.slurm.spawner import AcademySlurmSpawner

# (account, unix user) pairs this hub process registered: sacctmgr runs once per pair.
_REGISTERED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class AccountChoice:
    """The Slurm account a learner's job is charged to, and whether a hub group gives it a budget."""

    account: str
    budgeted: bool


class BudgetedSlurmSpawner(AcademySlurmSpawner):
    """``AcademySlurmSpawner`` for a cluster with ``AccountingStorageEnforce=associations,limits,safe``."""

    budget_groups = Dict(
        config=True,
        help="Hub group -> Slurm account of its GPU budget (slurm.accounting.budgets); a member's jobs run under it.",
    )
    default_account = Unicode(
        "", config=True, help="Slurm account for users in no budget group whose profile names none; empty: Slurm's default.",
    )
    budget_refresh_seconds = Float(
        120.0, config=True, help="Seconds the GPU-budget figures (one sshare call for all accounts) are reused.",
    )
    register_users = Bool(
        True, config=True, help="Add the learner's Unix user to their Slurm account (sacctmgr -i add user) before the first sbatch.",
    )

    @property
    def budget_reader(self) -> budgets.BudgetReader:
        return budgets.shared_reader(self.budget_refresh_seconds, self.query_timeout)

    def account_choice(self, profile) -> AccountChoice:
        groups = self.user_groups()
        for group in sorted(self.budget_groups):
            if group in groups:
                return AccountChoice(self.budget_groups[group], True)
        return AccountChoice(profile.account or self.default_account if profile else self.default_account, False)

    # -- the budget check: in the options hook, so a refusal is a 400 with the message on the form ----
    @default("apply_user_options")
    def _default_apply_user_options(self):
        return type(self)._apply_with_budget

    async def _apply_with_budget(self, user_options):
        previous = dict(self._accepted_user_options)
        self._apply_profile_options(user_options)
        request = self.spawn_request
        verdict = await self.budget_verdict(request)
        if not verdict.allowed:
            # As for any refused request (picker): the stored options go back to the last accepted ones.
            self._accepted_user_options = previous
            self._store_user_options(previous)
            self.log.warning("Refused spawn for %s: %s", self._log_name, verdict.message)
            raise SpawnRefused(verdict.message)

    async def budget_verdict(self, request: SpawnRequest) -> budgets.Verdict:
        gpus = request.profile.gpus.count if request.profile.gpus else 0
        choice = self.account_choice(request.profile)
        snapshot = await self.budget_reader.snapshot() if gpus else self.budget_reader.cached
        return budgets.judge(snapshot, choice.account, choice.budgeted, gpus, request.hours)

    # -- account in the batch script, association before sbatch -----------------------------------
    def batch_script_text(self, request: SpawnRequest) -> str:
        account = self.account_choice(request.profile).account
        if account:
            request = replace(request, profile=replace(request.profile, account=commands.account(account)))
        return super().batch_script_text(request)

    async def submit_batch_script(self) -> str:
        request = self.spawn_request
        if request is not None:
            # Checked again at submit time: figures may have changed since the form was posted.
            verdict = await self.budget_verdict(request)
            if not verdict.allowed:
                raise JobFailed(verdict.message)
            account = self.account_choice(request.profile).account
            if account and self.register_users:
                await self.ensure_association(account)
        job_id = await super().submit_batch_script()
        if request is not None and request.profile.gpus:
            self.budget_reader.note_reserved(self.account_choice(request.profile).account,
                                             request.profile.gpus.count * request.hours * 60)
        return job_id

    async def ensure_association(self, account: str) -> None:
        user = self.unix_user
        key = (commands.account(account), user)
        if key in _REGISTERED:
            return
        snapshot = self.budget_reader.cached
        if snapshot is not None and snapshot.has_association(account, user):
            _REGISTERED.add(key)
            return
        result = await self.run_command(commands.hub_command(
            "sacctmgr", "-i", "add", "user", user, f"account={account}"))
        text = (result.stdout + result.stderr).lower()
        # sacctmgr says "Nothing new added" (exit 1) both for an existing pair and for a missing account.
        if "doesn't exist" in text or "does not exist" in text:
            raise JobFailed(f"Your Slurm account {account!r} does not exist; ask an administrator to run "
                            "'academy budgets sync'.")
        if result.ok or "nothing new added" in text:
            _REGISTERED.add(key)
            self.log.info("Slurm association %s/%s ready", account, user)
            return
        raise JobFailed(f"Your Slurm account {account!r} could not be set up for you, because Slurm accounting "
                        f"(slurmdbd) did not answer ({result.message}). Try again in a few minutes.")

    # -- the form -----------------------------------------------------------------------------------
    async def _render_form(self, **link) -> str:
        form = await super()._render_form(**link)
        note = await self.budget_note()
        if note:
            form = f'<p class="alert alert-info academy-budget" role="status">{html.escape(note)}</p>\n{form}'
        return form

    async def budget_note(self) -> str:
        """GPU-hours used and left for the learner's account, from the cached figures."""
        choice = self.account_choice(None)
        if not choice.budgeted:
            return ""
        snapshot = await self.budget_reader.snapshot()
        if not snapshot.available:
            return f"GPU budgets are unavailable right now ({snapshot.error}): GPU profiles cannot start until they are back."
        usage = snapshot.accounts.get(choice.account)
        if usage is None:
            return (f"GPU budgets are unavailable for your team: its Slurm account {choice.account!r} does not exist. "
                    "Ask an administrator to run 'academy budgets sync'.")
        return budgets.describe(usage)
