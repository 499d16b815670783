"""Announcements, per-participant export and deletion, and the purge of a workshop's service data, on a real SQLite database without a hub."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets.config import Config

from academy import configurer
from academy.labtools import announcements as lab_announcements
from academy.siteconfig import build_config
from academy.workshop import announcements, events, privacy
from academy.workshop.actions import Context
from academy.workshop.forms import InvalidRequest
from academy.workshop.learnerapi import active_workshops
from academy.workshop.models import AuditEvent, Participant, TeardownStep, TeardownStore, Workshop, open_db, utcnow
from academy.workshop.teardown import run_purge


CHECK = {"kind": "check", "exercise": "e1", "passed": False, "message": "wrong shape"}
HINT = {"kind": "hint", "exercise": "e1"}


def keep(db, user, slug, evs):
    """Record events that must all be accepted (a refused one would make the deletions below prove nothing)."""
    out = events.record(db, user, slug, evs)
    assert (out.accepted, out.refused) == (len(evs), 0), out.reasons


@pytest.fixture
def wctx(tmp_path):
    """Three workshops: ``dl`` (running, ann and bob), ``ml`` (running, cid), ``old`` (torn down, ann)."""
    ctx = Context({"workshops": {"retention_days": 30}}, open_db(f"sqlite:///{tmp_path}/w.sqlite"), None)
    now = utcnow()
    with ctx.sessions() as db:
        for slug, members, torn in (("dl", ["ann", "bob"], None), ("ml", ["cid"], None), ("old", ["ann"], now)):
            w = Workshop(slug=slug, title=slug.upper(), start=now - timedelta(hours=1), end=now + timedelta(hours=3),
                         trainer_group=f"{slug}-trainers", participant_group=slug, created_by="t", torn_down_at=torn)
            w.participants += [Participant(username=m, created_here=True) for m in members]
            db.add(w)
        db.commit()
    return ctx


def workshop(ctx, slug):
    from academy.workshop.actions import get_workshop

    return get_workshop(ctx, slug)


@pytest.mark.parametrize("text,problem", [("", "write a message"), ("   \n ", "write a message"),
                                          ("x" * 501, "501 characters"), ("bell\x07", "control characters")])
def test_bad_announcements_are_refused_and_nothing_is_stored(wctx, text, problem):
    """Is an empty, too long or control-character announcement refused with its reason, and none stored?"""
    with pytest.raises(InvalidRequest, match=problem):
        announcements.post(wctx.sessions, workshop(wctx, "dl"), "t", text)
    assert announcements.of_workshops(wctx.sessions, ["dl"]) == []


def test_an_announcement_is_stored_as_plain_text_within_the_limit(wctx):
    """Is a 500-character text with a tag and CRLF kept as typed (trimmed, LF), not sanitised into something else?"""
    text = "<script>alert(1)</script>\r\n" + "x" * (500 - 27)
    row = announcements.post(wctx.sessions, workshop(wctx, "dl"), "trainer", "  " + text + "  ")
    assert row.text == text.replace("\r\n", "\n") and len(row.text) <= 500
    (listed,) = announcements.of_workshops(wctx.sessions, ["dl"])
    assert listed.as_json()["text"] == row.text and listed.as_json()["author"] == "trainer"


def test_a_torn_down_workshop_takes_no_announcements(wctx):
    """Is posting to a torn-down workshop refused?"""
    with pytest.raises(InvalidRequest, match="torn down"):
        announcements.post(wctx.sessions, workshop(wctx, "old"), "t", "hello")


def test_deleting_needs_the_announcements_own_workshop(wctx):
    """Can a trainer of ml not delete dl's announcement by sending its id under ml's slug?"""
    row = announcements.post(wctx.sessions, workshop(wctx, "dl"), "t", "dl only")
    assert not announcements.remove(wctx.sessions, "ml", row.id)
    assert [a.id for a in announcements.of_workshops(wctx.sessions, ["dl"])] == [row.id]
    assert announcements.remove(wctx.sessions, "dl", row.id)
    assert announcements.of_workshops(wctx.sessions, ["dl"]) == []


def test_learners_get_only_their_active_workshops_newest_first(wctx):
    """Does ann see dl's announcements newest first, and neither ml's (not hers) nor old's (torn down)?"""
    for slug, text in (("dl", "first"), ("ml", "for ml"), ("dl", "second")):
        announcements.post(wctx.sessions, workshop(wctx, slug), "t", text)
    assert active_workshops(wctx, "ann") == ["dl"]
    assert active_workshops(wctx, "nobody") == []
    texts = [a.text for a in announcements.of_workshops(wctx.sessions, active_workshops(wctx, "ann"))]
    assert texts == ["second", "first"]
    assert [i.text for i in announcements.for_participant(wctx.sessions, "ann")] == ["second", "first"]
    assert [i.text for i in announcements.for_participant(wctx.sessions, "cid")] == ["for ml"]


