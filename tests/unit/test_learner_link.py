"""The learner side of the live workshop: progress events forwarded in bounded batches, and "Ask a trainer".

The Academy service's ``POST api/events`` and ``GET api/events/mine`` are helper A's part of issue #10,
on another branch; here a small local tornado app STANDS IN for them (and for the hub's sharing
endpoints in the help-desk tests), answering as the contract says (202, 400, 403, 429, 503) or not at
all. Everything else is production code talking real HTTP through tornado's AsyncHTTPClient. The real
hub's sharing API is exercised in tests/hub/test_trainer_share.py. Time is a controlled clock, never a sleep.
"""
from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tornado import web
from tornado.httpserver import HTTPServer

from academy.labtools.forward import EventForwarder, ProgressTail, event_from_line, make_event
from academy.labtools.help import HelpDesk, HelpRefused
from academy.labtools.servicelink import ServerIdentity, call
from academy.trainer_access import update_trainer_access


class StandIn:
    """What the stand-in service and hub received, and how they answer next."""

    def __init__(self) -> None:
        self.batches: list[list[dict]] = []
        self.bodies: list[bytes] = []
        self.answers: list[int] = []  # status of the next POSTs to api/events; empty: 202
        self.mine = {"trainer_group": "ws1-trainers", "events": []}
        self.mine_status = 200
        self.shared: list[str] = []
        self.share_posts: list[dict] = []
        self.slow: asyncio.Event | None = None


class Events(web.RequestHandler):
    async def post(self):
        s: StandIn = self.settings["standin"]
        if s.slow is not None:
            await s.slow.wait()
        status = s.answers.pop(0) if s.answers else 202
        s.bodies.append(self.request.body)
        self.set_status(status)
        if status == 202:
            events = json.loads(self.request.body)["events"]
            s.batches.append(events)
            self.finish({"accepted": len(events), "refused": 0})
        else:
            self.finish({"message": f"stand-in says {status}"})


class Mine(web.RequestHandler):
    def get(self):
        s: StandIn = self.settings["standin"]
        self.set_status(s.mine_status)
        self.finish(s.mine if s.mine_status == 200 else {"message": "not a participant"})


class Shares(web.RequestHandler):
    def get(self, user):
        self.finish(json.dumps([{"group": {"name": g}} for g in self.settings["standin"].shared]))

    def post(self, user):
        s: StandIn = self.settings["standin"]
        body = json.loads(self.request.body)
        s.share_posts.append(body)
        s.shared.append(body["group"])
        self.finish({"server": {"url": f"/user/{user}/"}, "group": {"name": body["group"]}})

    def delete(self, user):
        self.settings["standin"].shared.clear()
        self.set_status(204)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def standin():
    s = StandIn()
    app = web.Application([
        (r"/services/academy/api/events", Events), (r"/services/academy/api/events/mine", Mine),
        (r"/hub/api/shares/([^/]+)/", Shares),
    ], standin=s)
    port = _free_port()
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    me = ServerIdentity.from_env({"JUPYTERHUB_USER": "ann", "JUPYTERHUB_API_URL": f"http://127.0.0.1:{port}/hub/api",
                                  "JUPYTERHUB_API_TOKEN": "server-token", "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/"})
    yield s, me
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def forwarder_for(me: ServerIdentity, clock: Clock, **kw) -> EventForwarder:
    async def post(events):
        return await call(me.service_url + "api/events", me.token, "POST", {"events": events})
    return EventForwarder(post=post, clock=clock, **kw)


def test_a_progress_line_becomes_an_event_without_the_user_name():
    """Is a record_event line forwarded as the contract's event, with no user name and capped strings,
    and is anything else in the file (garbage, another kind) skipped?"""
    line = json.dumps({"time": "2026-12-02T10:00:00+00:00", "user": "bob", "notebook": "01", "exercise": "softmax",
                       "kind": "check", "passed": False, "message": "x" * 5000}).encode() + b"\n"
    event = event_from_line(line)
    assert set(event) == {"kind", "notebook", "exercise", "passed", "message", "time"}
    assert event["passed"] is False and len(event["message"]) == 1000 and event["time"].startswith("2026-12-02")
    assert event_from_line(b"{not json\n") is None
    assert event_from_line(json.dumps({"kind": "share"}).encode()) is None  # only the server itself makes those
    with pytest.raises(ValueError):
        make_event("hand-of-god")


