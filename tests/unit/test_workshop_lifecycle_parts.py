"""The lifecycle's own rules on a real SQLite database, without a hub: one teardown holder, early binding, course work."""
from __future__ import annotations

import os
import socket
import subprocess
from datetime import timedelta

import pytest

from academy.workshop import lifecycle
from academy.workshop.actions import Context
from academy.workshop.binding import bind
from academy.workshop.lifecycle_models import TeardownRun, WarmRun
from academy.workshop.models import AuditEvent, Participant, Workshop, open_db, utcnow

from test_workshop_binding import CPU, WS


@pytest.fixture
def ctx(tmp_path):
    return Context({"workshops": {"retention_days": 30}}, open_db(f"sqlite:///{tmp_path}/w.sqlite"), None)


def _holder(ctx, holder: str, last_attempt=None) -> None:
    with ctx.sessions() as db:
        db.add(TeardownRun(workshop="ws", kind="teardown", actor="t", holder=holder, last_attempt=last_attempt or utcnow()))
        db.commit()


def test_a_live_holder_keeps_the_teardown_and_a_killed_one_is_taken_over(ctx):
    """Is a teardown held by a live process refused to a second one, and taken over once that process is gone?"""
    other = subprocess.Popen(["sleep", "60"])
    try:
        _holder(ctx, f"{socket.gethostname()}:{other.pid}")
        assert not lifecycle.claim(ctx, "ws", "teardown", "admin")
    finally:
        other.kill()
        other.wait()
    assert lifecycle.claim(ctx, "ws", "teardown", "admin")
    assert lifecycle.teardown_run(ctx, "ws").holder == f"{socket.gethostname()}:{os.getpid()}"


@pytest.mark.parametrize("age,free", [(timedelta(minutes=5), False), (timedelta(hours=3), True)])
def test_a_holder_on_another_machine_counts_until_a_long_silence(ctx, age, free):
    """Is a holder on another host (whose processes we cannot see) respected, unless silent for hours?"""
    _holder(ctx, "elsewhere.example:1234", utcnow() - age)
    assert lifecycle.claim(ctx, "ws", "teardown", "admin") is free


def test_a_begun_warm_start_binds_participants_before_the_start(ctx):
    """Before the start a participant keeps the normal profiles; once the warm start began, only the workshop's, in its reservation?"""
    url = str(ctx.sessions.kw["bind"].url)
    now = utcnow()
    with ctx.sessions() as db:
        w = Workshop(slug="soon", title="Soon", start=now + timedelta(minutes=8), end=now + timedelta(hours=2), profiles=["workshop"],
                     reservation="academy-workshop", trainer_group="soon-t", participant_group="soon", created_by="t")
        w.participants.append(Participant(username="soon-01"))
        db.add(w)
        db.commit()
    before = bind(url, "soon-01", [CPU, WS], now=now)
    assert [p.slug for p in before.profiles] == ["cpu", "workshop"] and before.profiles[1].reservation == "fixed"
    with ctx.sessions() as db:
        db.add(WarmRun(workshop="soon", actor="academy (scheduled)"))
        db.commit()
    after = bind(url, "soon-01", [CPU, WS], now=now)
    assert [p.slug for p in after.profiles] == ["workshop"] and after.profiles[0].reservation == "academy-workshop"


def test_teardown_course_work_with_nothing_released_is_a_logged_no_op(ctx):
    """With no released assignment, is the teardown's course-work step logged and done, needing no course at all?"""
    now = utcnow()
    with ctx.sessions() as db:
        db.add(Workshop(slug="ws", title="ws", start=now, end=now + timedelta(hours=1), profiles=["cpu"],
                        trainer_group="ws-trainers", participant_group="ws", created_by="admin"))
        db.commit()
    assert lifecycle.coursework_step(ctx, "admin", "ws")() == []
    with ctx.sessions() as db:
        events = [(e.action, e.detail) for e in db.query(AuditEvent)]
    assert events == [("coursework.final-grading", "no released assignments")]


def test_warm_start_options_stay_within_the_profile(ctx, monkeypatch):
    """Does a warm start ask for the hours left until the end, never more than the profile allows and never zero?"""
    monkeypatch.setattr(lifecycle, "_profiles", lambda _ctx: {"workshop": WS})
    now = utcnow()
    w = Workshop(slug="x", title="x", start=now, end=now + timedelta(hours=5), profiles=["workshop"])
    assert lifecycle.warm_options(ctx, w, now) == {"profile": "workshop", "hours": 2}
    w.end = now + timedelta(minutes=10)
    assert lifecycle.warm_options(ctx, w, now) == {"profile": "workshop", "hours": 1}


def test_the_culler_holds_a_warm_started_server_until_the_workshop_starts():
    """Is a warm-started server (idle since its start) kept until the workshop begins, and its idle time counted from then?"""
    import datetime as dt

    from academy.culler import judge
    from test_culler import NOW, activity, server

    warmed = server(started_ago=7200)
    assert judge(warmed, activity(), 1800, 300, NOW, held_until=NOW + dt.timedelta(minutes=5)).action == "keep"
    assert judge(warmed, activity(), 1800, 300, NOW, held_until=NOW - dt.timedelta(minutes=10)).action == "keep"
    assert judge(warmed, activity(), 1800, 300, NOW, held_until=NOW - dt.timedelta(minutes=40)).action == "cull"
    assert judge(warmed, activity(), 1800, 300, NOW).action == "cull"  # without a hold: idle since its start


def test_warm_holds_name_running_warm_starts_of_workshops_still_ahead(ctx):
    """Does the culler's hold list hold each running warm start of a workshop not ended or torn down, and nothing else?"""
    from academy.workshop.lifecycle_models import WarmEntry, warm_holds

    url = str(ctx.sessions.kw["bind"].url)
    now = utcnow()
    with ctx.sessions() as db:
        for slug, torn in (("open", None), ("done", now)):
            db.add(Workshop(slug=slug, title=slug, start=now + timedelta(minutes=8), end=now + timedelta(hours=2),
                            profiles=["cpu"], trainer_group=f"{slug}-t", participant_group=slug, created_by="t", torn_down_at=torn))
            db.add(WarmEntry(workshop=slug, participant=f"{slug}-01", state="running"))
        db.add(WarmEntry(workshop="open", participant="open-02", state="failed"))
        db.commit()
    holds = warm_holds(url)
    assert list(holds) == ["open-01"] and holds["open-01"].replace(tzinfo=None) == now + timedelta(minutes=8)


def test_a_step_and_its_audit_line_are_written_together_and_once(ctx):
    """Does marking a teardown step write its audit line in the same commit, and a second mark write nothing?"""
    store = lifecycle.AuditedStore(ctx, "admin", "teardown")
    store.mark("ws", "ws-01", "stop")
    store.mark("ws", "ws-01", "stop")
    store.mark("ws", "*", "coursework")
    assert store.done("ws", "ws-01", "stop")
    with ctx.sessions() as db:
        events = [(e.actor, e.action, e.participant, e.detail) for e in db.query(AuditEvent).order_by(AuditEvent.id)]
    assert events == [("admin", "teardown.step", "ws-01", "stop"), ("admin", "teardown.step", "", "coursework")]
