"""Why a server's job ended, in the learner's words, from what sacct recorded."""
from __future__ import annotations

import pwd

from academy.slurm.states import JobInfo, Phase
from academy.spawners.slurm import messages
from academy.spawners.slurm.poller import JobView


def test_sacct_names_who_cancelled_the_job():
    """Does 'CANCELLED by <uid>' from sacct say which user cancelled the job, and uid 0 an administrator?"""
    nobody = pwd.getpwnam("nobody").pw_uid
    by_user = JobView("42", Phase.ENDED, JobInfo("42", "CANCELLED"), note=f"sacct: CANCELLED by {nobody}")
    assert "was cancelled by nobody (scancel)" in messages.ended(by_user)
    by_root = JobView("42", Phase.ENDED, JobInfo("42", "CANCELLED"), note="sacct: CANCELLED by 0")
    assert "was cancelled by an administrator" in messages.ended(by_root)


def test_without_sacct_the_old_wording_stays():
    """Without sacct's answer (squeue's word only), is a cancelled job still 'cancelled outside the hub'?"""
    view = JobView("42", Phase.ENDED, JobInfo("42", "CANCELLED"))
    assert "cancelled outside the hub" in messages.ended(view)


def test_timeout_and_out_of_memory_are_told_apart():
    """Do TIMEOUT and OUT_OF_MEMORY, as sacct or squeue record them, give different advice?"""
    timeout = messages.ended(JobView("7", Phase.ENDED, JobInfo("7", "TIMEOUT"), note="sacct: TIMEOUT"))
    oom = messages.ended(JobView("7", Phase.ENDED, JobInfo("7", "OUT_OF_MEMORY"), note="sacct: OUT_OF_MEMORY"))
    assert "walltime" in timeout and "memory" in oom and timeout != oom
