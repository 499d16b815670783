"""Reservation binding and the workshop checks on a real SQLite database, without a hub."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from academy.profiles import profile_from_dict
from academy.workshop.binding import bind
from academy.workshop.forms import WorkshopRequest, check_request
from academy.workshop.models import AMSTERDAM, Participant, TeardownStore, Workshop, open_db, to_utc, utcnow

CPU = profile_from_dict({"slug": "cpu", "display_name": "CPU", "description": "", "cpus": 1, "memory": "1G",
                         "hours": {"default": 1, "max": 2}})
WS = profile_from_dict({"slug": "workshop", "display_name": "W", "description": "", "cpus": 1, "memory": "1G",
                        "hours": {"default": 1, "max": 2}, "reservation": "fixed", "groups": ["workshop"]})


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path}/w.sqlite"
    sessions = open_db(url)
    now = utcnow()
    with sessions() as s:
        w = Workshop(slug="dl", title="DL", start=now - timedelta(hours=1), end=now + timedelta(hours=1), profiles=["workshop"],
                     reservation="academy-workshop", trainer_group="dl-trainers", participant_group="dl", created_by="t")
        w.participants.append(Participant(username="dl-01"))
        later = Workshop(slug="ml", title="ML", start=now + timedelta(days=1), end=now + timedelta(days=1, hours=2),
                         profiles=["workshop"], reservation="academy-workshop", trainer_group="ml-t", participant_group="ml", created_by="t")
        later.participants.append(Participant(username="ml-01"))
        s.add_all([w, later])
        s.commit()
    return url, sessions


def test_participant_of_a_running_workshop_gets_only_its_profile_in_its_reservation(db):
    """During the workshop, is the participant bound to its profile and reservation, past the profile's group gate?"""
    b = bind(db[0], "dl-01", [CPU, WS])
    assert [p.slug for p in b.profiles] == ["workshop"]
    assert b.profiles[0].reservation == "academy-workshop" and b.profiles[0].allows(set())
    assert "until" in b.message


def test_outside_the_window_a_clear_message_and_no_workshop_profile(db):
    """Before the workshop, does the participant keep only their normal profiles and read when theirs opens?"""
    b = bind(db[0], "ml-01", [CPU, WS])
    assert [p.slug for p in b.profiles if p.allows(set())] == ["cpu"]
    assert "its profile and reservation are yours only then" in b.message
    assert bind(db[0], "someone", [CPU, WS]).message == ""


def test_overlapping_reservation_and_teardown_store(db):
    """Is a second workshop in the same reservation at the same time refused, and does the teardown store remember steps?"""
    url, sessions = db
    start = datetime.now(AMSTERDAM)
    req = WorkshopRequest(slug="clash", title="C", start=start, end=start + timedelta(minutes=30), profiles=["cpu"],
                          reservation="academy-workshop")
    with sessions() as s:
        problems = check_request(req, s, known_profiles={"cpu"}, max_participants=60)
    assert [p.field for p in problems] == ["reservation"] and "'dl'" in problems[0].message
    store = TeardownStore(sessions)
    assert not store.done("dl", "dl-01", "archive")
    store.mark("dl", "dl-01", "archive")
    store.mark("dl", "dl-01", "archive")
    assert store.done("dl", "dl-01", "archive") and len(store.completed("dl")) == 1
    assert to_utc(start).tzinfo is None
