"""A real hub (local backend) behind the real proxy: login, spawn, reach, isolate, stop."""
from __future__ import annotations

import html
import os
import pwd
import re
import subprocess
import time

import pytest
import requests

from academy.profiles import load_profiles
from testbed.hub import REPO, make_learner
from support.workshop import unix_account
from support.hub import running_hub

pytestmark = pytest.mark.hub

CURRICULUM = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
PROFILES = load_profiles(REPO / "spawner_config" / "profiles.yaml")


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


def listening_ports(uid: int) -> set[int]:
    """TCP ports the account ``uid`` listens on (the kernel's own table: no tool needed)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[7]) == uid:  # 0A: LISTEN
                found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return found


def test_rest_api_spawn_with_options(hub, learner):
    """Does a spawn through the REST API with a valid profile and hours start a server, listening on a port of the
    hub's own range (local.server_ports), outside the ephemeral ports a kernel's sockets could take?"""
    r = hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu", "hours": 1})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_ready(learner.name, learner.token)
    assert server["user_options"] == {"profile": "cpu", "hours": 1}
    uid = unix_account(learner.name).pw_uid
    assert uid != os.getuid(), "the learner's server runs as their own account"
    listening = listening_ports(uid)
    assert listening and all(20000 <= port <= 29999 for port in listening), listening
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
        ("form crafted profile", lambda: learner.session.post(
            f"{hub.url}/hub/spawn", data={"profile": "x; rm -rf /", "hours": "1", **xsrf}, timeout=60),
         "unknown profile 'x; rm -rf /'"),
        ("form Arabic-Indic hours", lambda: learner.session.post(
            f"{hub.url}/hub/spawn", data={"profile": "cpu", "hours": "٣", **xsrf}, timeout=60), "whole number"),
        ("spawn-by-URL crafted profile", lambda: learner.session.get(
            f"{hub.url}/hub/spawn/{learner.name}", params={"profile": "x; rm -rf /"}, timeout=60),
         "unknown profile 'x; rm -rf /'"),
        ("spawn-by-URL opt- crafted profile", lambda: learner.session.get(
            f"{hub.url}/hub/spawn/{learner.name}", params={"opt-profile": "x; rm -rf /"}, timeout=60),
         "unknown profile 'x; rm -rf /'"),
    ]
    for what, send, message in attempts:
        r = send()
        assert r.status_code == 400, (what, r.status_code, r.text[-500:])
        assert message in (r.json()["message"] if what == "REST" else html.unescape(r.text)), what
        assert not hub.api("GET", f"/users/{learner.name}", learner.token).json()["servers"], what
        assert stored_options(hub, learner.name) == good, what
    log = hub.log_path.read_text(errors="replace")[log_start:]
    assert "Refused spawn request" in log and "Traceback" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("[E")]
    assert not errors, "a refusal is not a hub error:\n" + "\n".join(errors)


def options_or_none(hub, name):
    """The stored user_options of NAME's default server; None when the hub holds no such server."""
    admin = hub.token_for(hub.login("admin", hub.admin_password), "admin", note="stored-options")
    model = hub.api("GET", f"/users/{name}?include_stopped_servers=1", admin).json()
    return model["servers"].get("", {}).get("user_options")


def test_a_first_refused_request_stores_nothing(hub, learner):
    """For a learner who never started a server, does a refused request (REST, form, URL) leave no options behind?"""
    xsrf = {"_xsrf": learner.session.cookies.get("_xsrf")}
    attempts = [
        ("form", lambda: learner.session.post(
            f"{hub.url}/hub/spawn", data={"profile": "x; rm -rf /", "hours": "1", **xsrf}, timeout=60)),
        ("URL", lambda: learner.session.get(f"{hub.url}/hub/spawn/{learner.name}?profile=cpu&cmd=id", timeout=60)),
        ("REST", lambda: hub.api("POST", f"/users/{learner.name}/server", learner.token,
                                 json={"profile": "x; rm -rf /"})),
    ]
    for what, send in attempts:
        assert send().status_code == 400, what
        assert options_or_none(hub, learner.name) in (None, {}), what


