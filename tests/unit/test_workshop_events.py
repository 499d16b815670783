"""The event store, its bounds and the dashboard's rows and filters, on a tmp database; the hub config on a bare Config()."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from traitlets.config import Config

from academy import configurer
from academy.siteconfig import build_config
from academy.workshop import events
from academy.workshop.dashboard_rows import apply_squeue, build_rows, exercise_view, server_of, stuck
from academy.workshop.learnerapi import SCOPE, service_url
from academy.workshop.models import open_db, utcnow


@pytest.fixture
def db(tmp_path):
    sessions = open_db(f"sqlite:///{tmp_path / 'workshops.sqlite'}")
    with sessions() as session:
        yield session


def check(exercise="q1", passed=False, message="Not quite: the shape is wrong.", notebook="01-intro.ipynb", **more):
    return {"kind": "check", "notebook": notebook, "exercise": exercise, "passed": passed, "message": message,
            "time": "2026-12-02T10:00:00Z", **more}


def test_valid_events_are_kept_and_summarised(db):
    """Are checks, a hand, a share and open notebooks kept, and does the learner's summary follow them?"""
    out = events.record(db, "ann", "ws", [check(), check(passed=True, message="Correct!"),
                                          {"kind": "hand", "message": "help with q2"},
                                          {"kind": "share", "message": "/user/ann/"},
                                          {"kind": "sessions", "message": json.dumps(["01-intro.ipynb"])}])
    assert (out.accepted, out.refused) == (5, 0)
    assert [e.kind for e in events.for_user(db, "ann")] == ["check", "check", "hand", "share", "sessions"]
    st = events.state_for_user(db, "ann")[0]
    assert (st.hand_message, st.share_path, st.notebooks, st.events) == ("help with q2", "/user/ann/", ["01-intro.ipynb"], 5)
    events.record(db, "ann", "ws", [{"kind": "hand_lowered"}, {"kind": "share_ended"}])
    st = events.state_for_user(db, "ann")[0]
    assert st.hand_at is None and st.share_path == ""


BAD = [
    (check(user="bob"), "forged"),
    ({"kind": "check", "exercise": "q1"}, "malformed"),  # no passed
    ({"kind": "explode"}, "malformed"),
    ("not an object", "malformed"),
    (check(passed="yes"), "malformed"),
    (check(exercise="x" * 201), "too_long"),
    (check(message="m" * 1001), "too_long"),
    (check(exercise="q1\u200b"), "malformed"),   # looks like q1
    (check(exercise="\u202eq1"), "malformed"),   # a right-to-left override
    (check(time="yesterday"), "malformed"),
    ({"kind": "share", "message": "/user/bob/"}, "malformed"),          # another learner's server
    ({"kind": "share", "message": "https://evil.example/user/ann/"}, "malformed"),
    ({"kind": "share", "message": "//evil.example/user/ann/"}, "malformed"),
    ({"kind": "share", "message": "/user/ann/../bob/"}, "malformed"),
    ({"kind": "sessions", "message": "not json"}, "malformed"),
    ({"kind": "sessions", "message": json.dumps(["a"] * 51)}, "malformed"),
]


