"""Team folders under Slurm: the folder on the (here: one machine's) shared filesystem, members' jobs share it.

The one-node cluster stands in for a site whose groups this machine's /etc/group holds
(``manage_unix_groups``: the hub adds the account before ``sbatch``, so the job starts with the group).
"""
from __future__ import annotations

import os
import pwd
import random
import shutil
import string
import subprocess

import pytest
import requests

from support.slurm import make_learners, new_username, slurm_site, spawn, start_hub, wait_no_server
from support.workshop import admin_token
from testbed.hub import shared_tmpdir

pytestmark = pytest.mark.slurm

TEAM = "teams" + "".join(random.choices(string.ascii_lowercase, k=5))


@pytest.fixture(scope="module")
def team_hub(slurm_cluster):
    shared = shared_tmpdir("teamroot")  # the site's shared filesystem
    site = slurm_site()
    site["team_folders"] = {"root": str(shared / "teams"), "groups": [TEAM]}
    hub = start_hub(site)
    try:
        assert hub.api("POST", f"/groups/{TEAM}", admin_token(hub)).status_code == 201
        hub.team_root = shared / "teams"
        yield hub
    finally:
        hub.stop()
        shutil.rmtree(hub.workdir, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)
        subprocess.run(["groupdel", f"acadteam-{TEAM}"], capture_output=True)


def test_members_jobs_share_the_folder_and_a_non_member_cannot_list_it(team_hub):
    """Do two members' Slurm jobs read and edit each other's files in the team folder, and is a non-member shut out?"""
    ann, bob, eve = make_learners(team_hub, [new_username("tma"), new_username("tmb"), new_username("tme")])
    r = team_hub.api("POST", f"/groups/{TEAM}/users", admin_token(team_hub), json={"users": [ann.name, bob.name]})
    assert r.status_code == 200, r.text
    for who in (ann, bob):
        spawn(team_hub, who, {"profile": "cpu", "hours": 1}, timeout=180)
    try:
        folder = team_hub.team_root / TEAM
        assert oct(folder.stat().st_mode & 0o7777) == oct(0o2770)
        for who in (ann, bob):  # made as the learner, in the home Slurm runs the job in
            link = os.path.join(pwd.getpwnam(who.name).pw_dir, f"team-{TEAM}")
            assert os.readlink(link) == str(folder) and os.lstat(link).st_uid == pwd.getpwnam(who.name).pw_uid

        def contents(who, method, path, **kw):
            return requests.request(method, f"{team_hub.url}/user/{who.name}/api/contents/{path}",
                                    headers={"Authorization": f"token {who.token}"}, timeout=60, **kw)

        put = contents(ann, "PUT", f"team-{TEAM}/notes.txt", json={"type": "file", "format": "text", "content": "from ann's job\n"})
        assert put.status_code in (200, 201), put.text
        edit = contents(bob, "PUT", f"team-{TEAM}/notes.txt",
                        json={"type": "file", "format": "text", "content": "from ann's job\nand bob's\n"})
        assert edit.status_code in (200, 201), edit.text
        got = contents(ann, "GET", f"team-{TEAM}/notes.txt", params={"content": "1", "format": "text"})
        assert got.json()["content"] == "from ann's job\nand bob's\n"
        denied = subprocess.run(["runuser", "-u", eve.name, "--", "ls", str(folder)], capture_output=True, text=True)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
    finally:
        for who in (ann, bob):
            team_hub.api("DELETE", f"/users/{who.name}/server", who.token)
        for who in (ann, bob):
            wait_no_server(team_hub, who, 120)


@pytest.fixture(scope="module")
def site_groups_hub(slurm_cluster):
    """A hub that leaves Unix groups to the site (manage_unix_groups off), as with LDAP/sssd."""
    team = "teamd" + "".join(random.choices(string.ascii_lowercase, k=5))
    subprocess.run(["groupadd", f"acadteam-{team}"], check=True)  # the site's directory, made by the site
    shared = shared_tmpdir("teamroot")
    site = slurm_site()
    site["team_folders"] = {"root": str(shared / "teams"), "groups": [team], "manage_unix_groups": False}
    hub = start_hub(site)
    try:
        assert hub.api("POST", f"/groups/{team}", admin_token(hub)).status_code == 201
        hub.team, hub.team_root = team, shared / "teams"
        yield hub
    finally:
        hub.stop()
        shutil.rmtree(hub.workdir, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)
        subprocess.run(["groupdel", f"acadteam-{team}"], capture_output=True)


def test_with_the_sites_own_groups_only_its_members_get_the_link(site_groups_hub):
    """With manage_unix_groups off, does a member of the site's Unix group get folder and link (and write from the job),
    while a hub-group member the site's group lacks gets no link, a log line, and no change to /etc/group?"""
    hub, team = site_groups_hub, site_groups_hub.team
    ann, bob = make_learners(hub, [new_username("tsa"), new_username("tsb")])
    subprocess.run(["gpasswd", "--add", ann.name, f"acadteam-{team}"], check=True, capture_output=True)
    assert hub.api("POST", f"/groups/{team}/users", admin_token(hub), json={"users": [ann.name, bob.name]}).status_code == 200
    for who in (ann, bob):
        spawn(hub, who, {"profile": "cpu", "hours": 1}, timeout=180)
    try:
        folder = hub.team_root / team
        assert oct(folder.stat().st_mode & 0o7777) == oct(0o2770)
        assert os.readlink(os.path.join(pwd.getpwnam(ann.name).pw_dir, f"team-{team}")) == str(folder)
        assert not os.path.lexists(os.path.join(pwd.getpwnam(bob.name).pw_dir, f"team-{team}"))
        assert f"{bob.name} is in the hub group but not in the Unix group acadteam-{team}" in hub.log_path.read_text()
        import grp

        assert grp.getgrnam(f"acadteam-{team}").gr_mem == [ann.name], "the hub must not edit the site's group"
        put = requests.put(f"{hub.url}/user/{ann.name}/api/contents/team-{team}/x.txt",
                           headers={"Authorization": f"token {ann.token}"}, timeout=60,
                           json={"type": "file", "format": "text", "content": "from the job\n"})
        assert put.status_code in (200, 201), put.text
        assert (folder / "x.txt").stat().st_gid == grp.getgrnam(f"acadteam-{team}").gr_gid
    finally:
        for who in (ann, bob):
            hub.api("DELETE", f"/users/{who.name}/server", who.token)
        for who in (ann, bob):
            wait_no_server(hub, who, 120)
