"""Warm start against a real hub: participants' servers start before anyone logs in, failures are kept and retried."""
from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import pytest
import requests

from testbed.accounts import CREATED
from testbed.hub import _RUN
from academy.workshop.warmstart import WarmStart, WarmStartError

pytestmark = pytest.mark.hub


def admin_token(hub) -> str:
    s = hub.login("admin", hub.admin_password)
    return hub.token_for(s, "admin", note="warm-start test admin")


def participants(hub, token, group: str, names: list[str]) -> dict[str, str]:
    """Native accounts that exist as hub users and group members before anyone logs in."""
    CREATED.extend(names)
    passwords = hub.add_accounts(*names)
    # `academy accounts add` makes them hub users at once (no login needed first).
    assert all(hub.api("GET", f"/users/{n}", token).status_code == 200 for n in names)
    hub.api("POST", f"/groups/{group}", token)
    assert hub.api("POST", f"/groups/{group}/users", token, json={"users": names}).status_code == 200
    return passwords


def scoped_token(hub, token, group: str) -> str:
    """What the trainer service holds: start/read servers and activity, only for the participant group."""
    r = hub.api("POST", "/users/admin/tokens", token, json={
        "note": "warm start", "expires_in": 3600,
        "scopes": [f"start:servers!group={group}", f"read:servers!group={group}", f"users:activity!group={group}"]})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def login_to_lab(hub, name: str, password: str) -> requests.Response:
    """Log in through the form with next=the user's lab, following redirects as a browser does."""
    s = requests.Session()
    nxt = "/hub/user-redirect/lab"
    s.get(f"{hub.url}/hub/login", params={"next": nxt}, timeout=30)
    return s.post(f"{hub.url}/hub/login", params={"next": nxt}, timeout=60,
                  data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf", "")})


def test_warm_start_runs_servers_before_login_and_retries_a_failure(hub):
    """Are servers running before anyone logs in, does login land in JupyterLab without a spawn page,
    is a participant refused the profile recorded with the reason, and does a retry after the fix succeed?"""
    token = admin_token(hub)
    group = f"wsw{_RUN}"
    ok_name, bad_name = f"wsa-{_RUN}", f"wsb-{_RUN}"
    passwords = participants(hub, token, group, [ok_name, bad_name])
    hub.api("POST", "/groups/workshop", token)
    assert hub.api("POST", "/groups/workshop/users", token, json={"users": [ok_name]}).status_code == 200
    outsider = f"wsc-{_RUN}"
    CREATED.append(outsider)
    hub.api("POST", "/users", token, json={"usernames": [outsider]})

    changes = []

    async def go():
        async with WarmStart(f"{hub.url}/hub/api", scoped_token(hub, token, group), [ok_name, bad_name, outsider],
                             {"profile": "workshop", "hours": 1}, concurrent_spawn_limit=1,
                             on_change=lambda st: changes.append((st.username, st.state))) as warm:
            await warm.run()
            first = {n: (s.state, s.reason) for n, s in warm.status.items()}
            assert hub.api("POST", f"/groups/workshop/users", token, json={"users": [bad_name]}).status_code == 200
            retried = await warm.retry(bad_name)
            return warm, first, retried

    warm, first, retried = asyncio.run(go())
    assert first[ok_name][0] == "running", first
    assert first[bad_name][0] == "failed" and "workshop" in first[bad_name][1], first
    assert first[outsider][0] == "failed" and "participant group" in first[outsider][1], first
    assert retried.state == "running" and retried.attempts == 2
    assert (ok_name, "started") in changes and (ok_name, "running") in changes
    # The outsider's server was never started: the token's group filter held.
    assert not hub.api("GET", f"/users/{outsider}", token).json().get("servers")

    for name in (ok_name, bad_name):
        server = hub.api("GET", f"/users/{name}", token).json()["servers"][""]
        assert server["ready"] and server["user_options"]["profile"] == "workshop"
        r = login_to_lab(hub, name, passwords[name])
        assert r.status_code == 200 and r.url.endswith(f"/user/{name}/lab"), (r.status_code, r.url)
        # JupyterHub's user-redirect passes through /hub/spawn/<name>, which for a running server is a bare
        # redirect; what must not happen is a page: the options form or the spawn-pending page.
        pages = [(h.status_code, urlparse(h.url).path) for h in r.history]
        assert all(300 <= code < 400 for code, _ in pages), pages
        assert not any(path.startswith("/hub/spawn-pending") for _, path in pages), pages
        status = requests.get(f"{hub.url}/user/{name}/api/status", cookies=None, timeout=30,
                              headers={"Authorization": f"token {token}"})
        assert status.status_code == 200


def test_keep_alive_moves_last_activity_forward(hub):
    """Does a keep-alive touch advance a warmed server's last_activity, so the idle culler leaves it?"""
    token = admin_token(hub)
    group = f"wsk{_RUN}"
    name = f"wsk-{_RUN}"
    participants(hub, token, group, [name])

    async def go():
        async with WarmStart(f"{hub.url}/hub/api", scoped_token(hub, token, group), [name],
                             {"profile": "cpu", "hours": 1}) as warm:
            await warm.run()
            before = hub.api("GET", f"/users/{name}", token).json()["servers"][""]["last_activity"]
            await asyncio.sleep(1.1)
            touched = await warm.touch()
            after = hub.api("GET", f"/users/{name}", token).json()["servers"][""]["last_activity"]
            return warm.status[name].state, touched, before, after

    state, touched, before, after = asyncio.run(go())
    assert state == "running" and touched == [name]
    assert after > before, (before, after)
    hub.api("DELETE", f"/users/{name}/server", token)


def test_options_outside_the_strict_path_are_refused_before_anything_starts():
    """Is an extra spawn option (that could reach a batch script) or a nonsense limit refused at once?"""
    with pytest.raises(WarmStartError):
        WarmStart("http://127.0.0.1:1/hub/api", "t", ["a"], {"profile": "cpu", "partition": "gpu"})
    with pytest.raises(WarmStartError):
        WarmStart("http://127.0.0.1:1/hub/api", "t", ["a"], {"profile": "cpu"}, concurrent_spawn_limit=0)
    with pytest.raises(WarmStartError):
        WarmStart("http://127.0.0.1:1/hub/api", "t", ["a", "a"], {"profile": "cpu"})