def test_hub_page_variable_reads_only_when_shown_and_never_breaks_a_page(wctx, tmp_path):
    """Does the home page's variable list a participant's announcements, nothing for no user, and nothing (no error) for a broken database?"""
    announcements.post(wctx.sessions, workshop(wctx, "dl"), "t", "break until 11:00")
    value = announcements.hub_page_announcements(str(wctx.sessions.kw["bind"].url))
    assert [i.text for i in value(SimpleNamespace(name="ann"))] == ["break until 11:00"]
    assert not value(None) and not value(SimpleNamespace(name="cid"))
    broken = announcements.hub_page_announcements(f"sqlite:///{tmp_path}/missing/dir/w.sqlite")
    assert list(broken(SimpleNamespace(name="ann"))) == []


@pytest.mark.parametrize("name", ["cid", "../cid", "ann/../cid", "", "ANN"])
def test_only_a_participant_of_the_workshop_can_be_exported_or_forgotten(wctx, name):
    """Is a name that is not on dl's list (another workshop's participant, a path trick) a 404 before anything is read?"""
    with pytest.raises(web.HTTPError) as err:
        privacy.export_participant(wctx, workshop(wctx, "dl"), name)
    assert err.value.status_code == 404


def test_export_holds_this_workshops_data_about_one_person(wctx):
    """Does ann's export of dl hold her events in dl, her audit lines and dl's announcements, and nothing of bob or of old?"""
    with wctx.sessions() as db:
        keep(db, "ann", "dl", [{"kind": "check", "exercise": "e1", "passed": False, "message": "wrong shape"}])
        keep(db, "ann", "old", [HINT])
        keep(db, "bob", "dl", [{"kind": "check", "exercise": "e1", "passed": True}])
        db.add(AuditEvent(actor="t", action="participant.add", workshop="dl", participant="ann"))
        db.add(AuditEvent(actor="t", action="participant.add", workshop="dl", participant="bob"))
        db.commit()
    announcements.post(wctx.sessions, workshop(wctx, "dl"), "t", "open notebook 08")
    data = privacy.export_participant(wctx, workshop(wctx, "dl"), "ann")
    assert data["participant"] == "ann" and data["workshop"]["slug"] == "dl"
    assert [(e["kind"], e["message"]) for e in data["events"]] == [("check", "wrong shape")]
    assert [a["action"] for a in data["audit"]] == ["participant.add"]
    assert [a["text"] for a in data["announcements"]["items"]] == ["open notebook 08"]
    assert data["membership"]["account_made_for_this_workshop"] is True
    assert "bob" not in str(data)


def test_forget_deletes_that_persons_events_only_and_is_audited(wctx):
    """Does forgetting ann in dl delete her dl events, keep bob's and her events of another workshop (not this
    trainer's to delete), and leave an audit line with the count?"""
    with wctx.sessions() as db:
        keep(db, "ann", "dl", [CHECK, HINT])
        keep(db, "ann", "old", [HINT])
        keep(db, "bob", "dl", [CHECK])
    deleted = privacy.forget_participant(wctx, "trainer", "dl", "ann")
    assert deleted >= 2  # the two events, and the dashboard's summary rows about her
    with wctx.sessions() as db:
        assert [e.workshop for e in events.for_user(db, "ann")] == ["old"] and len(events.for_user(db, "bob")) == 1
        line = db.query(AuditEvent).filter_by(action="participant.forget").one()
    assert (line.actor, line.participant, line.detail) == ("trainer", "ann", f"{deleted} dashboard events deleted")
    assert privacy.forget_participant(wctx, "trainer", "dl", "ann") == 0


