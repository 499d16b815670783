"""BudgetedSlurmSpawner without a cluster: recorded sshare answers, and the order of commands before sbatch."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from academy.slurm import budgets
from academy.spawners.picker import SpawnRefused
from academy.spawners.slurm.budgeted import BudgetedSlurmSpawner
from academy.spawners.slurm.poller import SlurmPoller
from test_budget_figures import SSHARE, SSHARE_CMD
from test_slurm_spawner import replay  # noqa: F401  (the fixture: recorded answers through the choke point)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def budgeted(tmp_path, monkeypatch):
    monkeypatch.setattr(budgets, "_shared", {})  # a fresh hub-wide reader per test

    def make(name: str, groups: list[str]) -> BudgetedSlurmSpawner:
        c = Config()
        s = c.BudgetedSlurmSpawner
        s.profiles_file = str(REPO / "spawner_config" / "profiles.yaml")
        s.batch_script_file = str(REPO / "spawner_config" / "slurm.sh.j2")
        s.python_env = "/opt/academy/env"
        s.homes_dir = str(tmp_path)
        s.budget_groups = {"sme-a": "alpha", "sme-b": "beta"}
        s.default_account = "academy"
        user = SimpleNamespace(name=name, groups=[SimpleNamespace(name=g) for g in groups], admin=False,
                               url=f"/user/{name}/", escaped_name=name)
        spawner = BudgetedSlurmSpawner(user=user, hub=Hub(), config=c, api_token="secret-token")
        spawner._poller = SlurmPoller(query_timeout=5, use_sacct=False, background=False)
        return spawner

    return make


async def test_a_team_member_is_registered_in_the_team_account_before_sbatch(replay, budgeted):
    """Is the learner added to their team's account with sacctmgr, and only then the job submitted with --account?"""
    spawner = budgeted("ada", ["sme-b"])
    replay.expect(SSHARE_CMD, SSHARE)
    await spawner._apply_with_budget({"profile": "h100-1", "hours": "8"})
    replay.expect(r"^sacctmgr -i add user ada account=beta$", " Associations =\n  U = ada A = beta\n")
    replay.expect(r"^runuser -u ada -- mkdir -p -m 700 ")
    replay.expect(r"^runuser -u ada -- sbatch --parsable$", "4242\n")
    assert await spawner.submit_batch_script() == "4242"
    replay.done()
    assert "#SBATCH --account=beta\n" in replay.ran[-1][1]
    # The reserved 8 GPU-hours count at once, before the next sshare.
    assert spawner.budget_reader.cached.accounts["beta"].reserved_gpu_minutes == 480


async def test_a_spawn_past_the_budget_is_refused_in_the_options_hook(replay, budgeted):
    """Is an 8-hour GPU spawn of a team with 15 GPU-minutes left a 400 naming what is left, with no sbatch?"""
    spawner = budgeted("bob", ["sme-a"])
    spawner._store_user_options({"profile": "cpu", "hours": 1})
    spawner._accepted_user_options = {"profile": "cpu", "hours": 1}
    replay.expect(SSHARE_CMD, SSHARE)
    with pytest.raises(SpawnRefused) as refused:
        await spawner._apply_with_budget({"profile": "h100-1", "hours": "8"})
    replay.done()
    assert refused.value.status_code == 400 and "has only 0.25 GPU-hours left" in refused.value.log_message
    assert [cmd for cmd, _ in replay.ran] == [replay.ran[0][0]]  # sshare only
    assert spawner.user_options == {"profile": "cpu", "hours": 1}  # the refused options are not kept


async def test_the_form_shows_the_team_budget_and_nothing_for_others(replay, budgeted):
    """Does a team member's form carry the team's used and left GPU-hours, and a user in no budget group's form none?"""
    replay.expect(SSHARE_CMD, SSHARE)
    note = await budgeted("cy", ["sme-a"]).budget_note()
    assert note == ("GPU budget of alpha: 0.75 of 2.00 GPU-hours used, 1.00 reserved by running servers and jobs; "
                    "0.25 GPU-hours left.")
    assert await budgeted("dee", []).budget_note() == ""
    replay.done()


async def test_a_known_association_is_not_added_again(replay, budgeted):
    """When sshare already lists the learner in the account, does the spawn skip sacctmgr?"""
    spawner = budgeted("root", ["sme-b"])
    replay.expect(SSHARE_CMD, SSHARE.replace("  alpha|root|", "  beta|root|"))
    await spawner._apply_with_budget({"profile": "cpu", "hours": "1"})  # CPU: no sshare needed for the verdict
    await spawner.budget_reader.snapshot()
    replay.expect(r"^runuser -u root -- mkdir -p -m 700 ")
    replay.expect(r"^runuser -u root -- sbatch --parsable$", "77\n")
    assert await spawner.submit_batch_script() == "77"
    replay.done()