def test_the_tail_starts_at_the_end_reads_whole_lines_and_resumes_from_its_cursor(tmp_path):
    """Does a first start skip what the file already held, a half-written line wait, and a restart resume
    from the saved cursor (and a truncated file start over)?"""
    path = tmp_path / "progress.jsonl"
    path.write_bytes(b'{"old": 1}\n')
    tail = ProgressTail(path)
    assert tail.read() == []
    with open(path, "ab") as f:
        f.write(b'{"a": 1}\n{"b": 2')
    lines = tail.read()
    assert [line for _, line in lines] == [b'{"a": 1}\n']
    with open(path, "ab") as f:
        f.write(b'}\n{"c": 3}\n')
    first, second = tail.read()
    assert second[1] == b'{"c": 3}\n'
    tail.save(first[0])  # only {"b": 2} reached the service
    again = ProgressTail(path)
    assert [line for _, line in again.read()] == [b'{"c": 3}\n']
    path.write_bytes(b'{"new": 1}\n')
    assert [line for _, line in again.read()] == [b'{"new": 1}\n']


async def test_batches_are_bounded_in_count_size_and_rate(standin):
    """With 300 events queued, does each send hold at most 50 events and 32 KiB, is there at most one send
    per interval, and does the client-side rate keep the sustained pace below the service's 10 events/s?"""
    s, me = standin
    clock = Clock()
    fwd = forwarder_for(me, clock, rate_per_second=8.0, burst=50)
    for i in range(300):
        fwd.add(make_event("check", notebook="01", exercise=f"e{i}", passed=False, message="é" * 1000))
    await fwd.tick()
    await fwd.tick()  # same instant: not due yet
    assert len(s.batches) == 1
    for _ in range(60):
        clock.now += 1.0
        await fwd.tick()
    assert all(len(b) <= 50 for b in s.batches) and all(len(body) <= 32 * 1024 for body in s.bodies)
    sent = sum(len(b) for b in s.batches)
    # 60 s at 8/s plus the first burst of 50 at most; nothing sent twice, order kept.
    assert sent <= 50 + 8 * 60 + 1
    names = [e["exercise"] for b in s.batches for e in b]
    assert names == [f"e{i}" for i in range(len(names))] and fwd.stats.sent == sent


async def test_the_queue_is_bounded_and_counts_what_it_drops(standin):
    """When a learner floods (or the service is away long), does the queue keep only the newest
    max_queue events and count the dropped ones?"""
    _, me = standin
    fwd = forwarder_for(me, Clock(), max_queue=10)
    for i in range(25):
        fwd.add(make_event("hint", exercise=f"e{i}"))
    assert len(fwd.queue) == 10 and fwd.stats.dropped_overflow == 15
    assert fwd.queue[0].event["exercise"] == "e15"


async def test_a_failing_service_gets_retries_with_growing_back_off_and_nothing_is_lost(standin):
    """While the service answers 503 and 429, does the batch stay first in line with waits that grow
    (up to the cap), and once it answers again, does every event arrive exactly once, in order?"""
    s, me = standin
    clock = Clock()
    fwd = forwarder_for(me, clock, backoff_first=2.0, backoff_max=16.0)
    for i in range(5):
        fwd.add(make_event("check", exercise=f"e{i}", passed=True))
    s.answers = [503, 503, 429, 503, 503, 503]
    waits = []
    for _ in range(6):
        before = len(s.bodies)
        while len(s.bodies) == before:
            clock.now += 0.5
            await fwd.tick()
        waits.append(fwd._next_send - clock.now)
    assert s.batches == [] and len(fwd.queue) == 5 and fwd.stats.failures == 6
    assert waits[0] < waits[1] < waits[2] and max(waits) <= 16.0 * 1.2
    while not s.batches:
        clock.now += 1.0
        await fwd.tick()
    assert [e["exercise"] for e in s.batches[0]] == [f"e{i}" for i in range(5)] and not fwd.queue


