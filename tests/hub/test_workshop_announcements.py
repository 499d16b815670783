"""Announcements, export and forget against a real hub and proxy: who may post and read, escaping, another trainer's 403.

The learner side is called the way it is in production: with the participant's own hub token, and
with the token the hub gave their running server (read from that process, as root), through the
server's ``academy/api/announcements`` proxy.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from markupsafe import escape

from testbed.hub import _RUN, make_learner
from support.workshop import make_trainer, post_form, service_url, workshop_form, xsrf

pytestmark = pytest.mark.hub

EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> Break until 11:00 & "open" 08'


def _workshop(hub, trainer, tag: str, *participants: str) -> str:
    slug = f"{tag}{_RUN}"
    r = post_form(trainer.session, hub, "new", workshop_form(slug, count="0", usernames="\n".join(participants)))
    assert r.status_code in (200, 302), r.text[-2000:]
    return slug


def _announce(hub, trainer, slug: str, text: str) -> requests.Response:
    token = xsrf(trainer.session, hub, f"w/{slug}")
    return trainer.session.post(service_url(hub, f"w/{slug}/announce"), data={"_xsrf": token, "text": text}, timeout=60)


def _learner_api(hub, token: str | None) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(service_url(hub, "api/announcements"), headers=headers, timeout=60)


def _server_token(name: str) -> str:
    """The API token the hub gave ``name``'s server, read from that process (we are root)."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"jupyterhub-singleuser" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(kv.split("=", 1) for kv in (proc / "environ").read_bytes().decode().split("\0") if "=" in kv)
        except OSError:
            continue
        if env.get("JUPYTERHUB_USER") == name:
            return env["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no server process of {name}")


def test_an_announcement_reaches_participants_and_only_them_escaped_everywhere(hub):
    """Does a trainer's announcement (with HTML and script in it) reach the participant's token, their running server's
    token and proxy, and their hub home page as text; and is a non-participant's, a trainer's or no token refused?"""
    trainer = make_trainer(hub, "tran")
    ann, outsider = make_learner(hub, "ann"), make_learner(hub, "out")
    slug = _workshop(hub, trainer, "anc", ann.name)
    r = _announce(hub, trainer, slug, EVIL)
    assert r.status_code == 200 and f"w/{slug}" in r.url, r.text[-1000:]
    # The trainer's page lists it, escaped, with its author.
    assert str(escape(EVIL)) in r.text and "<script>window.pwned" not in r.text
    assert trainer.name in r.text.split('id="announcement-list"')[1]

    got = _learner_api(hub, ann.token)
    assert got.status_code == 200, got.text
    (item,) = got.json()["announcements"]
    assert (item["workshop"], item["text"], item["author"]) == (slug, EVIL, trainer.name)
    assert got.headers["Content-Type"].startswith("application/json")
    assert _learner_api(hub, outsider.token).status_code == 403
    assert _learner_api(hub, trainer.token).status_code == 403  # trainers read their page, not the learner API
    assert _learner_api(hub, None).status_code == 401
    assert _learner_api(hub, "not-a-token").status_code == 401

    home = ann.session.get(f"{hub.url}/hub/home", timeout=60)
    assert home.status_code == 200
    assert 'id="academy-announcements"' in home.text and "<script>window.pwned" not in home.text
    assert str(escape(EVIL)) in home.text
    assert 'id="academy-announcements"' not in outsider.session.get(f"{hub.url}/hub/home", timeout=60).text

    # The real path from JupyterLab: the learner's server asks the service with its own token.
    r = hub.api("POST", f"/users/{ann.name}/server", ann.token, json={"profile": "cpu", "hours": 1})
    assert r.status_code in (201, 202), r.text
    try:
        hub.wait_ready(ann.name, ann.token, timeout=240)
        if os.geteuid() == 0:
            direct = _learner_api(hub, _server_token(ann.name))
            assert direct.status_code == 200 and direct.json()["announcements"][0]["text"] == EVIL
        proxied = requests.get(f"{hub.url}/user/{ann.name}/academy/api/announcements",
                               headers={"Authorization": f"token {ann.token}"}, timeout=60)
        assert proxied.status_code == 200, proxied.text
        assert [(a["id"], a["text"]) for a in proxied.json()["announcements"]] == [(item["id"], EVIL)]
        # The outsider cannot use ann's server to read them.
        assert requests.get(f"{hub.url}/user/{ann.name}/academy/api/announcements",
                            headers={"Authorization": f"token {outsider.token}"}, timeout=60).status_code in (403, 404)
    finally:
        hub.api("DELETE", f"/users/{ann.name}/server", ann.token)


