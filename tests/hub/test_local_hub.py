"""A real hub (local backend) behind the real proxy: login, spawn, reach, isolate, stop."""
from __future__ import annotations

import html
import os
import pwd
import subprocess
import time

import pytest
import requests

from hub_harness import REPO, make_learner, running_hub

pytestmark = pytest.mark.hub

CURRICULUM = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def wait_stopped(hub, name, token, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not hub.api("GET", f"/users/{name}", token).json().get("servers"):
            return
        time.sleep(0.5)
    raise AssertionError(f"server of {name} still listed after {timeout} s")


def test_form_login_and_form_spawn_reach_jupyterlab(hub, learner):
    """Does a learner who logs in and submits the spawn form get a reachable server with the curriculum at home?"""
    form = learner.session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert form.status_code == 200
    assert 'name="profile"' in form.text and "CPU only" in form.text
    # Local backend: the form says that GPU settings do not apply here.
    assert "GPU, partition and reservation settings of a profile are ignored" in form.text
    r = learner.session.post(
        f"{hub.url}/hub/spawn",
        data={"profile": "cpu", "hours": "2", "_xsrf": learner.session.cookies.get("_xsrf")},
        timeout=60,
    )
    assert r.status_code == 200
    server = hub.wait_ready(learner.name, learner.token)
    assert server["user_options"] == {"profile": "cpu", "hours": 2}
    status = requests.get(
        f"{hub.url}/user/{learner.name}/api/status", headers={"Authorization": f"token {learner.token}"}, timeout=30
    )
    assert status.status_code == 200 and "kernels" in status.json()
    home = hub.state_dir / "homes" / learner.name / "ai-factory-academy"
    assert CURRICULUM, "the curriculum has no notebooks"
    assert sorted(p.name for p in home.glob("*.ipynb")) == CURRICULUM
    if os.geteuid() == 0:
        owner = pwd.getpwuid(home.stat().st_uid).pw_name
        assert owner == f"acad-{learner.name}", "learner files must belong to the learner's own account"
    r = hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    assert r.status_code in (202, 204)
    wait_stopped(hub, learner.name, learner.token)
    gone = requests.get(
        f"{hub.url}/user/{learner.name}/api/status",
        headers={"Authorization": f"token {learner.token}"}, timeout=30, allow_redirects=False,
    )
    assert gone.status_code != 200


def test_rest_api_spawn_with_options(hub, learner):
    """Does a spawn through the REST API with a valid profile and hours start a server?"""
    r = hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu", "hours": 1})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_ready(learner.name, learner.token)
    assert server["user_options"] == {"profile": "cpu", "hours": 1}
    hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    wait_stopped(hub, learner.name, learner.token)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"profile": "cpu", "cmd": "rm -rf /"}, "unknown option"),
        ({"profile": "no-such-profile"}, "unknown profile"),
        ({"profile": "cpu", "hours": 99}, "allows 1 to 8 hours"),
        ({"profile": "cpu", "hours": "2; touch /tmp/pwned"}, "whole number"),
        ({"profile": "h100-4"}, "limited to the groups"),
        ({"profile": ["cpu", "h100-1"]}, "exactly one value"),
    ],
)
def test_crafted_options_are_refused(hub, learner, options, message):
    """Is a crafted spawn request refused with a 400 that says why, and nothing started?"""
    r = hub.api("POST", f"/users/{learner.name}/server", learner.token, json=options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert not hub.api("GET", f"/users/{learner.name}", learner.token).json()["servers"]


def test_unauthenticated_requests_never_reach_content(hub, learner):
    """Do anonymous requests to the hub, its API and a user's server get no content?"""
    home = requests.get(f"{hub.url}/hub/home", timeout=30, allow_redirects=False)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]
    assert requests.get(f"{hub.url}/hub/api/users", timeout=30).status_code == 403
    hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu"})
    hub.wait_ready(learner.name, learner.token)
    try:
        # A browser-like visitor ends on the login page, whatever redirects are in between.
        r = requests.get(f"{hub.url}/user/{learner.name}/lab", timeout=30)
        assert r.url.startswith(f"{hub.url}/hub/login") and 'name="password"' in r.text
        assert "ai-factory-academy" not in r.text
        # An API client gets a refusal, not a listing.
        api = requests.get(f"{hub.url}/user/{learner.name}/api/contents", timeout=30, allow_redirects=False)
        assert api.status_code in (302, 403) and "ai-factory-academy" not in api.text
    finally:
        hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
        wait_stopped(hub, learner.name, learner.token)


