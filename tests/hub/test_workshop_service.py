"""The workshop service against a real hub and proxy: create, participants, authorisation, audit, restart."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from testbed.hub import ACADEMY, REPO, _RUN, make_learner
from support.workshop import (
    admin_session, admin_token, make_trainer, post_form, service_url, sheet_credentials, track, unix_account,
    workshop_form, xsrf,
)

pytestmark = pytest.mark.hub


def _slug(tag: str) -> str:
    return f"{tag}{_RUN}"


def _hub_users(hub, token) -> set[str]:
    return {u["name"] for u in hub.api("GET", "/users", token).json()}


def test_trainer_creates_workshop_and_participants_exist_at_once(hub):
    """Does a trainer's new workshop give participants who are hub users, group members and Unix accounts before any login?"""
    trainer = make_trainer(hub)
    slug = _slug("wsa")
    track(f"{slug}-01", f"{slug}-02")
    r = post_form(trainer.session, hub, "new", workshop_form(slug))
    assert r.status_code == 200, r.text
    creds = sheet_credentials(r.text)
    assert sorted(creds) == [f"{slug}-01", f"{slug}-02"]
    assert r.headers["Cache-Control"] == "no-store"
    token = admin_token(hub)
    assert {f"{slug}-01", f"{slug}-02"} <= _hub_users(hub, token)
    group = hub.api("GET", f"/groups/{slug}", token).json()
    assert sorted(group["users"]) == sorted(creds)
    assert trainer.name in hub.api("GET", f"/groups/{slug}-trainers", token).json()["users"]
    if os.geteuid() == 0:
        for name in creds:
            pw = unix_account(name)
            assert pw is not None and Path(pw.pw_dir).is_dir()
            assert Path(pw.pw_dir).stat().st_uid == pw.pw_uid and (Path(pw.pw_dir).stat().st_mode & 0o777) == 0o700
    # The sheet's password works on the hub's own login form.
    hub.login(f"{slug}-01", creds[f"{slug}-01"])
    # Shown once: the workshop page never shows a password again.
    page = trainer.session.get(service_url(hub, f"w/{slug}"), timeout=60)
    assert f"{slug}-01" in page.text and creds[f"{slug}-01"] not in page.text


def test_trainer_of_one_workshop_gets_403_on_another(hub):
    """Does the trainer of workshop A get 403 on B's page, B's API and B's forms, and not see B in lists?"""
    a, b = make_trainer(hub, "tra"), make_trainer(hub, "trb")
    slug_a, slug_b = _slug("wxa"), _slug("wxb")
    assert post_form(a.session, hub, "new", workshop_form(slug_a, count="0")).status_code in (200, 302)
    assert post_form(b.session, hub, "new", workshop_form(slug_b, count="0")).status_code in (200, 302)
    assert a.session.get(service_url(hub, f"w/{slug_a}"), timeout=60).status_code == 200
    assert a.session.get(service_url(hub, f"w/{slug_b}"), timeout=60).status_code == 403
    token = xsrf(a.session, hub, f"w/{slug_a}")
    r = a.session.post(service_url(hub, f"w/{slug_b}/participants"), data={"_xsrf": token, "count": "1"}, timeout=60)
    assert r.status_code == 403
    headers = {"Authorization": f"token {a.token}"}
    assert requests.get(service_url(hub, f"api/workshops/{slug_b}"), headers=headers, timeout=60).status_code == 403
    assert requests.get(service_url(hub, f"api/workshops/{slug_a}"), headers=headers, timeout=60).status_code == 200
    listed = requests.get(service_url(hub, "api/workshops"), headers=headers, timeout=60).json()["workshops"]
    assert slug_a in [w["slug"] for w in listed] and slug_b not in [w["slug"] for w in listed]
    assert f"{slug_b}-01" not in _hub_users(hub, admin_token(hub))


def test_participant_and_anonymous_are_kept_out(hub):
    """Does a participant get 403 on every page and API, and an anonymous visitor a redirect to the hub login?"""
    learner = make_learner(hub)
    for path in ("", "new", "audit", "audit.csv"):
        assert learner.session.get(service_url(hub, path), timeout=60).status_code == 403, path
    r = requests.get(service_url(hub, "api/workshops"), headers={"Authorization": f"token {learner.token}"}, timeout=60)
    assert r.status_code == 403
    anon = requests.get(service_url(hub), timeout=60)
    assert anon.url.startswith(f"{hub.url}/hub/login")
    assert requests.get(service_url(hub, "api/workshops"), timeout=60, allow_redirects=False).status_code == 403


BAD = [
    ({"end": "2030-03-02T08:00"}, "end", "after the start"),
    ({"slug": "Bad Slug!"}, "slug", "lowercase"),
    ({"usernames": "ann\nann"}, "usernames", "more than once"),
    ({"usernames": "Robert');DROP"}, "usernames", "not valid usernames"),
    ({"count": "61"}, "count", "more than the 60 allowed"),
    ({"start": "tomorrow"}, "start", "not a time"),
    ({"profiles": "nonsense"}, "profiles", "unknown profile"),
]