def checked_profile(page: str) -> list[str]:
    """The slugs of the profile radio buttons a spawn form preselects."""
    radios = re.findall(r"<input[^>]*name=\"profile\"[^>]*>", page)
    return [re.search(r'value="([^"]+)"', r).group(1) for r in radios if re.search(r"\bchecked\b", r)]


def test_the_form_preselects_the_profile_made_for_the_learners_group(hub, learner):
    """Does a member of a group with its own profile find that profile checked (and its hours), and others CPU only?"""
    assert checked_profile(learner.session.get(f"{hub.url}/hub/spawn", timeout=30).text) == ["cpu"]
    admin = hub.token_for(hub.login("admin", hub.admin_password), "admin", note="groups")
    if hub.api("GET", "/groups/sme", admin).status_code == 404:
        assert hub.api("POST", "/groups/sme", admin).status_code == 201
    assert hub.api("POST", "/groups/sme/users", admin, json={"users": [learner.name]}).status_code == 200
    try:
        page = learner.session.get(f"{hub.url}/hub/spawn", timeout=30).text
        assert checked_profile(page) == ["h100-4"], page
        default_hours = {p.slug: p.default_hours for p in PROFILES}["h100-4"]
        assert re.search(rf'<option value="{default_hours}"\s+selected>', page), "the hours follow the preselected profile"
    finally:
        hub.api("DELETE", "/groups/sme/users", admin, json={"users": [learner.name]})


def login_error(page: str) -> str:
    m = re.search(r'<p class="login_error">\s*(.*?)\s*</p>', page, re.S)
    return html.unescape(m.group(1)) if m else ""


def try_login(hub, name, password):
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    return s.post(f"{hub.url}/hub/login", timeout=60,
                  data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf", "")})


def test_a_locked_login_says_so_for_accounts_and_unknown_names_alike(hub, learner):
    """After five wrong passwords, does the login page say the account is locked and for how long, even to the
    right password, with the same words for a name that has no account, and one WARNING line in the log?"""
    log_start = len(hub.log_path.read_text(errors="replace"))
    unknown = f"nosuch-{learner.name}"[:27]
    seen = {}
    for name in (learner.name, unknown):
        errors = []
        for _ in range(5):
            r = try_login(hub, name, "not-the-password")
            assert r.status_code == 403 and not r.url.endswith("/hub/home")
            errors.append(login_error(r.text))
        assert errors[:4] == ["Invalid username or password."] * 4, errors
        seen[name] = errors
    locked = try_login(hub, learner.name, learner.password)
    assert locked.status_code == 403 and not locked.url.endswith("/hub/home"), "the right password waits for the lock too"
    assert re.fullmatch(r"Too many failed logins: this account is locked\. Try again in \d+ seconds\.",
                        login_error(locked.text)), login_error(locked.text)
    # The fifth failure already says it; an unknown name hears exactly the same.
    assert seen[learner.name][4] == seen[unknown][4] == "Too many failed logins: this account is locked. Try again in 60 seconds."
    # Only the seconds left may differ (by the few the other name's attempts took).
    words = [re.sub(r"\d+", "N", login_error(r.text)) for r in (locked, try_login(hub, unknown, "anything"))]
    assert words[0] == words[1], words
    log = hub.log_path.read_text(errors="replace")[log_start:]
    ours = [line for line in log.splitlines() if "Login locked:" in line]
    assert len(ours) == 2 and all(line.startswith("[W") for line in ours), ours
    assert f"Login locked: {learner.name} after 5 failed logins, for 60 s, from " in ours[0]
    assert f"Login locked: {unknown} after 5 failed logins, for 60 s (no such account), from " in ours[1]
    assert "Traceback" not in log, log[-3000:]


def test_the_hubs_database_commits_without_waiting_for_the_disk(hub):
    """Does the running hub's SQLite database use a WAL journal (hub.db_fast_commits, on by default)?"""
    import sqlite3

    with sqlite3.connect(hub.state_dir / "jupyterhub.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
