"""sacct on the real cluster (slurmdbd + MariaDB): the hub reads why a job ended instead of guessing."""
from __future__ import annotations

import time

import pytest

from academy.slurm.states import Phase
from academy.spawners.slurm import messages
from academy.spawners.slurm.poller import SlurmPoller
from support.slurm import job_state, slurm

pytestmark = pytest.mark.slurm


async def test_a_job_gone_from_squeue_gets_its_end_from_sacct(slurm_cluster):
    """Does the poller's confirmation read 'CANCELLED by 0' from sacct, and tell the learner an administrator cancelled it?"""
    sub = slurm("sbatch", "--parsable", "--output=/dev/null", "--time=5", "--wrap=sleep 120")
    assert sub.returncode == 0, sub.stderr
    jid = sub.stdout.strip()
    deadline = time.monotonic() + 30
    while job_state(jid) not in ("RUNNING",) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert slurm("scancel", jid).returncode == 0
    while job_state(jid) != "CANCELLED" and time.monotonic() < deadline + 30:
        time.sleep(0.5)
    poller = SlurmPoller(background=False)
    poller.track(jid)
    view = await poller._confirm_gone(jid, time.monotonic())
    assert view.phase is Phase.ENDED and view.note.startswith("sacct: CANCELLED by 0"), view
    text = messages.ended(view)
    assert f"Slurm job {jid}) was cancelled by an administrator" in text, text