@pytest.mark.parametrize("change,field,message", BAD, ids=[b[1] + "-" + b[2].split()[0] for b in BAD])
def test_bad_input_is_refused_with_a_clear_message(hub, change, field, message):
    """Does each kind of bad input get its message on the form, with nothing created?"""
    admin = admin_session(hub)
    slug = change.get("slug") or _slug("bad")
    token = admin_token(hub)
    before = _hub_users(hub, token)
    r = post_form(admin, hub, "new", workshop_form(slug, **{k: v for k, v in change.items() if k != "slug"}))
    assert r.status_code == 400
    assert f'data-field="{field}"' in r.text and message in r.text, r.text[-2000:]
    assert "Nothing was created" in r.text
    assert _hub_users(hub, token) == before
    assert hub.api("GET", f"/groups/{slug}", token).status_code == 404


def test_two_workshops_in_one_reservation_at_once_are_refused(hub):
    """Is a second workshop in the same reservation at an overlapping time refused, and one after it allowed?"""
    admin = admin_session(hub)
    first, clash, later = _slug("rsa"), _slug("rsb"), _slug("rsc")
    assert post_form(admin, hub, "new", workshop_form(first, count="0", reservation="academy-workshop")).status_code in (200, 302)
    r = post_form(admin, hub, "new", workshop_form(clash, count="0", reservation="academy-workshop",
                                                   start="2030-03-02T16:00", end="2030-03-02T18:00"))
    assert r.status_code == 400 and f"workshop {first!r} already uses reservation" in r.text.replace("&#39;", "'")
    r = post_form(admin, hub, "new", workshop_form(later, count="0", reservation="academy-workshop",
                                                   start="2030-03-02T17:00", end="2030-03-02T18:00"))
    assert r.status_code in (200, 302)


def test_post_without_xsrf_creates_nothing(hub):
    """Is a form POST without the XSRF token (a cross-site request) refused, with nothing created?"""
    admin = admin_session(hub)
    admin.get(service_url(hub), timeout=60)
    slug = _slug("csrf")
    r = admin.post(service_url(hub, "new"), data=workshop_form(slug), timeout=60)
    assert r.status_code == 403
    assert hub.api("GET", f"/groups/{slug}", admin_token(hub)).status_code == 404


def test_audit_log_for_admins_without_passwords(hub):
    """Does the audit log record who created what, show it to admins as a page and CSV, and never hold a password?"""
    trainer = make_trainer(hub, "trau")
    slug = _slug("aud")
    track(f"{slug}-01")
    creds = sheet_credentials(post_form(trainer.session, hub, "new", workshop_form(slug, count="1")).text)
    admin = admin_session(hub)
    page = admin.get(service_url(hub, "audit"), timeout=60)
    assert page.status_code == 200 and "workshop.create" in page.text and trainer.name in page.text
    csv_text = admin.get(service_url(hub, "audit.csv"), timeout=60).text
    rows = [line for line in csv_text.splitlines() if f",{slug}," in line]
    assert any("participant.add" in r and f"{slug}-01" in r for r in rows)
    assert creds[f"{slug}-01"] not in csv_text and creds[f"{slug}-01"] not in page.text
    assert trainer.session.get(service_url(hub, "audit"), timeout=60).status_code == 403


