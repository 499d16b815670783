"""The workshop lifecycle through the service and the CLI, on a real hub: warm start, teardown, purge.

The hub runs the service with a 2 s scheduler tick, warm starts 5 minutes ahead and a retention
of about 26 s, so the scheduled work happens within seconds instead of hours.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tarfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from support.skip import need
from testbed.hub import ACADEMY, REPO, _RUN, make_learner
from support.hub import running_hub
from support.workshop import admin_session, admin_token, post_form, service_url, sheet_credentials, track, unix_account, workshop_form
from academy.workshop.homearchive import archive_path

pytestmark = pytest.mark.hub
RETENTION_DAYS = 0.0003  # about 26 s
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(scope="module")
def hub():
    need(os.geteuid() == 0, "root (participants' Unix accounts and homes on the local backend)")
    with running_hub("wslife", {"workshops": {"tick_seconds": 2, "warm_start_minutes": 5,
                                              "retention_days": RETENTION_DAYS}}) as h:
        yield h


def _at(minutes: float) -> str:
    return (datetime.now(AMS) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


def lifecycle(session, hub, slug: str, tolerant: bool = False) -> dict | None:
    r = session.get(service_url(hub, f"api/workshops/{slug}/lifecycle"), timeout=60)
    if tolerant and r.status_code != 200:
        return None  # the service is restarting
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(what: str, check, timeout: float = 180, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def audit_rows(admin, hub, slug: str) -> list[list[str]]:
    import csv
    import io

    text = admin.get(service_url(hub, "audit.csv"), timeout=60).text
    return [row for row in csv.reader(io.StringIO(text)) if len(row) > 3 and row[3] == slug]


def login_status(hub, name: str, password: str) -> int:
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    return s.post(f"{hub.url}/hub/login", data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf", "")},
                  timeout=30, allow_redirects=False).status_code


def service_pid(hub) -> int | None:
    """The pid of this hub's workshop service (found by its config path in the environment)."""
    want = f"ACADEMY_CONFIG={hub.config_path}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"academy.workshop.service" in (entry / "cmdline").read_bytes() and want in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


