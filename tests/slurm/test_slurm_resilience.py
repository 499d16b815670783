"""The hub and the controller go away for a while: running servers are neither forgotten nor orphaned."""
from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from testbed.slurm_cluster import start_controller, stop_controller
from support.slurm import job_of, job_state, make_learners, new_username, slurm, slurm_site, spawn, start_hub, wait_no_server

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def restart_hub(slurm_cluster):
    hub = start_hub(slurm_site())
    yield hub
    hub.stop()
    shutil.rmtree(hub.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def four(restart_hub):
    """Four learners whose servers both tests need running (spawned once, re-spawned only if gone)."""
    learners = make_learners(restart_hub, [new_username("rs") for _ in range(4)])
    yield learners
    for learner in learners:
        restart_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)


def reachable(hub, learner) -> bool:
    r = requests.get(f"{hub.url}/user/{learner.name}/api/status",
                     headers={"Authorization": f"token {learner.token}"}, timeout=30)
    if r.status_code != 200:
        print(f"{learner.name}: {r.status_code} {r.url} {r.text[:300]}")
    return r.status_code == 200


def listed(hub, learner) -> bool:
    return bool(hub.api("GET", f"/users/{learner.name}", learner.token).json().get("servers"))


def ensure_running(hub, learners) -> dict[str, str]:
    """Spawn (concurrently) whichever of ``learners`` has no server; job id per learner."""
    missing = [learner for learner in learners if not listed(hub, learner)]
    if missing:
        with ThreadPoolExecutor(len(missing)) as pool:
            list(pool.map(lambda learner: spawn(hub, learner, {"profile": "cpu"}, timeout=120), missing))
    return {learner.name: job_of(learner.name)["id"] for learner in learners}


def test_hub_restart_reattaches_running_jobs_and_clears_ended_ones(restart_hub, four):
    """After a hub restart, are three running servers re-attached (none cancelled) and one that ended meanwhile cleared?"""
    jobs = ensure_running(restart_hub, four)
    keep, ended = four[:3], four[3]
    assert restart_hub.stop() == 0
    assert all(job_state(jobs[learner.name]) == "RUNNING" for learner in four), "stopping the hub touched a job"
    slurm("scancel", jobs[ended.name])
    restart_hub.start()
    for learner in keep:
        assert listed(restart_hub, learner) and reachable(restart_hub, learner), learner.name
        assert job_state(jobs[learner.name]) == "RUNNING"
    assert not listed(restart_hub, ended)
    assert ended.session.get(f"{restart_hub.url}/user/{ended.name}/lab", timeout=30).status_code == 424
    form = ended.session.get(f"{restart_hub.url}/hub/spawn", timeout=30).text
    assert f"Slurm job {jobs[ended.name]}) was cancelled outside the hub" in form


def test_controller_outage_forgets_nothing_and_orphans_nothing(restart_hub, four):
    """With slurmctld down for 30 s, do running servers stay, and is a server stopped meanwhile cancelled once it is back?"""
    stays, leaves = four[:2], four[2]
    jobs = ensure_running(restart_hub, [*stays, leaves])
    stop_controller()
    try:
        outage_started = time.monotonic()
        restart_hub.api("DELETE", f"/users/{leaves.name}/server", leaves.token)
        wait_no_server(restart_hub, leaves, 40)
        while time.monotonic() - outage_started < 30:
            for learner in stays:
                assert listed(restart_hub, learner) and reachable(restart_hub, learner), "a running server was forgotten"
            time.sleep(3)
        # The stopped server's job outlives the outage: scancel could not reach the controller.
        assert job_process_alive(jobs[leaves.name])
    finally:
        start_controller()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and job_state(jobs[leaves.name]) == "RUNNING":
        time.sleep(0.5)
    assert job_state(jobs[leaves.name]) in ("CANCELLED", "COMPLETING"), "the stopped server's job was orphaned"
    time.sleep(3)
    for learner in stays:
        assert listed(restart_hub, learner) and reachable(restart_hub, learner)
        assert job_state(jobs[learner.name]) == "RUNNING"


def test_a_cancel_owed_during_an_outage_is_sent_after_a_hub_restart(restart_hub, four):
    """If the hub restarts while the controller is down, is a server stopped during the outage still cancelled
    once Slurm is back, instead of running until its walltime?"""
    stays, leaves = four[0], four[3]
    jobs = ensure_running(restart_hub, [stays, leaves])
    stop_controller()
    try:
        restart_hub.api("DELETE", f"/users/{leaves.name}/server", leaves.token)
        wait_no_server(restart_hub, leaves, 40)
        assert job_process_alive(jobs[leaves.name]), "the job ended although scancel could not reach Slurm"
        journal = restart_hub.state_dir / "slurm-pending-cancels.json"
        assert jobs[leaves.name] in json.loads(journal.read_text())
        assert restart_hub.stop() == 0
        restart_hub.start()  # a new hub process, while the controller is still down
        assert listed(restart_hub, stays) and not listed(restart_hub, leaves)
    finally:
        start_controller()
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and job_state(jobs[leaves.name]) == "RUNNING":
        time.sleep(0.5)
    assert job_state(jobs[leaves.name]) in ("CANCELLED", "COMPLETING", "GONE"), "the owed cancel was lost"
    assert job_state(jobs[stays.name]) == "RUNNING"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and json.loads(journal.read_text()):
        time.sleep(0.5)
    assert json.loads(journal.read_text()) == {}


def job_process_alive(job_id: str) -> bool:
    """Is the job's server process still running on the node (asked of /proc, not of the absent controller)?"""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"SLURM_JOB_ID={job_id}\0".encode() in (proc / "environ").read_bytes():
                return True
        except OSError:
            continue
    return False
