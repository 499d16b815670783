"""Warm start and teardown of a workshop on the real one-node Slurm, inside the ``academy-workshop`` reservation."""
from __future__ import annotations

import asyncio
import pwd
import time

import pytest

from testbed.slurm_cluster import RESERVATION
from support.slurm import job_of, new_username, newest_job_id, slurm, unix_user
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


def test_the_workshop_form_refuses_a_reservation_that_is_missing_short_or_too_small(slurm_hub):
    """On the Slurm backend, is a new workshop whose reservation is left out, does not exist, ends before the workshop
    or has no room for its participants refused next to the reservation field (and by the CLI), with nothing created;
    and is one that fits accepted?"""
    import subprocess
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from testbed.hub import ACADEMY, REPO
    from testbed.slurm_cluster import Cluster
    from support.workshop import post_form, workshop_form

    hub = slurm_hub
    admin = hub.login("admin", hub.admin_password)
    token = hub.token_for(admin, "admin", note="reservation form")
    now = datetime.now(ZoneInfo("Europe/Amsterdam"))
    at = lambda minutes: (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    short = "academy-w9c-short"
    slurm("scontrol", "delete", f"reservationname={short}")
    made = slurm("scontrol", "create", "reservation", f"reservationname={short}", "users=-root",
                 f"nodes={Cluster().node}", "corecnt=1", "starttime=now+1hour", "duration=60")
    assert made.returncode == 0, made.stderr
    cases = [
        ({"reservation": ""}, "needs its Slurm reservation"),
        ({"reservation": "academy-no-such-res"}, "does not exist"),
        ({"reservation": short, "start": at(65), "end": at(180)}, "does not cover the workshop"),
        ({"reservation": RESERVATION, "count": "10"}, "has 1 cores; 10 participants"),
    ]
    try:
        for change, message in cases:
            slug = new_username("wr")
            form = workshop_form(slug, profiles="workshop", count="1", start=at(20), end=at(80))
            r = post_form(admin, hub, "new", {**form, **change})
            assert r.status_code == 400, (change, r.status_code)
            assert 'data-field-error="reservation"' in r.text and message in r.text.replace("&#39;", "'"), (change, r.text[-2500:])
            assert "Nothing was created" in r.text
            assert hub.api("GET", f"/groups/{slug}", token).status_code == 404
            assert hub.api("GET", f"/users/{slug}-01", token).status_code == 404
    finally:
        slurm("scontrol", "delete", f"reservationname={short}")
    slug = new_username("wr")
    bad = subprocess.run([*ACADEMY, "--config", str(hub.config_path), "workshop", "create", slug, "--title", "CLI",
                          "--start", at(20), "--end", at(80), "--profile", "workshop", "--reservation", "academy-no-such-res"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "reservation: Slurm reservation 'academy-no-such-res' does not exist" in bad.stderr, bad.stderr
    assert hub.api("GET", f"/groups/{slug}", token).status_code == 404
    # One that fits (no participants yet, so the scheduler warm-starts nobody into the one reserved core).
    fits = post_form(admin, hub, "new", workshop_form(slug, profiles="workshop", count="0", reservation=RESERVATION,
                                                      start=at(20), end=at(80)))
    assert fits.status_code == 200 and slug in fits.text, fits.text[-2000:]
    assert hub.api("GET", f"/groups/{slug}", token).status_code == 200
    assert "Required: checked against Slurm" in admin.get(f"{hub.url}/services/academy/new", timeout=60).text
    # Adding participants later is checked too: a second one does not fit the one reserved core.
    more = post_form(admin, hub, f"w/{slug}/participants", {"count": "2", "usernames": "", "sso_group": ""})
    assert more.status_code == 400 and 'data-field="count"' in more.text and "has 1 cores; 2 participants" in more.text, more.text[-2000:]
    assert hub.api("GET", f"/users/{slug}-01", token).status_code == 404


def test_the_service_warm_starts_into_the_reservation_before_the_start_and_tears_down(slurm_hub):
    """Before the workshop starts, does "Warm start now" on the workshop page run the participant's job inside the
    workshop's reservation (the begun warm start binds early), and does `academy workshop teardown` end it CANCELLED?"""
    import subprocess
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from testbed.hub import ACADEMY, REPO
    from support.workshop import post_form, workshop_form

    hub = slurm_hub
    admin = hub.login("admin", hub.admin_password)
    token = hub.token_for(admin, "admin", note="service warm start")
    name = unix_user(new_username("wsv"))
    hub.add_accounts(name)
    now = datetime.now(ZoneInfo("Europe/Amsterdam"))
    at = lambda minutes: (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    slug = new_username("wv")
    made = post_form(admin, hub, "new", workshop_form(slug, profiles="workshop", count="0", usernames=name,
                                                      reservation=RESERVATION, start=at(90), end=at(150)))
    assert made.status_code == 200, made.text[-2000:]
    before = newest_job_id()
    assert post_form(admin, hub, f"w/{slug}/warmstart", {}).status_code == 200
    deadline = time.monotonic() + 240
    while True:
        warm = admin.get(f"{hub.url}/services/academy/api/workshops/{slug}/lifecycle", timeout=60).json()["warm"]
        if warm and warm[0]["state"] in ("running", "failed"):
            break
        assert time.monotonic() < deadline, warm
        time.sleep(1)
    assert warm[0]["state"] == "running", warm
    job = job_of(name, after=before)
    assert job and job["state"] == "RUNNING" and job["reservation"] == RESERVATION, job
    assert f"Reservation={RESERVATION}" in slurm("scontrol", "show", "job", job["id"]).stdout

    out = subprocess.run([*ACADEMY, "--config", str(hub.config_path), "workshop", "teardown", slug],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0 and "teardown complete" in out.stdout, out.stdout + out.stderr
    deadline = time.monotonic() + 60
    while (state := job_of(name, after=before)["state"]) not in ("CANCELLED", "COMPLETED"):
        assert time.monotonic() < deadline, state
        time.sleep(1)
    assert state == "CANCELLED"
    assert hub.api("GET", f"/users/{name}", token).status_code == 200, "an existing user keeps the account"