async def test_no_service_at_all_is_a_retry_not_a_crash():
    """With nothing listening at the service's address, does a send fail softly (599) and keep the events?"""
    port = _free_port()
    me = ServerIdentity.from_env({"JUPYTERHUB_USER": "ann", "JUPYTERHUB_API_URL": f"http://127.0.0.1:{port}/hub/api",
                                  "JUPYTERHUB_API_TOKEN": "t"})
    fwd = forwarder_for(me, Clock())
    fwd.add(make_event("hint"))
    await fwd.tick()
    assert fwd.stats.last_status == 599 and len(fwd.queue) == 1 and fwd.stats.failures == 1


async def test_not_in_a_workshop_pauses_for_a_long_time_and_a_refused_batch_is_dropped(standin):
    """Does a 403 (not a participant) drop the queue and pause sending for pause_seconds, counting what
    comes meanwhile; and does a 400 drop just that batch so later events still go?"""
    s, me = standin
    clock = Clock()
    fwd = forwarder_for(me, clock, pause_seconds=600)
    fwd.add(make_event("hint", exercise="a"))
    s.answers = [403]
    await fwd.tick()
    assert fwd.paused and not fwd.queue and fwd.stats.dropped_paused == 1
    fwd.add(make_event("hint", exercise="b"))
    clock.now += 599
    await fwd.tick()
    assert len(s.bodies) == 1 and fwd.stats.dropped_paused == 2
    clock.now += 2
    s.answers = [400]
    fwd.add(make_event("hint", exercise="c"))
    await fwd.tick()
    assert fwd.stats.dropped_bad_batch == 1 and not fwd.queue
    fwd.add(make_event("hint", exercise="d"))
    clock.now += 1
    await fwd.tick()
    assert [e["exercise"] for e in s.batches[-1]] == ["d"]


async def test_a_slow_service_never_blocks_the_loop_or_doubles_a_send(standin):
    """While a send waits on a slow service, does the event loop keep running other work, and does a
    second tick meanwhile send nothing?"""
    s, me = standin
    s.slow = asyncio.Event()
    clock = Clock()
    fwd = forwarder_for(me, clock)
    fwd.add(make_event("hint"))
    sending = asyncio.ensure_future(fwd.tick())
    ran = []
    for i in range(5):
        await asyncio.sleep(0.01)
        ran.append(i)
    clock.now += 5
    await fwd.tick()
    assert ran == [0, 1, 2, 3, 4] and not sending.done()
    s.slow.set()
    await sending
    assert len(s.bodies) == 1 and fwd.stats.sent == 1


async def test_a_flood_during_a_slow_send_loses_nothing_it_should_keep(standin):
    """If the queue overflows while a batch is in flight, are exactly the sent events taken off the queue
    (not newer ones that were never sent)?"""
    s, me = standin
    s.slow = asyncio.Event()
    fwd = forwarder_for(me, Clock(), max_queue=5, max_batch=3)
    for i in range(3):
        fwd.add(make_event("hint", exercise=f"old{i}"))
    sending = asyncio.ensure_future(fwd.tick())
    await asyncio.sleep(0.05)
    for i in range(4):
        fwd.add(make_event("hint", exercise=f"new{i}"))  # pushes old0 and old1 out
    s.slow.set()
    await sending
    assert [e["exercise"] for e in s.batches[0]] == ["old0", "old1", "old2"]
    assert [item.event["exercise"] for item in fwd.queue] == ["new0", "new1", "new2", "new3"]


async def test_ask_shares_only_with_the_services_trainer_group_and_end_revokes(standin):
    """Does "Ask a trainer" with consent share the server with exactly the group the service names and send
    hand and share (its message the server's path); and does End access revoke and send share_ended and
    hand_lowered?"""
    s, me = standin
    fwd = forwarder_for(me, Clock())
    desk = HelpDesk(me, fwd, "consent")
    state = await desk.ask("stuck on softmax", share=True)
    assert s.share_posts == [{"group": "ws1-trainers"}] and state.shared and state.share_path == "/user/ann/"
    assert [(e.event["kind"], e.event["message"]) for e in fwd.queue] == [("hand", "stuck on softmax"), ("share", "/user/ann/")]
    state = await desk.end()
    assert not state.shared and not state.hand and s.shared == []
    assert [e.event["kind"] for e in fwd.queue][-2:] == ["share_ended", "hand_lowered"]