def test_announcements_are_checked_and_deleted_by_the_workshops_trainers_only(hub):
    """Is a 501-character text refused with nothing stored, does delete remove one, and is a learner's post with their own
    token refused?"""
    trainer = make_trainer(hub, "trck")
    bob = make_learner(hub, "bob")
    slug = _workshop(hub, trainer, "ack", bob.name)
    r = _announce(hub, trainer, slug, "x" * 501)
    assert r.status_code == 400 and 'data-field="announcement"' in r.text
    assert _learner_api(hub, bob.token).json()["announcements"] == []
    assert _announce(hub, trainer, slug, "first").status_code == 200
    (first,) = _learner_api(hub, bob.token).json()["announcements"]
    # A participant posting with their own token (no XSRF needed for a token) is still not a trainer.
    r = requests.post(service_url(hub, f"w/{slug}/announce"), data={"text": "I am the trainer now"},
                      headers={"Authorization": f"token {bob.token}"}, timeout=60)
    assert r.status_code == 403
    token = xsrf(trainer.session, hub, f"w/{slug}")
    r = trainer.session.post(service_url(hub, f"w/{slug}/announcements/{first['id']}/delete"), data={"_xsrf": token}, timeout=60)
    assert r.status_code == 200
    assert _learner_api(hub, bob.token).json()["announcements"] == []


def test_another_workshops_trainer_gets_403_on_announce_export_and_forget(hub):
    """Does the trainer of workshop A get 403 on B's announce, export and forget, 404 for B's participant or B's
    announcement under A's slug, and 404 for path tricks in the name?"""
    a, b = make_trainer(hub, "tra"), make_trainer(hub, "trb")
    pa, pb = make_learner(hub, "pa"), make_learner(hub, "pb")
    slug_a, slug_b = _workshop(hub, a, "aa", pa.name), _workshop(hub, b, "ab", pb.name)
    assert _announce(hub, b, slug_b, "for B only").status_code == 200
    (b_item,) = _learner_api(hub, pb.token).json()["announcements"]
    token = xsrf(a.session, hub, f"w/{slug_a}")
    post = lambda path, **data: a.session.post(service_url(hub, path), data={"_xsrf": token, **data}, timeout=60)  # noqa: E731
    assert post(f"w/{slug_b}/announce", text="hijack").status_code == 403
    assert a.session.get(service_url(hub, f"w/{slug_b}/participants/{pb.name}/export"), timeout=60).status_code == 403
    assert post(f"w/{slug_b}/participants/{pb.name}/forget").status_code == 403
    assert post(f"w/{slug_b}/announcements/{b_item['id']}/delete").status_code == 403
    assert post(f"w/{slug_a}/announcements/{b_item['id']}/delete").status_code == 404
    for name in (pb.name, f"..%2F{pb.name}", f"{pa.name}%2F..%2F..%2F{slug_b}", "%2E%2E"):
        assert a.session.get(service_url(hub, f"w/{slug_a}/participants/{name}/export"), timeout=60).status_code == 404, name
    assert post(f"w/{slug_a}/participants/{pb.name}/forget").status_code == 404
    # A participant cannot export themselves or anyone else: the pages are for trainers.
    own = requests.get(service_url(hub, f"w/{slug_b}/participants/{pb.name}/export"),
                       headers={"Authorization": f"token {pb.token}"}, timeout=60)
    assert own.status_code == 403
    # B's announcement is untouched and still only B's participants see it.
    assert [x["text"] for x in _learner_api(hub, pb.token).json()["announcements"]] == ["for B only"]
    assert _learner_api(hub, pa.token).json()["announcements"] == []


def test_export_is_a_json_download_and_forget_is_audited(hub):
    """Does the trainer's export of a participant come as a JSON attachment about that person, and forget answer with
    the count and leave an audit line?"""
    trainer = make_trainer(hub, "trex")
    cid = make_learner(hub, "cid")
    slug = _workshop(hub, trainer, "aex", cid.name)
    assert _announce(hub, trainer, slug, "open notebook 08").status_code == 200
    r = trainer.session.get(service_url(hub, f"w/{slug}/participants/{cid.name}/export"), timeout=60)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == f'attachment; filename="academy-{slug}-{cid.name}.json"'
    data = json.loads(r.text)
    assert data["participant"] == cid.name and data["workshop"]["slug"] == slug
    assert [x["text"] for x in data["announcements"]["items"]] == ["open notebook 08"]
    assert "participant.add" in [x["action"] for x in data["audit"]]
    token = xsrf(trainer.session, hub, f"w/{slug}")
    r = trainer.session.post(service_url(hub, f"w/{slug}/participants/{cid.name}/forget"), data={"_xsrf": token}, timeout=60)
    assert r.status_code == 200 and "0 recorded dashboard events deleted" in r.text
    page = trainer.session.get(service_url(hub, f"w/{slug}"), timeout=60).text
    assert f"participants/{cid.name}/export" in page and f"participants/{cid.name}/forget" in page
