"""Team folders on a real hub (local backend, as root): real Unix accounts, real groups, real servers."""
from __future__ import annotations

import json
import os
import random
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support.hub import running_hub
from support.skip import need
from support.workshop import admin_token, make_trainer, service_url
from testbed.hub import ACADEMY, REPO, make_learner

pytestmark = pytest.mark.hub

TEAM = "team" + "".join(random.choices(string.ascii_lowercase, k=5))  # distinct per run: a real Unix group
UNIX_GROUP = f"acadteam-{TEAM}"


@pytest.fixture(scope="module")
def hub():
    need(os.geteuid() == 0 and shutil.which("runuser") is not None, "root and runuser (real learner accounts)")
    with running_hub("teams", {"team_folders": {"groups": [TEAM], "usage_refresh_seconds": 30}}) as h:
        # A hub group exists before anyone is put in it, as a trainer would make it.
        r = h.api("POST", f"/groups/{TEAM}", admin_token(h))
        assert r.status_code == 201, r.text
        try:
            yield h
        finally:
            for who in [*h.api("GET", "/users", admin_token(h)).json()]:
                h.api("DELETE", f"/users/{who['name']}/server", admin_token(h))
            time.sleep(2)
    subprocess.run(["groupdel", UNIX_GROUP], capture_output=True)


def folder(hub) -> Path:
    return hub.state_dir / "teams" / TEAM


def home(hub, who) -> Path:
    return hub.state_dir / "homes" / who.name


def join(hub, *learners) -> None:
    r = hub.api("POST", f"/groups/{TEAM}/users", admin_token(hub), json={"users": [w.name for w in learners]})
    assert r.status_code == 200, r.text


def leave(hub, who) -> None:
    r = hub.api("DELETE", f"/groups/{TEAM}/users", admin_token(hub), json={"users": [who.name]})
    assert r.status_code == 200, r.text


def start(hub, who) -> None:
    r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "cpu", "hours": 1})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(who.name, who.token, timeout=240)


def stop(hub, who) -> None:
    hub.api("DELETE", f"/users/{who.name}/server", who.token)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and hub.api("GET", f"/users/{who.name}", who.token).json()["servers"]:
        time.sleep(0.5)


def contents(hub, who, method: str, path: str, **kw) -> requests.Response:
    """The learner's own Jupyter server (its process, its groups), through the proxy."""
    return requests.request(method, f"{hub.url}/user/{who.name}/api/contents/{path}",
                            headers={"Authorization": f"token {who.token}"}, timeout=60, **kw)


def as_account(who, *argv: str) -> subprocess.CompletedProcess:
    """A fresh login of the learner's Unix account (groups as /etc/group says now)."""
    return subprocess.run(["runuser", "-u", f"acad-{who.name}", "--", *argv], capture_output=True, text=True,
                          timeout=60, cwd="/")


def put_text(hub, who, path: str, text: str) -> None:
    r = contents(hub, who, "PUT", path, json={"type": "file", "format": "text", "content": text})
    assert r.status_code in (200, 201), (r.status_code, r.text[:300])


def get_text(hub, who, path: str) -> requests.Response:
    return contents(hub, who, "GET", path, params={"content": "1", "format": "text", "type": "file"})


def test_members_share_the_folder_and_a_non_member_cannot_list_it(hub):
    """Do two members read and edit each other's files in their team folder, while a non-member cannot list or read it?"""
    ann, bob, eve = make_learner(hub, "ann"), make_learner(hub, "bob"), make_learner(hub, "eve")
    join(hub, ann, bob)
    for who in (ann, bob, eve):
        start(hub, who)
    try:
        st = folder(hub).stat()
        assert oct(st.st_mode & 0o7777) == oct(0o2770) and st.st_uid == 0
        assert os.readlink(home(hub, ann) / f"team-{TEAM}") == str(folder(hub))
        assert not os.path.lexists(home(hub, eve) / f"team-{TEAM}")
        put_text(hub, ann, f"team-{TEAM}/plan.md", "ann's plan\n")
        seen = get_text(hub, bob, f"team-{TEAM}/plan.md")
        assert seen.status_code == 200 and seen.json()["content"] == "ann's plan\n"
        put_text(hub, bob, f"team-{TEAM}/plan.md", "ann's plan\nbob was here\n")  # bob edits ann's file
        assert get_text(hub, ann, f"team-{TEAM}/plan.md").json()["content"].endswith("bob was here\n")
        r = contents(hub, bob, "POST", f"team-{TEAM}", json={"type": "directory"})  # a new folder of bob's
        assert r.status_code == 201, r.text
        put_text(hub, ann, f"{r.json()['path']}/in-bobs-folder.txt", "ann writes in bob's folder\n")
        made = folder(hub) / r.json()["path"].split("/", 1)[1] / "in-bobs-folder.txt"
        assert made.stat().st_gid == folder(hub).stat().st_gid, "setgid: new files keep the team's group"
        for argv in (["ls", str(folder(hub))], ["cat", str(folder(hub) / "plan.md")]):
            denied = as_account(eve, *argv)
            assert denied.returncode != 0 and "Permission denied" in denied.stderr, (argv, denied)
        assert contents(hub, eve, "GET", f"team-{TEAM}").status_code == 404
    finally:
        for who in (ann, bob, eve):
            stop(hub, who)