def cli(hub, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ACADEMY, "--config", str(hub.config_path), "workshop", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def test_failed_warm_start_shows_its_reason_and_retry_starts_it(hub):
    """Does "Warm start now" start each participant's own server, show a participant the hub refuses as failed with the
    reason, and does Retry start it once the cause is fixed; does teardown leave an existing hub user their account?"""
    admin, token = admin_session(hub), admin_token(hub)
    slug = f"wsf{_RUN}"
    existing = make_learner(hub, "wsx")
    track(f"{slug}-01")
    r = post_form(admin, hub, "new", workshop_form(slug, count="1", usernames=existing.name))
    assert r.status_code == 200, r.text[-2000:]
    # The admin deletes the existing user in the admin page by mistake: the hub answers 404 to its start.
    assert hub.api("DELETE", f"/users/{existing.name}", token).status_code == 204
    assert post_form(admin, hub, f"w/{slug}/warmstart", {}).status_code == 200
    done = lambda: (s := lifecycle(admin, hub, slug)) and len(s["warm"]) == 2 and all(  # noqa: E731
        e["state"] in ("running", "failed") for e in s["warm"]) and s
    states = {e["username"]: e for e in wait_for("the warm start", done)["warm"]}
    assert states[f"{slug}-01"]["state"] == "running", states
    assert states[existing.name]["state"] == "failed" and "not a hub user" in states[existing.name]["reason"], states
    page = admin.get(service_url(hub, f"w/{slug}"), timeout=60).text
    assert f'data-user="{existing.name}" data-state="failed"' in page and 'class="btn btn-sm btn-outline-warning retry"' in page
    server = hub.api("GET", f"/users/{slug}-01", token).json()["servers"][""]
    assert server["ready"] and server["user_options"]["profile"] == "cpu"

    refused = post_form(admin, hub, f"w/{slug}/warmstart", {"username": "root"})
    assert refused.status_code == 400 and "is not a participant" in refused.text.replace("&#39;", "'")
    assert hub.api("POST", f"/users/{existing.name}", token).status_code == 201  # the admin puts the account back
    assert post_form(admin, hub, f"w/{slug}/warmstart", {"username": existing.name}).status_code == 200
    again = wait_for("the retry", lambda: (e := {x["username"]: x for x in lifecycle(admin, hub, slug)["warm"]}[existing.name])
                     and e["state"] in ("running", "failed") and e)
    assert again["state"] == "running" and again["attempts"] == 2, again
    assert hub.api("GET", f"/users/{existing.name}", token).json()["servers"][""]["ready"]
    actions = Counter((row[2], row[4]) for row in audit_rows(admin, hub, slug))
    assert actions[("warmstart.failed", existing.name)] == 1 and actions[("warmstart.running", existing.name)] == 1

    # The CLI's teardown: the new account is blocked and archived, the existing user only loses the server.
    out = cli(hub, "teardown", slug)
    assert out.returncode == 0 and "teardown complete" in out.stdout, out.stdout + out.stderr
    for name in (f"{slug}-01", existing.name):
        assert not hub.api("GET", f"/users/{name}", token).json()["servers"]
    steps = lifecycle(admin, hub, slug)["steps"]
    assert steps[existing.name] == ["stop"] and steps[f"{slug}-01"] == ["block", "unshare", "stop", "archive"], steps
    assert archive_path(hub.state_dir, slug, f"{slug}-01").exists()
    assert not archive_path(hub.state_dir, slug, existing.name).exists()
    assert cli(hub, "teardown", slug).stdout.strip().endswith("had finished already")


def test_scheduled_warm_start_teardown_killed_midway_resumes_once_and_purge_waits_for_the_retention(hub):
    """Is the warm start begun by the service itself before the start; does a teardown killed mid-archive (the service
    SIGKILLed) finish after the hub restarts the service, each step once; is purge refused before the retention and
    does it then remove hub users, Unix accounts, homes and archives?"""
    admin, token = admin_session(hub), admin_token(hub)
    slug = f"wsl{_RUN}"
    names = [f"{slug}-01", f"{slug}-02"]
    track(*names)
    start_text = _at(3)
    r = post_form(admin, hub, "new", workshop_form(slug, count="2", start=start_text, end=_at(60)))
    assert r.status_code == 200, r.text[-2000:]
    creds = sheet_credentials(r.text)
    start = datetime.strptime(start_text, "%Y-%m-%dT%H:%M").replace(tzinfo=AMS)

    running = lambda: (s := lifecycle(admin, hub, slug)) and len(s["warm"]) == 2 and all(  # noqa: E731
        e["state"] == "running" for e in s["warm"]) and s
    status = wait_for("the scheduled warm start", running)
    assert datetime.now(AMS) < start, "the warm start must be done before the start for this test to mean anything"
    assert datetime.fromisoformat(status["warm_begun"]) < start
    begun = [row for row in audit_rows(admin, hub, slug) if row[2] == "warmstart.begin"]
    assert len(begun) == 1 and begun[0][1] == "academy (scheduled)", begun
    for name in names:
        assert hub.api("GET", f"/users/{name}", token).json()["servers"][""]["ready"]
    page = admin.get(service_url(hub, f"w/{slug}"), timeout=60).text
    assert "2 running, 0 starting, 0 pending, 0 failed" in page
    assert post_form(admin, hub, f"w/{slug}/announce", {"text": "Last call: save your work"}).status_code == 200

    # A big home makes the archive step take a while, so the kill lands inside it.
    home = Path(unix_account(names[0]).pw_dir)
    with open(home / "data.bin", "wb") as fh:
        fh.write(os.urandom(64 * 1024 * 1024))
    (home / "notes.txt").write_text("participant's work")
    confirm = admin.get(service_url(hub, f"w/{slug}/teardown"), timeout=60)
    assert confirm.status_code == 200 and "Tear down now" in confirm.text
    unconfirmed = post_form(admin, hub, f"w/{slug}/teardown", {"confirm": "yes"})
    assert unconfirmed.status_code == 400 and lifecycle(admin, hub, slug)["steps"] == {}
    pid = service_pid(hub)
    assert pid
    assert post_form(admin, hub, f"w/{slug}/teardown", {"confirm": slug}).status_code == 200
    archives = archive_path(hub.state_dir, slug, names[0]).parent
    wait_for("the archive step", lambda: archives.is_dir() and any(p.name.startswith(f".{names[0]}.tar.gz") for p in archives.iterdir()),
             timeout=120, every=0.05)
    os.kill(pid, signal.SIGKILL)
    assert not lifecycle_torn_down(hub, slug)

    # The hub restarts its service; the restarted service resumes the teardown on its first round.
    wait_for("the restarted service", lambda: (p := service_pid(hub)) and p != pid, timeout=120)
    torn = wait_for("the resumed teardown", lambda: (s := lifecycle(admin, hub, slug, True)) and s["torn_down_at"] and s,
                    timeout=180, every=1)
    rows = audit_rows(admin, hub, slug)
    steps = Counter((row[4], row[5]) for row in rows if row[2] == "teardown.step")
    expected = {(n, s) for n in names for s in ("block", "unshare", "stop", "archive")} | {("", "coursework")}
    assert set(steps) == expected and set(steps.values()) == {1}, steps
    assert [row[2] for row in rows].count("teardown.done") == 1
    assert [row[2] for row in rows].count("warmstart.begin") == 1, "the restarted service warmed again"
    assert any(row[2] == "coursework.final-grading" and "no released assignments" in row[5] for row in rows)
    assert cli(hub, "teardown", slug).stdout.strip().endswith("had finished already")
    for name in names:
        assert not hub.api("GET", f"/users/{name}", token).json()["servers"]
        assert login_status(hub, name, creds[name]) == 403
        st = archive_path(hub.state_dir, slug, name).stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)
    assert sorted(p.name for p in archives.iterdir()) == sorted(f"{n}.tar.gz" for n in names), "a killed run's temp file is left"
    with tarfile.open(archive_path(hub.state_dir, slug, names[0])) as tar:
        notes = next(m for m in tar.getmembers() if m.name.endswith("/notes.txt"))
        assert tar.extractfile(notes).read() == b"participant's work"
    page = admin.get(service_url(hub, f"w/{slug}"), timeout=60).text
    assert 'id="torn-down"' in page and 'id="purge-button" disabled' in page

    # Purge: refused during the retention (page and CLI), done after it.
    early = post_form(admin, hub, f"w/{slug}/purge", {"confirm": slug})
    assert early.status_code == 400 and "retention" in early.text
    out = cli(hub, "purge", slug)
    assert out.returncode == 2 and "may be purged from" in out.stderr, out.stderr
    assert hub.api("GET", f"/users/{names[0]}", token).status_code == 200
    purge_from = datetime.fromisoformat(torn["purge_from"])
    time.sleep(max(0.0, (purge_from - datetime.now(AMS)).total_seconds()) + 1)
    assert post_form(admin, hub, f"w/{slug}/purge", {"confirm": slug}).status_code == 200
    wait_for("the purge", lambda: lifecycle(admin, hub, slug)["purged_at"], timeout=120)
    for name in names:
        assert hub.api("GET", f"/users/{name}", token).status_code == 404
        assert unix_account(name) is None
        assert not (hub.state_dir / "homes" / name).exists()
        assert not archive_path(hub.state_dir, slug, name).exists()
        assert login_status(hub, name, creds[name]) == 403
    assert 'id="purged"' in admin.get(service_url(hub, f"w/{slug}"), timeout=60).text
    # The service's own data goes too: each account's dashboard events, the workshop's announcements.
    purged = {(row[4], row[5]) for row in audit_rows(admin, hub, slug) if row[2] == "purge.step"}
    assert {(n, "purge-events") for n in names} | {("", "purge-announcements")} <= purged, purged
    import sqlite3

    with sqlite3.connect(hub.state_dir / "workshops.sqlite") as db:
        assert db.execute("select count(*) from announcements where workshop = ?", (slug,)).fetchone()[0] == 0


