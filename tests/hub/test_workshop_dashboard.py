"""The live workshop dashboard on a real hub: three participants post events with their servers' own tokens.

Each participant's server is started for real; its token is read from the server process's
environment (we are root), which is exactly what a server extension sends. The trainer's
dashboard stream is read as a browser's EventSource would (testbed/sse.py), and every wait on it
has a generous timeout: speed belongs to benchmarks/dashboard.py.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

from support.hub import running_hub
from support.skip import need
from support.workshop import make_trainer, post_form, service_url, sheet_credentials, track, workshop_form
from testbed.hub import REPO, _RUN, make_learner
from testbed.sse import SseReader

pytestmark = pytest.mark.hub

PROFILES = """profiles:
  - slug: small
    display_name: Small · 1 core
    description: A learner server for the dashboard tests.
    cpus: 1
    memory: 1G
    hours: {default: 1, max: 2}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    need(os.geteuid() == 0, "root (participants' Unix accounts; their servers' tokens read from /proc)")
    profiles = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    profiles.write_text(PROFILES)
    with running_hub("wsdash", site={"profiles_file": str(profiles)}) as h:
        yield h


def server_token(name: str) -> str:
    """The API token the hub gave ``name``'s server, read from that process."""
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


class Room:
    """A workshop with three participants whose servers run, its trainer, and another workshop's trainer."""

    def __init__(self, hub):
        self.hub = hub
        self.slug, self.other_slug = f"dash{_RUN}", f"dosh{_RUN}"
        self.trainer, self.stranger = make_trainer(hub, "trd"), make_trainer(hub, "tro")
        track(*(f"{self.slug}-0{i}" for i in (1, 2, 3)))
        r = post_form(self.trainer.session, hub, "new", workshop_form(self.slug, count="3", profiles="small"))
        assert r.status_code == 200, r.text[-2000:]
        creds = sheet_credentials(r.text)
        assert post_form(self.stranger.session, hub, "new", workshop_form(self.other_slug, count="0", profiles="small")).status_code in (200, 302)
        self.names = sorted(creds)
        self.tokens = {}
        for name in self.names:
            session = hub.login(name, creds[name])
            self.tokens[name] = hub.token_for(session, name)  # the learner's own API token
            r = hub.api("POST", f"/users/{name}/server", self.tokens[name], json={"profile": "small", "hours": 1})
            assert r.status_code in (201, 202), r.text
        for name in self.names:
            hub.wait_ready(name, self.tokens[name], timeout=300)  # three servers at once on a loaded 2-core machine
        self.server_tokens = {name: server_token(name) for name in self.names}

    def url(self, path: str) -> str:
        return service_url(self.hub, path)

    def post(self, name: str, body, token: str | None = None, raw: bytes | None = None) -> requests.Response:
        token = token or self.server_tokens[name]
        return requests.post(self.url("api/events"), data=raw if raw is not None else json.dumps(body),
                             headers={"Authorization": f"token {token}", "Content-Type": "application/json"}, timeout=60)

    def trainer_get(self, path: str, who=None, **kwargs) -> requests.Response:
        who = who or self.trainer
        return requests.get(self.url(path), headers={"Authorization": f"token {who.token}"}, timeout=60, **kwargs)

    def stream(self, who=None) -> SseReader:
        who = who or self.trainer
        return SseReader(self.url(f"w/{self.slug}/dashboard/stream"), {"Authorization": f"token {who.token}"})

    def rows(self, filter_: str = "all") -> dict[str, dict]:
        r = self.trainer_get(f"api/workshops/{self.slug}/dashboard", params={"filter": filter_})
        assert r.status_code == 200, r.text
        return {row["user"]: row for row in r.json()["rows"]}


@pytest.fixture(scope="module")
def room(hub):
    room = Room(hub)
    yield room
    for name in room.names:
        hub.api("DELETE", f"/users/{name}/server", room.tokens[name])


