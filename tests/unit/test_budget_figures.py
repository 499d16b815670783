"""GPU-hour budgets without a cluster: recorded sshare answers replayed through the command choke point."""
from __future__ import annotations

import asyncio

import pytest
from traitlets.config import Config

from academy.budgets import sync_commands
from academy.slurm import budgets
from academy.slurm.accounting_config import BUDGETED_SPAWNER, update_slurm_accounting
from academy.siteconfig import DEFAULTS
from test_slurm_spawner import replay  # noqa: F401  (the fixture: recorded answers through the choke point)

# Recorded on the test cluster (testbed/slurm_cluster.py) while a 2-GPU, 30-minute job ran under alpha.
SSHARE = """\
root|||cpu=0,mem=17,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0|cpu=30,mem=7680,energy=0,node=30,billing=30,fs/disk=0,vmem=0,pages=0,gres/gpu=60
 root|root||cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0|cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0
 academy|||cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0|cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0
  academy|academy-course||cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0|cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0
 alpha||gres/gpu=120|cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=45|cpu=30,mem=7680,energy=0,node=30,billing=30,fs/disk=0,vmem=0,pages=0,gres/gpu=60
  alpha|root||cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=45|cpu=30,mem=7680,energy=0,node=30,billing=30,fs/disk=0,vmem=0,pages=0,gres/gpu=60
 beta||gres/gpu=12000|cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0|cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0
"""
SSHARE_CMD = r"^sshare --noheader --parsable2 --all --format=Account,User,GrpTRESMins,GrpTRESRaw,TRESRunMins$"


def test_sshare_gives_limit_used_and_reserved_per_account():
    """Does one sshare answer give every account's limit, used and reserved GPU-minutes, and the associations?"""
    snap = budgets.parse_sshare(SSHARE)
    alpha = snap.accounts["alpha"]
    assert (alpha.limit_gpu_minutes, alpha.used_gpu_minutes, alpha.reserved_gpu_minutes) == (120, 45, 60)
    assert alpha.left == 15
    assert snap.accounts["academy"].limit_gpu_minutes is None and snap.accounts["academy"].left is None
    assert snap.accounts["beta"].left == 12000
    assert snap.has_association("alpha", "root") and not snap.has_association("beta", "root")


@pytest.mark.parametrize("gpus,hours,allowed", [(0, 8, True), (1, 1, False), (2, 8, False)])
def test_a_spawn_past_what_is_left_is_refused_with_the_figure(gpus, hours, allowed):
    """Is a GPU spawn needing more than the 15 GPU-minutes left refused, naming what is left, and CPU-only allowed?"""
    verdict = budgets.judge(budgets.parse_sshare(SSHARE), "alpha", True, gpus, hours)
    assert verdict.allowed is allowed
    if not allowed:
        assert "0.25 GPU-hours left" in verdict.message and "alpha" in verdict.message


def test_another_team_with_budget_left_may_start():
    """Does a team with budget left start while another is at its limit?"""
    verdict = budgets.judge(budgets.parse_sshare(SSHARE), "beta", True, 2, 8)
    assert verdict.allowed


def test_a_missing_account_refuses_gpu_but_not_cpu():
    """Does a budget mapped to an account Slurm lacks refuse GPU spawns with a clear message, and allow CPU-only?"""
    snap = budgets.parse_sshare(SSHARE)
    refused = budgets.judge(snap, "gamma", True, 1, 1)
    assert not refused.allowed and "'gamma' does not exist" in refused.message
    assert budgets.judge(snap, "gamma", True, 0, 1).allowed


def test_one_sshare_call_per_refresh_however_many_readers(replay):
    """Do fifty concurrent form renders cost one sshare call, and a stale cache exactly one more?"""
    replay.expect(SSHARE_CMD, SSHARE).expect(SSHARE_CMD, SSHARE)
    reader = budgets.BudgetReader(refresh_seconds=60)

    async def go():
        snaps = await asyncio.gather(*(reader.snapshot() for _ in range(50)))
        assert all(s is snaps[0] for s in snaps)
        reader._snapshot = budgets.BudgetSnapshot(snaps[0].accounts, snaps[0].associations, checked=-1e9)
        await reader.snapshot()
        await reader.snapshot()

    asyncio.run(go())
    replay.done()
    assert reader.queries == 2


def test_an_outage_makes_budgets_unavailable_and_refuses_budgeted_gpu_only(replay):
    """When sshare cannot reach the controller, are budgeted GPU spawns refused, CPU and unbudgeted ones allowed?"""
    replay.expect(SSHARE_CMD, "", rc=1, stderr="sshare: error: Unable to contact slurm controller (connect failure)")
    snap = asyncio.run(budgets.BudgetReader().snapshot())
    replay.done()
    assert not snap.available
    refused = budgets.judge(snap, "alpha", True, 1, 1)
    assert not refused.allowed and "unavailable" in refused.message
    assert budgets.judge(snap, "alpha", True, 0, 1).allowed
    assert budgets.judge(snap, "academy", False, 1, 1).allowed


def test_a_submitted_job_counts_before_the_next_refresh(replay):
    """After a spawn is submitted, does the cached figure count its GPU-hours, so a second quick spawn is judged on it?"""
    replay.expect(SSHARE_CMD, SSHARE.replace("gres/gpu=120|", "gres/gpu=400|"))
    reader = budgets.BudgetReader()
    snap = asyncio.run(reader.snapshot())
    assert budgets.judge(snap, "alpha", True, 1, 4).allowed  # 240 of 295 left
    reader.note_reserved("alpha", 240)
    assert not budgets.judge(reader.cached, "alpha", True, 1, 4).allowed


def test_sync_creates_accounts_and_sets_gpu_minute_limits():
    """Does `academy budgets sync` plan accounts, GrpTRESMins in GPU-minutes and the grader's association?"""
    cmds = sync_commands({"default_account": "academy", "budgets": {"sme-a": {"account": "acme", "gpu_hours": 200}}},
                         grader="academy-course")
    assert "sacctmgr -i add account academy description=academy organization=academy" in cmds
    assert "sacctmgr -i modify account where name=acme set GrpTRESMins=gres/gpu=12000" in cmds
    assert cmds[-1] == "sacctmgr -i add user academy-course account=academy"


def test_configurer_switches_to_the_budgeted_spawner_only_when_enabled():
    """Does slurm.accounting.enabled select BudgetedSlurmSpawner with the group -> account map, and off leave it alone?"""
    cfg = {"backend": "slurm", "slurm": {"accounting": {**DEFAULTS["slurm"]["accounting"], "enabled": True,
                                                       "default_account": "academy",
                                                       "budgets": {"sme-a": {"account": "acme", "gpu_hours": 2}}}}}
    c = Config()
    update_slurm_accounting(c, cfg)
    assert c.JupyterHub.spawner_class == BUDGETED_SPAWNER
    assert c.BudgetedSlurmSpawner.budget_groups == {"sme-a": "acme"}
    off = Config()
    update_slurm_accounting(off, {"backend": "slurm", "slurm": {"accounting": DEFAULTS["slurm"]["accounting"]}})
    assert "spawner_class" not in off.JupyterHub


def test_hostile_account_names_never_reach_a_command():
    """Is an account name with shell or option characters refused before any command is built?"""
    for bad in ("acme;rm -rf /", "-x", "Acme", "a b"):
        with pytest.raises(ValueError):
            sync_commands({"default_account": "", "budgets": {"g": {"account": bad, "gpu_hours": 1}}})