def test_one_users_token_cannot_reach_another_users_server_or_files(hub, learner):
    """Does user A's token get 403/404 on user B's server and B's hub record, and are B's files closed to A?"""
    other = make_learner(hub, "other")
    for who in (learner, other):
        hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "cpu"})
        hub.wait_ready(who.name, who.token)
    try:
        for path in (f"/user/{other.name}/api/status", f"/user/{other.name}/api/contents/ai-factory-academy"):
            r = requests.get(hub.url + path, headers={"Authorization": f"token {learner.token}"}, timeout=30, allow_redirects=False)
            assert r.status_code in (403, 404), (path, r.status_code)
        assert hub.api("GET", f"/users/{other.name}", learner.token).status_code in (403, 404)
        assert hub.api("DELETE", f"/users/{other.name}/server", learner.token).status_code in (403, 404)
        if os.geteuid() == 0:
            # Real Unix permissions: A's account cannot read B's home.
            victim = hub.state_dir / "homes" / other.name / "ai-factory-academy" / CURRICULUM[0]
            proc = subprocess.run(
                ["runuser", "-u", f"acad-{learner.name}", "--", "/usr/bin/cat", str(victim)],
                capture_output=True, text=True,
            )
            assert proc.returncode != 0 and "Permission denied" in proc.stderr
    finally:
        for who in (learner, other):
            hub.api("DELETE", f"/users/{who.name}/server", who.token)
            wait_stopped(hub, who.name, who.token)


def test_oidc_login_page_offers_the_institutional_login(monkeypatch):
    """With auth.type oidc, does the real hub start and send the login button to the identity provider?"""
    monkeypatch.setenv("ACADEMY_TEST_OIDC_SECRET", "not-a-real-secret")
    oidc = {
        "client_id": "academy-test", "client_secret_env": "ACADEMY_TEST_OIDC_SECRET",
        "authorize_url": "https://idp.example.org/authorize", "token_url": "https://idp.example.org/token",
        "userdata_url": "https://idp.example.org/userinfo", "login_service": "SURF Research Access Management",
    }
    with running_hub("oidc", site={"auth": {"type": "oidc", "admin_users": ["admin"], "oidc": oidc}}) as h:
        assert h.admin_password is None, "SSO sites must not get a local admin password"
        page = requests.get(f"{h.url}/hub/login", timeout=30)
        assert "Sign in with SURF Research Access Management" in page.text
        r = requests.get(f"{h.url}/hub/oauth_login", timeout=30, allow_redirects=False)
        assert r.status_code == 302
        assert r.headers["Location"].startswith("https://idp.example.org/authorize?")
        assert "client_id=academy-test" in r.headers["Location"]


def stored_options(hub, name):
    """The user_options the hub database holds for NAME's default server, as the admin page reads them."""
    admin = hub.token_for(hub.login("admin", hub.admin_password), "admin", note="stored-options")
    model = hub.api("GET", f"/users/{name}?include_stopped_servers=1", admin).json()
    return model["servers"][""]["user_options"]


def test_refused_spawn_requests_store_nothing_on_any_path(hub, learner):
    """Is a refused request (REST, form, spawn-by-URL) answered 400 with why, without a traceback, keeping the last good options?"""
    hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu", "hours": 1})
    hub.wait_ready(learner.name, learner.token)
    hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
    wait_stopped(hub, learner.name, learner.token)
    good = {"profile": "cpu", "hours": 1}
    assert stored_options(hub, learner.name) == good
    log_start = len(hub.log_path.read_text(errors="replace"))
    xsrf = {"_xsrf": learner.session.cookies.get("_xsrf")}
    attempts = [
        ("REST", lambda: hub.api("POST", f"/users/{learner.name}/server", learner.token,
                                 json={"profile": "x; rm -rf /"}), "unknown profile"),
        ("form extra field", lambda: learner.session.post(
            f"{hub.url}/hub/spawn", data={"profile": "cpu", "hours": "2", "partition": "gpu", **xsrf}, timeout=60),
         "unknown option(s): partition"),
        ("form superscript hours", lambda: learner.session.post(
            f"{hub.url}/hub/spawn", data={"profile": "cpu", "hours": "²", **xsrf}, timeout=60), "whole number"),
        ("form full-width hours", lambda: learner.session.post(
            f"{hub.url}/hub/spawn", data={"profile": "cpu", "hours": "３", **xsrf}, timeout=60), "whole number"),
        ("spawn-by-URL extra field", lambda: learner.session.get(
            f"{hub.url}/hub/spawn/{learner.name}?profile=cpu&hours=1&cmd=id", timeout=60), "unknown option(s): cmd"),
    ]
    for what, send, message in attempts:
        r = send()
        assert r.status_code == 400, (what, r.status_code, r.text[-500:])
        assert message in (r.json()["message"] if what == "REST" else html.unescape(r.text)), what
        assert not hub.api("GET", f"/users/{learner.name}", learner.token).json()["servers"], what
        assert stored_options(hub, learner.name) == good, what
    log = hub.log_path.read_text(errors="replace")[log_start:]
    assert "Refused spawn request" in log and "Traceback" not in log, log[-3000:]
