"""What goes wrong for real: jobs killed behind the hub's back, jobs that die at start, and the API-hole attack."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

from support.slurm import job_of, job_state, progress_events, proxy_routes, server_environ, slurm, spawn, wait_no_server

pytestmark = pytest.mark.slurm


def test_scancel_behind_the_hubs_back_is_noticed_and_explained(slurm_hub, learner):
    """Is a job cancelled outside the hub noticed within 10 s, and does the learner's next visit say why?"""
    spawn(slurm_hub, learner, {"profile": "cpu"})
    job = job_of(learner.name)
    assert slurm("scancel", job["id"]).returncode == 0
    noticed = wait_no_server(slurm_hub, learner, 20)
    assert noticed < 10, f"the hub took {noticed:.1f} s to notice"
    # The next visit gets the hub's "not running" page (not a proxy 503) leading to the spawn page,
    # which says what happened to the job.
    page = learner.session.get(f"{slurm_hub.url}/user/{learner.name}/lab", timeout=30)
    assert page.status_code == 424, page.status_code
    assert f"/hub/spawn/{learner.name}" in page.text
    form = learner.session.get(f"{slurm_hub.url}/hub/spawn", timeout=30).text
    assert f"Slurm job {job['id']}) was cancelled outside the hub" in form and 'name="profile"' in form
    # A new server clears the notice.
    spawn(slurm_hub, learner, {"profile": "cpu"})
    slurm_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    wait_no_server(slurm_hub, learner, 30)
    assert "cancelled outside the hub" not in learner.session.get(f"{slurm_hub.url}/hub/spawn", timeout=30).text


def test_job_that_dies_before_reporting_its_port_fails_fast_with_its_log(slurm_hub, learner):
    """Does a job that exits at start fail the spawn within seconds, showing Slurm's state and the log's last lines?"""
    rc = Path(f"/home/{learner.name}/.academy/jobrc.sh")
    subprocess.run(["runuser", "-u", learner.name, "--", "mkdir", "-p", str(rc.parent)], check=True)
    subprocess.run(["runuser", "-u", learner.name, "--", "sh", "-c",
                    f"printf 'echo \"module: CUDA/12.4 not found\" >&2\\nfalse\\n' > {rc}"], check=True)
    start = time.monotonic()
    r = slurm_hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu"})
    if r.status_code == 202:
        events = progress_events(slurm_hub, learner, until=lambda e: e.get("failed"), timeout=60)
        message = events[-1]["message"] if events and events[-1].get("failed") else ""
    else:  # failed within the hub's slow-spawn wait: the POST itself carries the message
        message = r.json()["message"]
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"failure took {elapsed:.1f} s (start_timeout is 120 s)"
    assert "ended before JupyterLab started (FAILED" in message, message
    assert "module: CUDA/12.4 not found" in message, message
    job = job_of(learner.name)
    assert job["state"] == "FAILED"
    assert not slurm_hub.api("GET", f"/users/{learner.name}", learner.token).json()["servers"]


def _attack(api_url: str, token: str, payload: object, user: str) -> tuple[int, str]:
    """POST to the hub's batchspawner endpoint as the unprivileged learner, with their server's token."""
    code = (
        "import json, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1] + '/batchspawner', data=sys.argv[3].encode(), method='POST',\n"
        "    headers={'Authorization': 'token ' + sys.argv[2], 'Content-Type': 'application/json'})\n"
        "try:\n    r = urllib.request.urlopen(req); print(r.status, r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n    print(e.code, e.read().decode())\n"
    )
    out = subprocess.run(["/usr/sbin/runuser", "-u", user, "--", "/usr/bin/python3", "-c", code, api_url, token, json.dumps(payload)],
                         capture_output=True, text=True, cwd="/", timeout=60, env={"PATH": "/usr/bin:/bin"})
    status, _, body = out.stdout.strip().partition(" ")
    assert status.isdigit(), out.stderr
    return int(status), body


def test_api_hole_attack_with_the_servers_own_token_changes_nothing(slurm_hub, learner):
    """Can a learner, using their running server's real token, make the hub run a command or change the spawner? (No.)"""
    spawn(slurm_hub, learner, {"profile": "cpu"})
    job = job_of(learner.name)
    pid_env = server_environ(job["id"])
    # The learner can read their own server's token: that is what makes the stock endpoint dangerous.
    token = pid_env["JUPYTERHUB_API_TOKEN"]
    pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _is_server_of(p, job["id"])]
    leaked = subprocess.run(["runuser", "-u", learner.name, "--", "cat", f"/proc/{pids[0]}/environ"],
                            capture_output=True, cwd="/").stdout
    assert f"JUPYTERHUB_API_TOKEN={token}".encode() in leaked
    marker = Path(f"/tmp/academy-pwned-{learner.name}")
    marker.unlink(missing_ok=True)
    route_before = proxy_routes(slurm_hub)[f"/user/{learner.name}"]
    evil = f"touch {marker};"
    attacks = [
        {"exec_prefix": evil, "batch_query_cmd": evil, "batch_cancel_cmd": evil, "port": 1},
        {"exec_prefix": evil},
        {"port": 99999},
        {"port": "8888"},
        {"port": True},
        ["port", 8888],
    ]
    for payload in attacks:
        status, body = _attack(pid_env["JUPYTERHUB_API_URL"], token, payload, learner.name)
        assert status == 400, (payload, status, body)
    # A well-formed port from a server that is not starting is refused too (no redirecting a live route).
    status, body = _attack(pid_env["JUPYTERHUB_API_URL"], token, {"port": 40000}, learner.name)
    assert status == 409, body
    time.sleep(3)  # three poll intervals: the stock handler's payload would have run by now
    assert proxy_routes(slurm_hub)[f"/user/{learner.name}"] == route_before
    status = requests.get(f"{slurm_hub.url}/user/{learner.name}/api/status",
                          headers={"Authorization": f"token {learner.token}"}, timeout=30).status_code
    assert status == 200
    # Stopping runs exec_prefix and the cancel command: still ours, so the job ends and nothing else runs.
    slurm_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    wait_no_server(slurm_hub, learner, 30)
    assert job_state(job["id"]) in ("CANCELLED", "COMPLETING")
    assert not marker.exists(), "the attacker's command ran on the hub"


def _is_server_of(proc: Path, job_id: str) -> bool:
    try:
        return (b"jupyterhub-singleuser" in (proc / "cmdline").read_bytes()
                and f"SLURM_JOB_ID={job_id}\0".encode() in (proc / "environ").read_bytes())
    except OSError:
        return False