async def test_ask_without_consent_or_outside_a_workshop(standin):
    """Does asking without consent raise only the hand (no share); and is asking refused, with the reason,
    when the service says the learner is in no active workshop or names no valid trainer group?"""
    s, me = standin
    desk = HelpDesk(me, forwarder_for(me, Clock()), "consent")
    state = await desk.ask("", share=False)
    assert state.hand and not state.shared and s.share_posts == []
    s.mine_status = 403
    with pytest.raises(HelpRefused, match="not a participant"):
        await desk.ask("", share=True)
    s.mine_status, s.mine = 200, {"trainer_group": "../admin"}
    with pytest.raises(HelpRefused, match="no trainer group"):
        await desk.ask("", share=True)
    assert s.share_posts == []


async def test_a_workshop_that_begins_ends_the_forwarders_pause(standin):
    """When the forwarder paused on a 403 before the workshop began, does a help refresh that finds the
    learner in a workshop resume sending, so the hand is not dropped?"""
    s, me = standin
    clock = Clock()
    fwd = forwarder_for(me, clock)
    fwd.add(make_event("hint"))
    s.answers = [403]
    await fwd.tick()
    assert fwd.paused
    desk = HelpDesk(me, fwd, "consent")
    await desk.ask("help", share=False)
    assert not fwd.paused
    await fwd.tick()
    assert [e["kind"] for e in s.batches[-1]] == ["hand"]


async def test_always_mode_shares_at_start_and_end_keeps_it(standin):
    """With trainer_access "always", is the server shared at the first refresh without asking, announced
    with a share event, and does End access lower the hand but leave the site's share in place?"""
    s, me = standin
    fwd = forwarder_for(me, Clock())
    desk = HelpDesk(me, fwd, "always")
    state = await desk.refresh()
    assert state.shared and s.shared == ["ws1-trainers"] and [e.event["kind"] for e in fwd.queue] == ["share"]
    await desk.refresh()
    assert s.share_posts == [{"group": "ws1-trainers"}]  # not shared twice
    state = await desk.end()
    assert state.shared and s.shared == ["ws1-trainers"]


def test_hub_config_lets_a_server_token_share_its_own_server():
    """Does the hub config keep the server token's default scopes and add shares!user and read:groups:name,
    give them to every user (the hub grants a token only what its user holds), pass the setting to servers,
    and compose with the event API's scope instead of defining a user role (which would make the hub drop
    extra_user_scopes)?"""
    from traitlets.config import Config

    from academy.configurer import apply_config
    from academy.siteconfig import build_config

    cfg = {"workshops": {"enabled": True, "trainer_access": "always"}}
    c = Config()
    update_trainer_access(c, cfg)
    assert c.Spawner.server_token_scopes == ["access:servers!server", "users:activity!user", "shares!user", "read:groups:name"]
    assert c.JupyterHub.extra_user_scopes == {"shares!user", "read:groups:name"}
    assert c.Spawner.environment["ACADEMY_TRAINER_ACCESS"] == "always"
    c = apply_config(Config(), build_config({}, "t"))
    both = {"access:services!service=academy", "shares!user", "read:groups:name"}
    assert both <= set(c.Spawner.server_token_scopes) and {"access:servers!server", "users:activity!user"} <= set(c.Spawner.server_token_scopes)
    assert c.JupyterHub.extra_user_scopes == both
    assert "user" not in [r["name"] for r in c.JupyterHub.get("load_roles", [])]
    c = Config()
    update_trainer_access(c, {"workshops": {"enabled": False, "trainer_access": "consent"}})
    assert "server_token_scopes" not in c.Spawner