def check(exercise: str, passed: bool, message: str = "Not quite.") -> dict:
    return {"kind": "check", "notebook": "01-python.ipynb", "exercise": exercise, "passed": passed,
            "message": message, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def test_each_event_shows_on_the_stream_and_stuck_finds_the_one(room):
    """Do three participants' events (posted with their servers' tokens) reach the trainer's stream, and does "stuck" find the one with three wrong answers?"""
    stream = room.stream()
    try:
        assert stream.wait_status() == 200
        stream.wait_for(lambda e: e.event == "row", timeout=120)  # subscribed: the first rows are in
        first, second, third = room.names
        for name, events in ((first, [check("q1", False)] * 3), (second, [check("q1", True, "Correct!")]),
                             (third, [{"kind": "hand", "message": "my kernel died"}])):
            r = room.post(name, {"events": events})
            assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text
            kind = events[0]["kind"]
            seen = stream.wait_for(lambda e: e.event == "activity" and any(
                a["user"] == name and a["kind"] == kind for a in e.json()), timeout=120)
            # The learner's own server also reports its open notebooks (``sessions``) on its own.
            assert {a["kind"] for a in seen.json() if a["user"] == name} <= {kind, "sessions"}
            assert sum(a["kind"] == kind for a in seen.json() if a["user"] == name) <= len(events)
            stream.wait_for(lambda e: e.event == "row" and e.json()["user"] == name and e.json()["last_activity"], timeout=120)
    finally:
        stream.close()
    assert list(room.rows("stuck")) == [first]
    assert list(room.rows("hand")) == [third]
    assert sorted(room.rows("not-started")) == [third]
    rows = room.rows()
    assert rows[first]["stuck_on"] == ["01-python.ipynb: q1"] and rows[second]["lessons"][0]["passed"] == 1
    assert all(rows[n]["server"]["state"] == "running" for n in room.names)


def test_forged_oversized_and_flooding_events_are_refused_counted_and_harmless(room):
    """Are a forged, an oversized and a flooding post refused and counted, while the dashboard keeps working?"""
    first, second, _ = room.names
    forged = room.post(first, {"events": [{**check("q2", True), "user": second}]})
    assert forged.status_code == 400
    assert room.post(first, None, raw=b'{"events": [' + b'"x",' * 20000 + b'"x"]}').status_code == 413
    huge = room.post(first, {"events": [check("q2", False, "m" * 5000)]})
    assert huge.status_code == 202 and huge.json()["reasons"] == {"too_long": 1}
    many = [room.post(first, {"events": [check(f"f{i % 5}", False)] * 50}).status_code for i in range(4)]
    assert 429 in many, many
    refused = room.rows()[first]["refused"]
    assert refused["forged"] == 1 and refused["too_large"] == 1 and refused["too_long"] == 1 and refused["flooding"] >= 50
    assert room.rows()[second]["refused"] == {}
    stream = room.stream()
    try:  # still live: a good event of someone else shows at once
        assert stream.wait_status() == 200
        stream.wait_for(lambda e: e.event == "row", timeout=120)  # subscribed: the first rows are in
        r = room.post(second, {"events": [check("q3", True, "Correct!")]})
        assert r.status_code == 202
        stream.wait_for(lambda e: e.event == "activity" and any(a["exercise"] == "q3" for a in e.json()), timeout=120)
    finally:
        stream.close()
    assert room.trainer_get(f"w/{room.slug}/dashboard").status_code == 200


def test_a_clever_student_cannot_post_for_others_or_elsewhere(room, hub):
    """Is a post to another workshop, without a token or with a bad one refused, and is the learner's own API token accepted?"""
    first = room.names[0]
    assert room.post(first, {"workshop": room.other_slug, "events": [check("q1", True)]}).status_code == 403
    assert requests.post(room.url("api/events"), json={"events": []}, timeout=60).status_code == 401
    assert room.post(first, {"events": []}, token="not-a-token").status_code == 401
    outsider = make_learner(hub, "outs")
    assert room.post(first, {"events": [check("q1", True)]}, token=outsider.token).status_code == 403
    own = room.post(first, {"events": [check("q9", True, "Correct!")]}, token=room.tokens[first])
    assert own.status_code == 202 and own.json()["accepted"] == 1
    for bad in (b"not json", b"[]", b'{"events": {}}', json.dumps({"events": [check("q1", True)] * 51}).encode()):
        assert room.post(first, None, raw=bad).status_code == 400, bad


def test_learner_messages_are_text_on_every_page(room):
    """Is HTML a learner sends as feedback or a hand message shown as text, never run, on the dashboard and exercise pages?"""
    second = room.names[1]
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert room.post(second, {"events": [check("q4", False, evil), {"kind": "hand", "message": evil}]}).status_code == 202
    for path in (f"w/{room.slug}/dashboard", f"w/{room.slug}/dashboard/exercises"):
        page = room.trainer_get(path)
        assert page.status_code == 200 and "<img src=x" not in page.text and '<script>alert("x")' not in page.text, path
    assert "&lt;script&gt;alert" in room.trainer_get(f"w/{room.slug}/dashboard/exercises").text


def test_another_workshops_trainer_gets_403_everywhere(room):
    """Does a trainer of another workshop get 403 on the dashboard, its stream, its exercises and its rows?"""
    for path in (f"w/{room.slug}/dashboard", f"w/{room.slug}/dashboard/stream", f"w/{room.slug}/dashboard/exercises",
                 f"api/workshops/{room.slug}/dashboard"):
        assert room.trainer_get(path, who=room.stranger).status_code == 403, path
        if not path.endswith("stream"):  # the stream never ends; its 200 is the first test's
            assert room.trainer_get(path).status_code == 200, path
    participant = requests.get(room.url(f"w/{room.slug}/dashboard"), timeout=60,
                               headers={"Authorization": f"token {room.tokens[room.names[0]]}"})
    assert participant.status_code == 403


def test_the_learner_sees_what_is_kept_about_them(room):
    """Does api/events/mine show the caller their own events, hand and the trainer group, and nobody else's?"""
    third = room.names[2]
    r = requests.get(room.url("api/events/mine"), headers={"Authorization": f"token {room.server_tokens[third]}"}, timeout=60)
    assert r.status_code == 200, r.text
    mine = r.json()
    assert mine["user"] == third and mine["trainer_group"] == f"{room.slug}-trainers"
    assert {e["user"] for e in mine["events"]} == {third}
    assert mine["workshops"][0]["hand"]["message"] == "my kernel died"


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium through Playwright (the same launch as tests/browser)."""
    need(os.access("/usr/bin/chromium", os.X_OK), "Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.mark.browser
def test_the_page_updates_without_reload_and_filters_in_chromium(room, chromium):
    """In Chromium, does a raised hand and a stuck learner show on the open dashboard without a reload, as text, and does "stuck" filter the rows?"""
    first, second, third = room.names
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(f"{room.hub.url}/hub/login?next=/services/academy/w/{room.slug}/dashboard")
    page.fill("input[name=username]", room.trainer.name)
    page.fill("input[name=password]", room.trainer.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/w/{room.slug}/dashboard*")
    page.wait_for_function("() => document.getElementById('live-state').dataset.state === 'live'")
    page.evaluate("() => { window.__loaded = true; }")  # gone if the page reloads
    evil = "<img src=x onerror=\"window.__pwned = 1\">"
    assert room.post(second, {"events": [{"kind": "hand", "message": evil}]}).status_code == 202
    assert room.post(third, {"events": [check("qb", False)] * 3}).status_code == 202
    page.wait_for_function(f"() => (document.querySelector('#row-{second} .hand-message') || {{}}).textContent === {json.dumps(evil)}")
    page.wait_for_function(f"() => !!document.querySelector('#row-{third} .stuck')")
    assert page.evaluate("() => window.__loaded === true && window.__pwned === undefined")
    page.click("#filter-stuck")
    visible = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.user)")
    assert third in visible and second not in visible
    page.click("#filter-hand")
    assert second in page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.user)")
    page.screenshot(path=str(REPO / "test-output" / "workshop-dashboard.png"), full_page=True)