def test_purge_deletes_the_accounts_events_and_the_workshops_announcements_and_resumes(wctx, tmp_path):
    """Does the purge delete each purged account's events and the workshop's announcements first, record the steps,
    and skip them on a rerun? (No hub in a unit test: its steps fail here, as they would with the hub down.)"""
    store = TeardownStore(wctx.sessions)
    with wctx.sessions() as db:
        keep(db, "ann", "old", [CHECK])
        keep(db, "cid", "ml", [CHECK])
        db.add(Workshop(slug="gone", title="G", start=utcnow(), end=utcnow(), trainer_group="g", participant_group="g", created_by="t"))
        db.commit()
    announcements.ensure_table(wctx.sessions)
    with wctx.sessions() as db:
        db.add(announcements.Announcement(workshop="old", text="bye", author="t"))
        db.add(announcements.Announcement(workshop="ml", text="stays", author="t"))
        db.commit()
    store.mark("old", "ann", "archive")
    kw = dict(hub_api_url="http://127.0.0.1:1/hub/api", token="t", store=store, state_dir=tmp_path,
              home_of=lambda n: tmp_path / n, ended_at=datetime.now(timezone.utc) - timedelta(days=31),
              **privacy.purge_hooks(wctx, "old"))
    report = asyncio.run(run_purge("old", ["ann"], **kw))
    assert ("*", "purge-announcements") in report.ran and ("ann", "purge-events") in report.ran
    assert [f.step for f in report.failures] == ["purge-hub-user"]
    with wctx.sessions() as db:
        assert events.for_user(db, "ann") == [] and len(events.for_user(db, "cid")) == 1
        assert {s.step for s in db.query(TeardownStep).filter_by(workshop="old")} >= {"purge-events", "purge-announcements"}
    assert announcements.of_workshops(wctx.sessions, ["old"]) == []
    assert [a.text for a in announcements.of_workshops(wctx.sessions, ["ml"])] == ["stays"]
    again = asyncio.run(run_purge("old", ["ann"], **kw))
    assert ("ann", "purge-events") in again.skipped and ("*", "purge-announcements") in again.skipped


def test_hub_config_shows_announcements_on_the_home_page(tmp_path):
    """Does update_learner_api add the home page variable, and nothing when workshops are off? (The server
    token's scope and the service URL are update_learner_api's, tested with the event API.)"""
    cfg = build_config({"hub": {"state_dir": str(tmp_path), "port": 8123}}, "t")
    c = Config()
    c.JupyterHub.template_vars = {}
    configurer.update_learner_api(c, cfg)
    assert callable(c.JupyterHub.template_vars["academy_announcements"])
    off = Config()
    configurer.update_learner_api(off, build_config({"workshops": {"enabled": False}}, "t"))
    assert "Spawner" not in off and "JupyterHub" not in off


def test_lab_proxy_passes_on_only_plain_fields_and_finds_the_service(monkeypatch):
    """Does the server extension drop malformed items and extra fields, and find the service by its env var only?"""
    body = {"announcements": [{"id": 3, "workshop": "dl", "text": "<b>hi</b>", "time": "t", "author": "a", "extra": "x"},
                              {"id": "4", "text": "no int id"}, "junk"]}
    assert lab_announcements.clean(body) == [{"id": 3, "workshop": "dl", "text": "<b>hi</b>", "time": "t", "author": "a"}]
    assert lab_announcements.clean(["not", "a", "dict"]) == []
    monkeypatch.delenv("ACADEMY_SERVICE_URL", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://10.0.0.1:8081/base/hub/api")
    assert lab_announcements.service_url() is None  # the hub's own port: services are not there
    monkeypatch.setenv("ACADEMY_SERVICE_URL", "http://hub.example:8000/services/academy")
    assert lab_announcements.service_url() == "http://hub.example:8000/services/academy/"
    monkeypatch.delenv("ACADEMY_SERVICE_URL")
    assert lab_announcements.service_url() is None