async def test_open_notebooks_are_sent_only_when_they_change(tmp_path, monkeypatch, standin):
    """Does the sessions watch send the open notebooks (not consoles or files) once per change, and name
    fewer of them rather than cut the JSON when the list is longer than the message cap?"""
    from academy.labtools.learner import AcademyLearnerLink, LearnerLink

    monkeypatch.setenv("ACADEMY_PROGRESS_FILE", str(tmp_path / "progress.jsonl"))
    _, me = standin

    class Sessions:  # the server's session manager, as far as the watch uses it
        rows: list[dict] = []

        async def list_sessions(self):
            return self.rows

    sessions = Sessions()
    link = LearnerLink(AcademyLearnerLink(), me, sessions, log=None)
    sessions.rows = [{"type": "notebook", "path": "b.ipynb"}, {"type": "console", "path": "c"},
                     {"type": "notebook", "path": "a.ipynb"}]
    await link.watch_sessions()
    await link.watch_sessions()
    sent = [item.event for item in link.forwarder.queue]
    assert [(e["kind"], json.loads(e["message"])) for e in sent] == [("sessions", ["a.ipynb", "b.ipynb"])]
    sessions.rows = [{"type": "notebook", "path": f"lessons/{i:03d}-" + "x" * 40 + ".ipynb"} for i in range(40)]
    await link.watch_sessions()
    last = link.forwarder.queue[-1].event["message"]
    assert len(last) <= 1000 and 0 < len(json.loads(last)) < 40


def test_end_access_forgets_cached_logins_and_closes_only_others_connections():
    """After a share is revoked, does the server empty its cache of the hub's answers and close the
    trainer's kernel and terminal websockets, leaving the owner's open?"""
    from types import SimpleNamespace

    from jupyter_server.auth import User
    from jupyterhub.services.auth import _ExpiringDict

    from academy.labtools import cutoff

    class Socket:  # a websocket handler, as far as the cut-off uses it
        def __init__(self, name):
            self.current_user, self.closed = User(username=name), None

        def close(self, code, reason):
            self.closed = (code, reason)

    class Connection:  # stands in for the server's kernel websocket connection class
        def __init__(self, handler):
            self.websocket_handler = handler

        def connect(self):
            return "connected"

    web_app = SimpleNamespace(settings={"kernel_websocket_connection_class": Connection})
    cutoff.track_kernel_connections(web_app)
    tracked = web_app.settings["kernel_websocket_connection_class"]
    ann_kernel, trainer_kernel, trainer_term = Socket("ann"), Socket("tom"), Socket("tom")
    # The server's handler holds its connection (only a weak reference is kept), so the test holds them too.
    connections = [tracked(h) for h in (ann_kernel, trainer_kernel)]
    assert [c.connect() for c in connections] == ["connected", "connected"]
    cache = _ExpiringDict(300)
    cache["token:abc:"] = {"name": "tom"}
    terminal = SimpleNamespace(clients=[trainer_term])
    web_app.settings["terminal_manager"] = SimpleNamespace(terminals={"1": terminal})
    server = SimpleNamespace(identity_provider=SimpleNamespace(hub_auth=SimpleNamespace(cache=cache)), web_app=web_app)
    assert cutoff.cut_off_others(server, "ann") == 2
    assert len(cache) == 0 and ann_kernel.closed is None
    assert trainer_kernel.closed[0] == trainer_term.closed[0] == 4003


def test_group_shares_are_honoured_only_for_members_of_a_shared_group():
    """Does the server's access check (JupyterHub's answer first) let in a user whose hub-reported groups
    include a group this server is shared with, and nobody else: not another group's member, not a
    service, not anyone once the shares are cleared by End access?"""
    from types import SimpleNamespace

    from academy.labtools.groupshare import ShareGroups, honour_group_shares

    owner_scopes = {"access:servers!server=ann/"}
    hub_auth = SimpleNamespace(check_scopes=lambda required, user: required & set(user.get("scopes", [])))
    shares = ShareGroups()
    honour_group_shares(hub_auth, shares)
    required = {"access:servers!server=ann/", "access:servers!user=ann"}
    ann = {"kind": "user", "name": "ann", "groups": [], "scopes": list(owner_scopes)}
    tom = {"kind": "user", "name": "tom", "groups": ["ws1-trainers"], "scopes": []}
    eve = {"kind": "user", "name": "eve", "groups": ["ws2-trainers"], "scopes": []}
    svc = {"kind": "service", "name": "x", "groups": ["ws1-trainers"], "scopes": []}
    assert hub_auth.check_scopes(required, ann) == owner_scopes
    assert not hub_auth.check_scopes(required, tom)
    shares.update(["ws1-trainers"])
    assert hub_auth.check_scopes(required, tom) and not hub_auth.check_scopes(required, eve)
    assert not hub_auth.check_scopes(required, svc)
    shares.clear()
    assert not hub_auth.check_scopes(required, tom) and hub_auth.check_scopes(required, ann)
