"""Spawning through a real hub onto the real one-node Slurm: profiles, GPUs, reservations, refusals, stop."""
from __future__ import annotations

import pwd
import time
from pathlib import Path

import pytest
import requests

from support.slurm import (
    job_of,
    job_state,
    make_learner,
    new_username,
    newest_job_id,
    progress_events,
    server_environ,
    slurm,
    spawn,
    unix_user,
    wait_no_server,
)

pytestmark = pytest.mark.slurm


def reach(hub, learner) -> int:
    return requests.get(f"{hub.url}/user/{learner.name}/api/status",
                        headers={"Authorization": f"token {learner.token}"}, timeout=30).status_code


def test_cpu_profile_runs_as_a_job_and_stop_cancels_it(slurm_hub, learner):
    """Does the CPU profile start JupyterLab as the learner's Slurm job, with the walltime visible, and does stop cancel it?"""
    before = time.time()
    server = spawn(slurm_hub, learner, {"profile": "cpu", "hours": 2})
    assert server["user_options"] == {"profile": "cpu", "hours": 2}
    job = job_of(learner.name)
    assert job and job["state"] == "RUNNING" and job["partition"] == "cpu"
    assert reach(slurm_hub, learner) == 200
    env = server_environ(job["id"])
    assert env["SLURM_JOB_ID"] == job["id"] and env["ACADEMY_PROFILE"] == "cpu"
    # Two hours from the job's start, as the welcome notebook reads it.
    assert abs(int(env["ACADEMY_WALLTIME_END"]) - (before + 2 * 3600)) < 120
    script = slurm("scontrol", "write", "batch_script", job["id"], "-").stdout
    assert "#SBATCH --time=02:00:00" in script and "#SBATCH --partition=cpu" in script
    assert "JUPYTERHUB_API_TOKEN=" not in script and learner.token not in script
    log = f"/home/{learner.name}/.academy/logs/slurm-{job['id']}.log"
    assert f"academy: job {job['id']} on" in open(log).read()
    # The job delivered the curriculum into the learner's home, as the learner.
    welcome = Path(f"/home/{learner.name}/ai-factory-academy/00_welcome.ipynb")
    deadline = time.monotonic() + 30
    while not welcome.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert welcome.exists() and pwd.getpwuid(welcome.stat().st_uid).pw_name == learner.name

    r = slurm_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    assert r.status_code in (202, 204)
    wait_no_server(slurm_hub, learner, 30)
    assert job_state(job["id"]) in ("CANCELLED", "COMPLETING")
    assert reach(slurm_hub, learner) != 200


def test_gpu_profile_sees_its_gpu(slurm_hub, learner):
    """Does the H100 profile get exactly one GPU, visible to the server as CUDA_VISIBLE_DEVICES and SLURM_JOB_GPUS?"""
    spawn(slurm_hub, learner, {"profile": "h100-1"})
    job = job_of(learner.name)
    assert job["partition"] == "gpu" and "gpu:h100:1" in job["gres"]
    env = server_environ(job["id"])
    assert env.get("CUDA_VISIBLE_DEVICES") not in (None, "", "NoDevFiles")
    assert len(env["CUDA_VISIBLE_DEVICES"].split(",")) == 1 and env.get("SLURM_JOB_GPUS")
    slurm_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    wait_no_server(slurm_hub, learner, 30)


def test_workshop_profile_runs_in_its_reservation(slurm_hub):
    """Does a workshop member's server run inside the workshop reservation on a MIG slice?"""
    member = make_learner(slurm_hub, slurm_hub.workshop_members[0])
    form = member.session.get(f"{slurm_hub.url}/hub/spawn", timeout=30).text
    assert 'value="workshop"' in form and "MIG slices free" in form
    spawn(slurm_hub, member, {"profile": "workshop"})
    job = job_of(member.name)
    assert job["reservation"] == "academy-workshop" and "1g.18gb" in job["gres"]
    assert reach(slurm_hub, member) == 200
    slurm_hub.api("DELETE", f"/users/{member.name}/server", member.token)
    wait_no_server(slurm_hub, member, 30)


def test_group_restricted_profile_is_refused_to_others(slurm_hub, learner):
    """Is the workshop profile missing from a non-member's form and refused (400, no job) through the API?"""
    form = learner.session.get(f"{slurm_hub.url}/hub/spawn", timeout=30).text
    assert 'value="cpu"' in form and 'value="workshop"' not in form
    before = newest_job_id()
    r = slurm_hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "workshop"})
    assert r.status_code == 400 and "limited to the groups workshop" in r.json()["message"]
    assert job_of(learner.name, after=before) is None


CRAFTED = [
    ({"profile": "cpu", "partition": "gpu"}, "unknown option"),
    ({"profile": "cpu", "req_options": "--uid=0"}, "unknown option"),
    ({"profile": "cpu\n#SBATCH --uid=0"}, "unknown profile"),
    ({"profile": "cpu", "hours": "1; touch /tmp/academy-pwned"}, "whole number"),
    ({"profile": "cpu", "hours": 5}, "allows 1 to 4 hours"),
    ({"profile": ["cpu", "h100-1"]}, "exactly one value"),
]


def test_crafted_options_never_reach_slurm(slurm_hub, learner):
    """Is every crafted spawn request refused with a clear 400 before any job is submitted?"""
    before = newest_job_id()
    for options, message in CRAFTED:
        r = slurm_hub.api("POST", f"/users/{learner.name}/server", learner.token, json=options)
        assert r.status_code == 400 and message in r.json()["message"], (options, r.text)
    assert job_of(learner.name, after=before) is None
    assert not slurm_hub.api("GET", f"/users/{learner.name}", learner.token).json()["servers"]


def test_pending_job_shows_reason_and_estimated_start(slurm_hub, learner):
    """While both H100s are busy, does the spawn page show the job id, PENDING, the reason and Slurm's start estimate?"""
    blocker = unix_user(new_username("blk"))
    ids = []
    for _ in range(2):
        out = slurm("runuser", "-u", blocker, "--", "sbatch", "--parsable", "--partition=gpu", "--gres=gpu:h100:1",
                    "--mem=64M", "--time=10", "--output=/dev/null", "--chdir=/tmp", "--wrap=sleep 600")
        assert out.returncode == 0, out.stderr
        ids.append(out.stdout.strip())
    try:
        r = slurm_hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "h100-1"})
        assert r.status_code == 202, r.text
        events = progress_events(slurm_hub, learner, until=lambda e: "expects it to start" in e.get("message", ""),
                                 timeout=30)
        messages = [e["message"] for e in events]
        job = job_of(learner.name)
        pending = [m for m in messages if f"Slurm job {job['id']} is PENDING in partition gpu" in m]
        assert pending and any("Resources" in m for m in pending), messages
        assert any("expects it to start at" in m for m in pending), messages
    finally:
        slurm("scancel", *ids)
    slurm_hub.wait_ready(learner.name, learner.token, timeout=60)
    slurm_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    wait_no_server(slurm_hub, learner, 30)


def test_spawn_form_shows_free_gpus(slurm_hub, learner):
    """Does the form list only allowed profiles, each with how many of its GPUs or cores are free now?"""
    form = learner.session.get(f"{slurm_hub.url}/hub/spawn", timeout=30).text
    assert "of 2 h100 GPUs free" in form
    assert "idle cores" in form and 'value="workshop"' not in form
