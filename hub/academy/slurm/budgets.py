"""GPU-hour budgets from Slurm accounting: one cached ``sshare`` call per refresh for every account.

A team's budget is its Slurm account's ``GrpTRESMins=gres/gpu=N`` limit. One ``sshare --all`` answer
holds, per association, that limit, the GPU-minutes used so far (``GrpTRESRaw``, which never decays
on a cluster with ``PriorityDecayHalfLife=0`` and ``PriorityUsageResetPeriod=NONE``) and the GPU-minutes
reserved by running jobs (``TRESRunMins``: GPUs × the time left before their walltime), the same
figure Slurm's ``AccountingStorageEnforce=safe`` counts. So the hub makes one call per refresh,
however many users look at the form, and the figures it shows are the ones Slurm enforces.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from academy.slurm import commands

log = logging.getLogger("academy.slurm")

SSHARE_FORMAT = "Account,User,GrpTRESMins,GrpTRESRaw,TRESRunMins"
GPU_TRES = "gres/gpu"


@dataclass(frozen=True)
class AccountUsage:
    """One Slurm account's GPU budget in GPU-minutes; ``limit_gpu_minutes`` is None when it has no limit."""

    account: str
    limit_gpu_minutes: float | None
    used_gpu_minutes: float
    reserved_gpu_minutes: float

    @property
    def left(self) -> float | None:
        """GPU-minutes a new job may still reserve (never below 0); None without a limit."""
        if self.limit_gpu_minutes is None:
            return None
        return max(0.0, self.limit_gpu_minutes - self.used_gpu_minutes - self.reserved_gpu_minutes)


@dataclass(frozen=True)
class BudgetSnapshot:
    """Every account's usage as of one ``sshare`` call; ``error`` says why there are no figures."""

    accounts: dict[str, AccountUsage] = field(default_factory=dict)
    associations: frozenset[tuple[str, str]] = frozenset()  # (account, user) pairs Slurm knows
    checked: float = 0.0  # time.monotonic() of the call
    error: str = ""

    @property
    def available(self) -> bool:
        return not self.error

    def has_association(self, account: str, user: str) -> bool:
        return (account, user) in self.associations


def _tres(text: str, name: str = GPU_TRES) -> float | None:
    """The value of ``name`` in a TRES list such as ``cpu=4,gres/gpu=120``; None when absent."""
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        if key == name:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def parse_sshare(stdout: str, checked: float = 0.0) -> BudgetSnapshot:
    """``sshare --noheader --parsable2 --all --format=SSHARE_FORMAT``: account lines carry the totals, user lines the associations."""
    accounts: dict[str, AccountUsage] = {}
    associations: set[tuple[str, str]] = set()
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 5:
            continue
        name, user = parts[0].strip(), parts[1].strip()
        if not name or not commands.ACCOUNT_RE.match(name):
            continue
        if user:
            associations.add((name, user))
            continue
        accounts[name] = AccountUsage(
            account=name,
            limit_gpu_minutes=_tres(parts[2]),
            used_gpu_minutes=_tres(parts[3]) or 0.0,
            reserved_gpu_minutes=_tres(parts[4]) or 0.0,
        )
    return BudgetSnapshot(accounts, frozenset(associations), checked)


def hours(minutes: float) -> str:
    """GPU-minutes as the GPU-hours a person reads, e.g. 90 -> '1.50'; small figures keep two decimals."""
    value = minutes / 60
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def describe(usage: AccountUsage) -> str:
    """One line for the spawn form."""
    if usage.limit_gpu_minutes is None:
        return f"Slurm account {usage.account}: {hours(usage.used_gpu_minutes)} GPU-hours used (no budget limit)."
    reserved = f", {hours(usage.reserved_gpu_minutes)} reserved by running servers and jobs" if usage.reserved_gpu_minutes else ""
    return (f"GPU budget of {usage.account}: {hours(usage.used_gpu_minutes)} of {hours(usage.limit_gpu_minutes)} "
            f"GPU-hours used{reserved}; {hours(usage.left or 0)} GPU-hours left.")


@dataclass(frozen=True)
class Verdict:
    """Whether a spawn may go to sbatch; ``message`` is for the learner when it may not."""

    allowed: bool
    message: str = ""


