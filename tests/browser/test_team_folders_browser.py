"""A team folder as a member sees it in JupyterLab (Chromium): the link in the file browser, disk use in the status bar."""
from __future__ import annotations

import os
import random
import shutil
import string
import subprocess

import pytest
import requests

from support.hub import running_hub
from support.skip import need
from support.workshop import admin_token
from testbed.hub import make_learner
from support.pages import logged_in_page
from test_browser import browser, shot  # noqa: F401 (the module's Chromium fixture)

pytestmark = pytest.mark.browser

TEAM = "teamb" + "".join(random.choices(string.ascii_lowercase, k=5))


@pytest.fixture(scope="module")
def hub():
    need(os.geteuid() == 0 and shutil.which("runuser") is not None, "root (team folders need real Unix groups)")
    with running_hub("teamsbrowser", {"team_folders": {"groups": [TEAM], "usage_refresh_seconds": 30, "warn_gib": 0.001}}) as h:
        assert h.api("POST", f"/groups/{TEAM}", admin_token(h)).status_code == 201
        yield h
    subprocess.run(["groupdel", f"acadteam-{TEAM}"], capture_output=True)


def test_the_status_bar_shows_the_team_folders_disk_use(hub, browser):  # noqa: F811
    """Does a member see ~/team-<group> in the file browser and its disk use, past the warning size, in the status bar?"""
    who = make_learner(hub, "teamview")
    assert hub.api("POST", f"/groups/{TEAM}/users", admin_token(hub), json={"users": [who.name]}).status_code == 200
    r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "cpu", "hours": 1})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(who.name, who.token, timeout=240)
    try:
        put = requests.put(f"{hub.url}/user/{who.name}/api/contents/team-{TEAM}/data.txt",
                           headers={"Authorization": f"token {who.token}"}, timeout=60,
                           json={"type": "file", "format": "text", "content": "x" * (2 * 2**20)})
        assert put.status_code in (200, 201), put.text
        page = logged_in_page(browser, hub, who)
        page.goto(f"{hub.url}/user/{who.name}/lab")
        item = page.locator(".academy-teams")
        item.wait_for(state="visible", timeout=120_000)
        assert item.inner_text().startswith(f"Team {TEAM} 2.0 MiB"), item.inner_text()
        assert "academy-teams-warn" in (item.get_attribute("class") or ""), "2 MiB is past warn_gib 0.001"
        page.locator(".jp-DirListing-itemText", has_text=f"team-{TEAM}").first.wait_for(timeout=60_000)
        shot(page, "team-folders-01-status-bar")
        page.close()
    finally:
        hub.api("DELETE", f"/users/{who.name}/server", who.token)