def test_a_member_removed_from_the_hub_group_loses_access_at_the_next_start(hub):
    """Does leaving the hub group remove the account from the Unix group and our link at the next start (while a
    server that was already running keeps the groups it started with, the documented limit)?"""
    cay = make_learner(hub, "cay")
    join(hub, cay)
    start(hub, cay)
    try:
        put_text(hub, cay, f"team-{TEAM}/cay.txt", "cay was a member\n")
        leave(hub, cay)
        # Unix groups are fixed when a process starts: the running server still reaches the folder.
        assert get_text(hub, cay, f"team-{TEAM}/cay.txt").status_code == 200
    finally:
        stop(hub, cay)
    start(hub, cay)
    try:
        assert not os.path.lexists(home(hub, cay) / f"team-{TEAM}")
        denied = as_account(cay, "ls", str(folder(hub)))
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        assert f"acad-{cay.name} left Unix group {UNIX_GROUP}" in hub.log_path.read_text()
        r = requests.get(f"{hub.url}/user/{cay.name}/academy/api/teams",
                         headers={"Authorization": f"token {cay.token}"}, timeout=60)
        assert r.status_code == 200 and r.json()["teams"] == []
    finally:
        stop(hub, cay)


def test_a_planted_link_is_not_followed_and_the_log_says_so(hub):
    """Is a symlink a learner planted at ~/team-<group> (pointing at another folder) left alone, logged, and nothing written there?"""
    dan = make_learner(hub, "dan")
    start(hub, dan)  # the account and home exist now; dan is in no team yet
    stop(hub, dan)
    victim = hub.workdir / "victim"
    victim.mkdir()
    victim.chmod(0o777)
    planted = as_account(dan, "ln", "-s", str(victim), str(home(hub, dan) / f"team-{TEAM}"))
    assert planted.returncode == 0, planted.stderr
    join(hub, dan)
    start(hub, dan)
    try:
        assert os.readlink(home(hub, dan) / f"team-{TEAM}") == str(victim)
        assert list(victim.iterdir()) == [] and oct(victim.stat().st_mode & 0o7777) == oct(0o777)
        assert victim.stat().st_uid == 0, "nothing was chowned through the link"
        log = hub.log_path.read_text()
        assert f"Team link of {dan.name} not made: team-{TEAM}: a link to '{victim}' is there (not our link)" in log
        # Access itself still comes from the group: the real folder is reachable by its path.
        assert as_account(dan, "ls", str(folder(hub))).returncode == 0
    finally:
        stop(hub, dan)


def test_disk_use_shows_in_the_learners_server_and_for_the_admin(hub):
    """Does a member's server report the team folder's disk use, and `academy teams` list it with its members?"""
    fay = make_learner(hub, "fay")
    join(hub, fay)
    start(hub, fay)
    try:
        blob = "x" * (3 * 2**20)
        put_text(hub, fay, f"team-{TEAM}/data.txt", blob)
        # The first ask measures (nothing cached yet); later asks reuse it for usage_refresh_seconds.
        r = requests.get(f"{hub.url}/user/{fay.name}/academy/api/teams",
                         headers={"Authorization": f"token {fay.token}"}, timeout=60)
        assert r.status_code == 200, r.text
        rows = {t["group"]: t for t in r.json()["teams"]}
        assert set(rows) == {TEAM} and rows[TEAM]["link"] == f"team-{TEAM}" and rows[TEAM]["complete"]
        assert rows[TEAM]["bytes"] >= 3 * 2**20, rows
        listed = subprocess.run([*ACADEMY, "--config", str(hub.config_path), "teams", "--json"],
                                capture_output=True, text=True, cwd=REPO, timeout=120)
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert row["group"] == TEAM and row["folder"] == "ok" and f"acad-{fay.name}" in row["members"]
        assert row["bytes"] >= 3 * 2**20 and row["complete"]
        page = hub.login("admin", hub.admin_password).get(service_url(hub, "teams"), timeout=120)
        assert page.status_code == 200 and 'id="teams"' in page.text
        assert TEAM in page.text and f"acad-{fay.name}" in page.text and "3.0 MiB" in page.text, page.text[-2000:]
        trainer = make_trainer(hub, "tt")
        assert trainer.session.get(service_url(hub, "teams"), timeout=120).status_code == 403
    finally:
        stop(hub, fay)