def judge(snapshot: BudgetSnapshot | None, account: str, budgeted: bool, gpus: int, hours_asked: int) -> Verdict:
    """May a job of ``gpus`` GPUs for ``hours_asked`` hours start under ``account``?

    CPU-only jobs always may: a budget counts GPU-minutes. Without figures (slurmdbd or the
    controller down, the account missing) a GPU job of a budgeted account is refused, since
    the hub cannot tell it fits; Slurm's own ``safe`` enforcement stays the last word anyway.
    """
    if gpus <= 0:
        return Verdict(True)
    if snapshot is None or not snapshot.available:
        if not budgeted:
            return Verdict(True)
        why = snapshot.error if snapshot else "no figures yet"
        return Verdict(False, f"GPU budgets are unavailable right now ({why}), so GPU profiles cannot start; "
                              "CPU profiles still can. Try again in a few minutes or ask a trainer.")
    usage = snapshot.accounts.get(account)
    if usage is None:
        if not budgeted:
            return Verdict(True)
        return Verdict(False, f"Your team's Slurm account {account!r} does not exist, so its GPU budget is unknown; "
                              "GPU profiles cannot start. Ask an administrator to run 'academy budgets sync'.")
    if usage.left is None:
        return Verdict(True)
    wanted = gpus * hours_asked * 60
    if wanted > usage.left:
        return Verdict(False, f"This server would reserve {hours(wanted)} GPU-hours ({gpus} GPU × {hours_asked} h), "
                              f"but your team's account {account} has only {hours(usage.left)} GPU-hours left "
                              f"({hours(usage.used_gpu_minutes)} of {hours(usage.limit_gpu_minutes or 0)} used, "
                              f"{hours(usage.reserved_gpu_minutes)} reserved by running jobs). Pick fewer hours or "
                              "GPUs, or a CPU profile.")
    return Verdict(True)


class BudgetReader:
    """The hub-wide cache: ``snapshot()`` returns figures at most ``refresh_seconds`` old; callers share one call."""

    def __init__(self, refresh_seconds: float = 120.0, query_timeout: float = 30.0) -> None:
        self.refresh_seconds = refresh_seconds
        self.query_timeout = query_timeout
        self._snapshot: BudgetSnapshot | None = None
        self._inflight: asyncio.Future | None = None
        self.queries = 0

    @property
    def cached(self) -> BudgetSnapshot | None:
        return self._snapshot

    def note_reserved(self, account: str, gpu_minutes: float) -> None:
        """Count a job just submitted until the next refresh sees it, so two quick spawns cannot both pass."""
        snap = self._snapshot
        usage = snap.accounts.get(account) if snap else None
        if snap is not None and usage is not None:
            grown = replace(usage, reserved_gpu_minutes=usage.reserved_gpu_minutes + gpu_minutes)
            self._snapshot = replace(snap, accounts={**snap.accounts, account: grown})

    async def snapshot(self) -> BudgetSnapshot:
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.checked < self.refresh_seconds:
            return snap
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._query())
        return await asyncio.shield(self._inflight)

    async def _query(self) -> BudgetSnapshot:
        started = time.monotonic()
        self.queries += 1
        result = await commands.run_command(
            commands.hub_command("sshare", "--noheader", "--parsable2", "--all", f"--format={SSHARE_FORMAT}"),
            timeout=self.query_timeout,
        )
        if result.ok and "error" not in result.stderr.lower():
            snap = parse_sshare(result.stdout, started)
        else:
            log.warning("GPU budgets unavailable: %s", result.message)
            # An outage is retried sooner than a normal refresh, but not on every page view.
            snap = BudgetSnapshot(checked=started - self.refresh_seconds + min(30.0, self.refresh_seconds),
                                  error="Slurm accounting did not answer")
        self._snapshot = snap
        return snap


_shared: dict[tuple, BudgetReader] = {}


def shared_reader(refresh_seconds: float, query_timeout: float) -> BudgetReader:
    """The hub-wide reader for these settings (one per hub process in practice)."""
    key = (refresh_seconds, query_timeout)
    if key not in _shared:
        _shared[key] = BudgetReader(refresh_seconds, query_timeout)
    return _shared[key]