def lifecycle_torn_down(hub, slug: str) -> bool:
    import sqlite3

    with sqlite3.connect(hub.state_dir / "workshops.sqlite") as db:
        return db.execute("select torn_down_at from workshops where slug = ?", (slug,)).fetchone()[0] is not None


def test_lifecycle_actions_are_for_the_workshops_own_trainers(hub):
    """Does another workshop's trainer get 403 on this one's warm start, teardown, purge and lifecycle API, a participant
    403 too, and a POST without the XSRF token 403, with nothing started or torn down?"""
    from support.workshop import make_trainer, xsrf

    a, b = make_trainer(hub, "tla"), make_trainer(hub, "tlb")
    slug = f"wsz{_RUN}"
    track(f"{slug}-01")
    creds = sheet_credentials(post_form(a.session, hub, "new", workshop_form(slug, count="1")).text)
    token_b = xsrf(b.session, hub, "new")
    for path, data in (("warmstart", {}), ("warmstart", {"username": f"{slug}-01"}), ("teardown", {"confirm": slug}),
                       ("purge", {"confirm": slug})):
        r = b.session.post(service_url(hub, f"w/{slug}/{path}"), data={"_xsrf": token_b, **data}, timeout=60)
        assert r.status_code == 403, (path, r.status_code)
    for path in (f"w/{slug}/teardown", f"w/{slug}/lifecycle"):
        assert b.session.get(service_url(hub, path), timeout=60).status_code == 403
    assert requests.get(service_url(hub, f"api/workshops/{slug}/lifecycle"), headers={"Authorization": f"token {b.token}"},
                        timeout=60).status_code == 403
    participant = hub.login(f"{slug}-01", creds[f"{slug}-01"])
    assert participant.get(service_url(hub, f"w/{slug}/lifecycle"), timeout=60).status_code == 403
    own = hub.token_for(participant, f"{slug}-01")
    assert requests.get(service_url(hub, f"api/workshops/{slug}/lifecycle"), headers={"Authorization": f"token {own}"},
                        timeout=60).status_code == 403
    assert a.session.post(service_url(hub, f"w/{slug}/teardown"), data={"confirm": slug}, timeout=60).status_code == 403
    time.sleep(5)  # two scheduler rounds
    status = lifecycle(a.session, hub, slug)
    assert status["warm"] == [] and status["steps"] == {} and status["torn_down_at"] is None and status["teardown"] is None
    assert not hub.api("GET", f"/users/{slug}-01", admin_token(hub)).json()["servers"]
