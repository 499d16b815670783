"""Teardown and purge of a workshop against a real hub, with real learner accounts and a hostile participant."""
from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import sys
import tarfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from testbed.accounts import CREATED
from testbed.hub import _RUN
from academy.workshop.teardown import JsonStepStore, PurgeTooEarly, archive_path, native_login_switch, run_purge

pytestmark = pytest.mark.hub
CHILD = Path(__file__).resolve().parents[1] / "support" / "teardown_child.py"


def _login_status(hub, name: str, password: str) -> int:
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    r = s.post(f"{hub.url}/hub/login", data={"username": name, "password": password,
                                             "_xsrf": s.cookies.get("_xsrf", "")}, timeout=30, allow_redirects=False)
    return r.status_code


def test_teardown_killed_midway_completes_once_and_purge_removes_everything(hub, tmp_path):
    """Killed inside a step and rerun, does each step run exactly once; are servers stopped, shares revoked,
    homes archived without following a hostile participant's symlinks, logins and tokens refused;
    and does purge (not before the retention) remove hub users, Unix accounts, homes and archives?"""
    admin = hub.login("admin", hub.admin_password)
    token = hub.token_for(admin, "admin", note="teardown test")
    names = [f"tda-{_RUN}", f"tdb-{_RUN}"]
    CREATED.extend(names)
    passwords = hub.add_accounts(*names)
    # `academy accounts add` makes them hub users at once (no login needed first).
    assert all(hub.api("GET", f"/users/{n}", token).status_code == 200 for n in names)
    for n in names:
        assert hub.api("POST", f"/users/{n}/server", token, json={"user_options": {"profile": "cpu"}}).status_code in (201, 202)
    for n in names:
        hub.wait_ready(n, token, timeout=180)
    homes = hub.state_dir / "homes"
    victim, attacker = names
    # The attacker, as its own Unix account, plants links to a root-only file and to another home.
    for link, target in (("shadow", "/etc/shadow"), ("neighbour", str(homes / victim)), ("secret.txt", "/etc/shadow")):
        subprocess.run(["runuser", "-u", f"acad-{attacker}", "--", "ln", "-sfn", target, str(homes / attacker / link)],
                       check=True)
    (homes / victim / "private.txt").write_text("victim's own work")
    (homes / attacker / "notes.txt").write_text("attacker's work")
    # A share of the victim's server with the attacker, and a token the victim made for itself.
    shared = hub.api("POST", f"/shares/{victim}/", token, json={"user": attacker})
    assert shared.status_code == 200, shared.text
    victim_token = hub.token_for(hub.login(victim, passwords[victim]), victim)
    assert hub.api("GET", "/user", victim_token).status_code == 200

    args = {"hub": f"{hub.url}/hub/api", "token": token, "store": str(tmp_path / "steps.json"),
            "state_dir": str(hub.state_dir), "homes": str(homes), "participants": names,
            "db_url": f"sqlite:///{hub.state_dir / 'jupyterhub.sqlite'}", "log": str(tmp_path / "steps.log"),
            "hang_on": attacker}
    child = subprocess.Popen([sys.executable, str(CHILD), json.dumps(args)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    log = Path(args["log"])
    while f"{victim} autograde" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline and child.poll() is None, "teardown never reached autograde"
        time.sleep(0.2)
    time.sleep(0.5)
    child.kill()  # SIGKILL inside the attacker's autograde step
    child.wait()
    assert hub.api("GET", f"/users/{victim}", token).json()["servers"], "killed before the stop step"

    rerun = subprocess.run([sys.executable, str(CHILD), json.dumps({**args, "hang_on": None})],
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert result["complete"], result
    again = subprocess.run([sys.executable, str(CHILD), json.dumps({**args, "hang_on": None})],
                           capture_output=True, text=True, timeout=600)
    assert json.loads(again.stdout.strip().splitlines()[-1])["ran"] == []  # a third run finds nothing to do

    counts = Counter(log.read_text().splitlines())
    expected = {f"{n} {s}" for n in names for s in ("collect", "autograde", "feedback")} | {"* export"}
    assert set(counts) == expected and set(counts.values()) == {1}, counts
    store = JsonStepStore(args["store"])
    assert all(store.done("ws1", n, s) for n in names for s in ("block", "unshare", "stop", "archive"))

    for n in names:
        assert not hub.api("GET", f"/users/{n}", token).json()["servers"]
        assert _login_status(hub, n, passwords[n]) == 403
    assert hub.api("GET", "/user", victim_token).status_code == 403
    assert hub.api("GET", f"/shares/{victim}/", token).json()["items"] == []

    for n in names:
        tarball = archive_path(hub.state_dir, "ws1", n)
        st = tarball.stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)
    with tarfile.open(archive_path(hub.state_dir, "ws1", attacker)) as tar:
        members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers()}
        assert members["shadow"].issym() and members["shadow"].linkname == "/etc/shadow"
        assert members["neighbour"].issym() and not any("private.txt" in k for k in members)
        assert tar.extractfile(members["notes.txt"]).read() == b"attacker's work"
        everything = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
        assert b"root:" not in everything

    disable, delete = native_login_switch(args["db_url"])
    kw = dict(hub_api_url=args["hub"], token=token, store=store, state_dir=hub.state_dir,
              home_of=lambda n: homes / n, delete_login=delete)
    with pytest.raises(PurgeTooEarly):
        asyncio.run(run_purge("ws1", names, ended_at=datetime.now(timezone.utc), **kw))
    report = asyncio.run(run_purge("ws1", names, ended_at=datetime.now(timezone.utc) - timedelta(days=31), **kw))
    assert report.complete, report.failures
    for n in names:
        assert hub.api("GET", f"/users/{n}", token).status_code == 404
        with pytest.raises(KeyError):
            pwd.getpwnam(f"acad-{n}")
        assert not (homes / n).exists() and not archive_path(hub.state_dir, "ws1", n).exists()
        assert _login_status(hub, n, passwords[n]) == 403
    assert os.path.exists("/etc/shadow")