def test_cli_drives_the_same_workshops(hub):
    """Does `academy workshop` list what the browser made, create with the same checks, and refuse bad input?"""
    slug = _slug("cli")
    track(f"{slug}-01")
    base = [*ACADEMY, "--config", str(hub.config_path), "workshop"]
    bad = subprocess.run([*base, "create", slug, "--title", "x", "--start", "2030-01-02T10:00", "--end", "2030-01-02T09:00",
                          "--profile", "cpu"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "end: the end must be after the start" in bad.stderr
    ok = subprocess.run([*base, "create", slug, "--title", "CLI", "--start", "2030-01-02T10:00", "--end", "2030-01-02T12:00",
                         "--profile", "cpu", "--participants", "1", "--json"], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert [row["username"] for row in json.loads(ok.stdout)] == [f"{slug}-01"]
    listed = json.loads(subprocess.run([*base, "list", "--json"], capture_output=True, text=True, cwd=REPO, check=True).stdout)
    assert slug in [w["slug"] for w in listed]
    assert f"{slug}-01" in hub.api("GET", f"/groups/{slug}", admin_token(hub)).json()["users"]


def test_restart_loses_nothing(hub):
    """After the hub (and with it the service) restarts, are the workshop, its participants and the audit log still there?"""
    slug = _slug("rst")
    track(f"{slug}-01")
    admin = admin_session(hub)
    assert post_form(admin, hub, "new", workshop_form(slug, count="1")).status_code == 200
    password = hub.admin_password
    hub.stop()
    hub.start()
    hub.admin_password = password
    admin = admin_session(hub)
    assert slug in admin.get(service_url(hub), timeout=60).text  # the page logs in to the service through the hub
    r = admin.get(service_url(hub, f"api/workshops/{slug}"), timeout=60)
    assert r.status_code == 200 and r.json()["participants"] == [f"{slug}-01"]
    assert "workshop.create" in admin.get(service_url(hub, "audit.csv"), timeout=60).text


def test_accounts_add_makes_hub_users_in_a_group_before_first_login(hub):
    """Does `academy accounts add --group` make users the admin page lists and the group holds, before anyone logs in?"""
    names = [f"acc{_RUN}a", f"acc{_RUN}b"]
    track(*names)
    proc = subprocess.run([*ACADEMY, "--config", str(hub.config_path), "accounts", "add", "--json", "--group", f"agrp{_RUN}", *names],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    token = admin_token(hub)
    assert set(names) <= _hub_users(hub, token)
    assert sorted(hub.api("GET", f"/groups/agrp{_RUN}", token).json()["users"]) == names
    # and `accounts reset` finds them (the admin page's own "Add Users" path used to leave them password-less)
    reset = subprocess.run([*ACADEMY, "--config", str(hub.config_path), "accounts", "reset", "--json", names[0]],
                           capture_output=True, text=True, cwd=REPO)
    assert reset.returncode == 0 and json.loads(reset.stdout)[0]["password"]


def test_running_workshop_binds_its_participants_spawn_form(hub):
    """During a workshop, does a participant's form offer only the workshop profile with its message, and is another profile refused?"""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    slug = _slug("bnd")
    track(f"{slug}-01")
    now = datetime.now(ZoneInfo("Europe/Amsterdam"))
    admin = admin_session(hub)
    r = post_form(admin, hub, "new", workshop_form(slug, count="1", profiles="workshop", reservation="academy-workshop",
                                                   start=(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                                                   end=(now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")))
    creds = sheet_credentials(r.text)
    participant = hub.login(f"{slug}-01", creds[f"{slug}-01"])
    form = participant.get(f"{hub.url}/hub/spawn", timeout=60).text
    assert 'id="profile-workshop"' in form and 'id="profile-cpu"' not in form
    assert "your server runs in reservation academy-workshop" in form
    token = hub.token_for(participant, f"{slug}-01")
    refused = hub.api("POST", f"/users/{slug}-01/server", token, json={"profile": "cpu", "hours": 1})
    assert refused.status_code == 400, refused.text


def test_release_a_lesson_into_participants_homes_and_refuse_an_unknown_assignment(hub):
    """Does "Release now" put the lesson notebook in each participant's home as theirs, and does a bad assignment get a clear message?"""
    slug = _slug("rel")
    track(f"{slug}-01")
    admin = admin_session(hub)
    r = post_form(admin, hub, "new", workshop_form(slug, count="1", lessons="00_welcome", assignments="no_such_assignment"))
    assert r.status_code == 200
    token = xsrf(admin, hub, f"w/{slug}")
    r = admin.post(service_url(hub, f"w/{slug}/release"), data={"_xsrf": token, "kind": "lesson", "name": "00_welcome"}, timeout=120)
    assert r.status_code == 200 and "copied into 1 homes" in r.text, r.text[-1500:]
    if os.geteuid() == 0:
        copy = Path(unix_account(f"{slug}-01").pw_dir) / "ai-factory-academy" / "00_welcome.ipynb"
        assert copy.is_file() and copy.stat().st_uid == unix_account(f"{slug}-01").pw_uid
    r = admin.post(service_url(hub, f"w/{slug}/release"), data={"_xsrf": token, "kind": "assignment", "name": "no_such_assignment"}, timeout=120)
    assert r.status_code == 400 and 'data-field="assignments"' in r.text
    audit = admin.get(service_url(hub, "audit.csv"), timeout=60).text
    assert "lesson.release" in audit and "assignment.release" not in audit


def test_add_an_sso_group_and_remove_a_participant(hub):
    """Can a trainer add every member of a hub group, then remove one, with the workshop group following?"""
    trainer = make_trainer(hub, "trg")
    slug = _slug("grp")
    token = admin_token(hub)
    members = [make_learner(hub, "sso").name for _ in range(2)]
    assert hub.api("POST", f"/groups/sso{_RUN}", token, json={"users": members}).status_code == 201
    assert post_form(trainer.session, hub, "new", workshop_form(slug, count="0")).status_code in (200, 302)
    r = post_form(trainer.session, hub, f"w/{slug}/participants", {"count": "0", "usernames": "", "sso_group": f"sso{_RUN}"})
    assert r.status_code == 200
    assert sorted(hub.api("GET", f"/groups/{slug}", token).json()["users"]) == sorted(members)
    again = post_form(trainer.session, hub, f"w/{slug}/participants", {"count": "0", "usernames": members[0]})
    assert again.status_code == 400 and "already participants" in again.text
    r = post_form(trainer.session, hub, f"w/{slug}/remove", {"username": members[0]})
    assert r.status_code == 200
    assert hub.api("GET", f"/groups/{slug}", token).json()["users"] == [members[1]]
    assert members[0] in _hub_users(hub, token), "removing a participant keeps their hub user"