@pytest.mark.parametrize("event,reason", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_events_are_refused_and_counted(db, event, reason):
    """Is each forged, malformed or oversized event refused, counted under its reason, and the good one beside it kept?"""
    out = events.record(db, "ann", "ws", [event, check()])
    assert (out.accepted, out.refused, out.reasons) == (1, 1, {reason: 1})
    assert events.refusals_for(db, ["ann"]) == {"ann": {reason: 1}}
    assert len(events.for_user(db, "ann")) == 1


def test_messages_lose_invisible_characters_but_keep_html_as_text(db):
    """Does a message keep its (escaped-later) HTML and newlines but lose bidi overrides and zero-width characters?"""
    events.record(db, "ann", "ws", [check(message="<script>alert(1)</script>\u202e\u200b\nline two")])
    assert events.for_user(db, "ann")[0].message == "<script>alert(1)</script>\nline two"


def test_distinct_exercises_per_learner_are_bounded(db):
    """Can a learner not fill the store with thousands of distinct exercise names?"""
    limits = events.Limits(exercises_per_user=5)
    out = events.record(db, "ann", "ws", [check(exercise=f"q{i}") for i in range(8)], limits)
    assert (out.accepted, out.reasons) == (5, {"too_many_exercises": 3})
    assert events.record(db, "ann", "ws", [check(exercise="q1")], limits).accepted == 1  # known ones still count


def test_stored_events_per_learner_are_bounded(db):
    """Does a learner who reached the stored-events bound get refusals, not a bigger store?"""
    limits = events.Limits(events_per_user=3)
    out = events.record(db, "ann", "ws", [check()] * 5, limits)
    assert (out.accepted, out.reasons) == (3, {"store_full": 2})


def test_token_bucket_allows_a_burst_then_the_rate():
    """Does the per-user bucket allow a burst of 50, then 10 per second, each user on their own?"""
    clock = [0.0]
    limiter = events.RateLimiter(rate=10, burst=50, clock=lambda: clock[0])
    assert limiter.take("ann", 50) and not limiter.take("ann", 1)
    assert limiter.take("bob", 50)
    clock[0] = 1.0
    assert limiter.take("ann", 10) and not limiter.take("ann", 1)
    assert not limiter.take("ann", 51)


def test_forget_deletes_everything_about_one_learner(db):
    """Does forget remove a learner's events, summaries and refusal counts, and nobody else's?"""
    events.record(db, "ann", "ws", [check(), check(user="bob")])
    events.record(db, "bob", "ws", [check()])
    assert events.forget(db, "ann") == 4  # an event, the summary, the exercise count, a refusal count
    assert events.for_user(db, "ann") == [] and events.refusals_for(db, ["ann"]) == {}
    assert len(events.for_user(db, "bob")) == 1


def test_stuck_needs_three_recent_failures_still_unpassed(db):
    """Is a learner stuck after 3 failed checks of one exercise in 10 minutes, and no longer once it passes?"""
    now = utcnow()
    events.record(db, "ann", "ws", [check()] * 3, now=now)
    events.record(db, "bob", "ws", [check()] * 2 + [check(exercise="q2")], now=now)
    events.record(db, "cy", "ws", [check()] * 3, now=now - timedelta(minutes=11))
    assert stuck(db, "ws", now=now) == {"ann": ["01-intro.ipynb: q1"]}
    events.record(db, "ann", "ws", [check(passed=True)], now=now)
    assert stuck(db, "ws", now=now) == {}


def test_rows_and_filters(db):
    """Do the rows give progress per lesson, and the filters find the stuck, the not started and the raised hand?"""
    now = utcnow()
    events.record(db, "ann", "ws", [check()] * 3 + [check(exercise="q2", passed=True)], now=now)
    events.record(db, "bob", "ws", [{"kind": "hand", "message": "<b>help</b>"}], now=now)
    events.record(db, "bob", "ws", [check(user="ann")])
    rows = {r.user: r for r in build_rows(db, "ws", ["ann", "bob", "cy"], {}, now=now)}
    assert rows["ann"].lessons == [{"notebook": "01-intro.ipynb", "passed": 1, "attempted": 2, "checks": 4}]
    assert [u for u, r in rows.items() if r.matches("stuck")] == ["ann"]
    assert [u for u, r in rows.items() if r.matches("not-started")] == ["bob", "cy"]
    assert [u for u, r in rows.items() if r.matches("hand")] == ["bob"]
    assert rows["bob"].hand["message"] == "<b>help</b>" and rows["bob"].refused == {"forged": 1}
    assert rows["cy"].server.state == "not started" and rows["ann"].as_json()["filters"] == ["all", "stuck"]


def test_exercise_view_counts_passes_and_common_wrong_feedback(db):
    """Does the per-exercise view count who passed and rank the wrong-answer feedback by frequency?"""
    events.record(db, "ann", "ws", [check(message="off by one")] * 2 + [check(message="wrong shape"), check(passed=True)])
    events.record(db, "bob", "ws", [check(message="off by one")])
    [q1] = exercise_view(db, "ws")
    assert (q1["passed"], q1["attempted"], q1["checks"]) == (1, 2, 5)
    assert [(w["message"], w["count"], w["users"]) for w in q1["wrong"]] == [("off by one", 3, 2), ("wrong shape", 1, 1)]


def test_server_states_from_the_hub_model():
    """Does one hub user model become pending, running with walltime left, stopped with its reason, or failed?"""
    assert server_of({"servers": {}}).state == "not started"
    assert server_of({"servers": {}}, "no room in the reservation").state == "failed"
    pending = server_of({"servers": {"": {"pending": "spawn", "state": {"job_id": "42"}}}})
    assert (pending.state, pending.detail) == ("pending", "Slurm job 42")
    started = (utcnow() - timedelta(minutes=30)).isoformat() + "Z"
    running = server_of({"servers": {"": {"ready": True, "started": started, "state": {"walltime_hours": 1}}}})
    assert running.state == "running" and running.detail in ("29 min left", "30 min left")
    stopped = server_of({"servers": {"": {"stopped": True, "state": {"last_stop_message": "walltime reached"}}}})
    assert (stopped.state, stopped.detail) == ("stopped", "walltime reached")


def test_slurm_reason_and_node_from_one_squeue_answer():
    """Does a pending row get Slurm's reason and estimated start, and a running one its node and end, from squeue's lines?"""
    servers = {"ann": server_of({"servers": {"": {"pending": "spawn", "state": {"job_id": "41"}}}}),
               "bob": server_of({"servers": {"": {"ready": True, "state": {"job_id": "42"}}}})}
    apply_squeue(servers, "41|PENDING|Reservation|n/a|2026-12-02T11:00:00|N/A\n"
                          "42|RUNNING|None|gpu-node-1|2026-12-02T09:00:00|2026-12-02T13:00:00\n")
    assert servers["ann"].detail.startswith("Slurm job 41 · Reservation") and servers["ann"].detail.endswith("estimated start 11:00")
    assert servers["bob"].detail == "on gpu-node-1 · Slurm job 42 · ends 13:00"


def test_learner_api_config_on_a_bare_config():
    """Does update_learner_api add the service scope to server tokens and users, keeping what was set, and set the URL?"""
    c = Config()
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", "shares!user"]
    c.JupyterHub.extra_user_scopes = {"read:groups"}
    c.Spawner.environment = {"KEEP": "1"}
    cfg = build_config({"hub": {"port": 8123}}, "t")
    configurer.update_learner_api(c, cfg)
    assert c.Spawner.server_token_scopes == ["users:activity!user", "access:servers!server", "shares!user", SCOPE]
    assert c.JupyterHub.extra_user_scopes == {"read:groups", SCOPE}
    assert c.Spawner.environment == {"KEEP": "1", "ACADEMY_SERVICE_URL": service_url(cfg)}
    assert service_url(cfg).endswith(":8123/services/academy/")
    bare = Config()
    configurer.update_learner_api(bare, cfg)
    assert bare.Spawner.server_token_scopes == ["users:activity!user", "access:servers!server", SCOPE]
    off = Config()
    configurer.update_learner_api(off, build_config({"workshops": {"enabled": False}}, "t"))
    assert "server_token_scopes" not in off.Spawner and "extra_user_scopes" not in off.JupyterHub


def test_service_url_prefers_the_public_url():
    """Do learner servers call the site's public address when one is configured?"""
    cfg = build_config({"workshops": {"public_url": "https://academy.example.nl/"}}, "t")
    assert service_url(cfg) == "https://academy.example.nl/services/academy/"


def test_an_older_workshop_database_gets_the_event_tables(tmp_path):
    """Does a workshops database made before the event tables existed get them on first use?"""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.orm import sessionmaker

    from academy.workshop.models import Workshop

    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    Workshop.__table__.create(engine)
    with sessionmaker(engine)() as session:
        assert events.record(session, "ann", "ws", [check()]).accepted == 1
        assert build_rows(session, "ws", ["ann"], {})[0].checks == 1
    assert {"learner_events", "learner_state", "learner_exercises", "learner_refusals"} <= set(inspect(engine).get_table_names())
