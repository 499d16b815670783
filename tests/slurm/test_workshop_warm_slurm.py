"""Warm start and teardown of a workshop on the real one-node Slurm, inside the ``academy-workshop`` reservation."""
from __future__ import annotations

import asyncio
import pwd
import time

import pytest

from slurm_cluster import RESERVATION
from slurm_hub import job_of, new_username, newest_job_id, slurm, unix_user
from academy.workshop.teardown import JsonStepStore, run_teardown
from academy.workshop.warmstart import WarmStart

pytestmark = pytest.mark.slurm


def test_warm_started_jobs_run_in_the_reservation_and_end_cancelled(slurm_hub, tmp_path):
    """Does a warm start submit the participant's job into the workshop reservation (scontrol says so), is a
    participant without a Unix account recorded as failed and then started by retry, and does teardown's stop
    end the Slurm job CANCELLED?"""
    hub = slurm_hub
    admin = hub.login("admin", hub.admin_password)
    token = hub.token_for(admin, "admin", note="warm start slurm")
    ready, missing = new_username("wsr"), new_username("wsm")
    unix_user(ready)
    hub.add_accounts(ready, missing)
    # `academy accounts add` makes them hub users at once (no login needed first).
    assert all(hub.api("GET", f"/users/{n}", token).status_code == 200 for n in (ready, missing))
    assert hub.api("POST", "/groups/workshop/users", token, json={"users": [ready, missing]}).status_code == 200
    scoped = hub.api("POST", "/users/admin/tokens", token, json={"expires_in": 3600, "scopes": [
        "start:servers!group=workshop", "read:servers!group=workshop"]}).json()["token"]
    before = newest_job_id()

    async def warm():
        async with WarmStart(f"{hub.url}/hub/api", scoped, [ready, missing], {"profile": "workshop", "hours": 1},
                             concurrent_spawn_limit=1, spawn_timeout=240) as ws:
            await ws.run()
            first = {n: (s.state, s.reason) for n, s in ws.status.items()}
            return ws, first

    ws, first = asyncio.run(warm())
    assert first[ready][0] == "running", first
    assert first[missing][0] == "failed" and first[missing][1], first
    job = job_of(ready, after=before)
    assert job and job["state"] == "RUNNING"
    shown = slurm("scontrol", "show", "job", job["id"]).stdout
    assert f"Reservation={RESERVATION}" in shown, shown

    # Stop the first (the reservation is one core), create the missing account, retry.
    report = asyncio.run(run_teardown("wsslurm", [ready], hub_api_url=f"{hub.url}/hub/api", token=token,
                                      store=JsonStepStore(tmp_path / "steps.json"), state_dir=tmp_path,
                                      home_of=lambda n: pwd.getpwnam(n).pw_dir))
    assert report.complete, report.failures
    deadline = time.monotonic() + 60
    while (state := job_of(ready, after=before)["state"]) not in ("CANCELLED", "COMPLETED"):
        assert time.monotonic() < deadline, state
        time.sleep(1)
    assert state == "CANCELLED"
    assert (tmp_path / "workshops" / "wsslurm" / "archives" / f"{ready}.tar.gz").exists()

    unix_user(missing)

    async def again():
        async with WarmStart(f"{hub.url}/hub/api", scoped, [ready, missing], {"profile": "workshop", "hours": 1},
                             spawn_timeout=240) as ws2:
            ws2.status[missing].state = "failed"
            return await ws2.retry(missing)

    retried = asyncio.run(again())
    assert retried.state == "running", retried
    job = job_of(missing, after=before)
    assert f"Reservation={RESERVATION}" in slurm("scontrol", "show", "job", job["id"]).stdout
    hub.api("DELETE", f"/users/{missing}/server", token)
