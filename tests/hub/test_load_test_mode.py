"""Load-test mode on a real hub: shared-password form logins, a load-client token, form-less spawns, loopback only."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import requests
import yaml

from testbed.hub import ACADEMY, REPO, free_port, shared_tmpdir
from testbed.accounts import CREATED
from support.hub import running_hub

pytestmark = pytest.mark.hub


def test_load_test_mode_refuses_a_public_address():
    """Does `academy up` refuse load-test mode on 0.0.0.0 with one clear line, before writing any secret?"""
    work = shared_tmpdir("loadrefuse")
    try:
        config = work / "academy.yaml"
        config.write_text(yaml.safe_dump({
            "hub": {"ip": "0.0.0.0", "port": free_port(), "state_dir": str(work / "state")},
            "auth": {"type": "native", "admin_users": ["admin"]},
            "load_test": {"enabled": True},
        }))
        out = subprocess.run([*ACADEMY, "--config", str(config), "up", "--start-timeout", "20"],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "load_test.enabled" in out.stderr and "loopback" in out.stderr
        assert not (work / "state" / "load-test-password").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def load_hub():
    with running_hub("load", site={"load_test": {"enabled": True}}) as h:
        yield h


def test_load_test_mode_logs_in_any_name_and_spawns_without_the_form(load_hub):
    """Can a simulated learner log in through the form with the shared password and get the default profile without a form?"""
    hub = load_hub
    out = "".join(hub.output)
    assert "password:" not in out, "no native admin password applies in load-test mode"
    assert "Load-test mode" in out
    password = (hub.state_dir / "load-test-password").read_text().strip()
    token = (hub.state_dir / "load-client-token").read_text().strip()
    assert (hub.state_dir / "load-test-password").stat().st_mode & 0o077 == 0
    name = "loadlearner1"
    CREATED.append(name)
    # A wrong password gets nowhere.
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    bad = s.post(f"{hub.url}/hub/login", data={"username": name, "password": "wrong-password",
                                                "_xsrf": s.cookies.get("_xsrf", "")}, timeout=30)
    assert not bad.url.endswith("/hub/home")
    session = hub.login(name, password)
    # No form: visiting the spawn page starts the server with the first (default) profile.
    r = session.get(f"{hub.url}/hub/spawn", timeout=60)
    assert r.status_code == 200
    server = hub.wait_ready(name, token, timeout=300)
    assert server["user_options"]["profile"] == "cpu"
    # The load client's service token reads users and the hub's metrics (event-loop stalls).
    users = hub.api("GET", "/users", token)
    assert users.status_code == 200 and name in {u["name"] for u in users.json()}
    metrics = requests.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30)
    assert metrics.status_code == 200 and "event_loop_interval_seconds" in metrics.text
    assert hub.api("DELETE", f"/users/{name}/server", token).status_code in (202, 204)
