"""Ask a trainer, the hub's half: a learner's server token shares that server with a group and ends it.

A real hub and proxy on the local backend (the hub config of ``academy.trainer_access``: the server
token and the user role hold ``shares!user`` and ``read:groups:name``). The share is made with the
production client (``academy.labtools.servicelink.HubShares``) and the token the hub gave the learner's
server, read from that process as the server itself reads it; End access goes through the server's
own ``academy/api/help``. The Academy service's events API (helper A's part of issue #10) is not on
this branch, so nothing here depends on it; tests/browser/test_help_flow.py covers the whole flow.
"""
from __future__ import annotations

import asyncio
import json
import time
import types
import uuid

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from academy.labtools.servicelink import HubShares, ServerIdentity
from support.lab import kernel_output
from support.workshop import admin_token
from support.share import server_identity
from testbed.hub import make_learner

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def shared(hub):
    """A learner with a running server, a trainer group with one trainer, and another workshop's trainer."""
    admin = admin_token(hub)
    learner, trainer, stranger = make_learner(hub, "share"), make_learner(hub, "strain"), make_learner(hub, "sother")
    group, other_group = f"ws{uuid.uuid4().hex[:6]}-trainers", f"wx{uuid.uuid4().hex[:6]}-trainers"
    for name, member in ((group, trainer), (other_group, stranger)):
        assert hub.api("POST", f"/groups/{name}", admin).status_code == 201
        assert hub.api("POST", f"/groups/{name}/users", admin, json={"users": [member.name]}).status_code == 200
    r = hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu", "hours": 1})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(learner.name, learner.token, timeout=240)
    me = server_identity(hub, learner)
    return types.SimpleNamespace(learner=learner, trainer=trainer, stranger=stranger, group=group,
                                 other_group=other_group, me=me, admin=admin)


def at_server(hub, s, who, method, path, **kwargs):
    return who.session.request(method, f"{hub.url}/user/{s.learner.name}/{path}", timeout=60,
                               headers={"Authorization": f"token {who.token}"}, **kwargs)


async def _open_channels(hub, s, kernel_id: str):
    url = f"ws://127.0.0.1:{hub.port}/user/{s.learner.name}/api/kernels/{kernel_id}/channels"
    return await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {s.trainer.token}"}))


def test_the_server_token_cannot_share_what_is_not_its_own(hub, shared):
    """Can the learner's server token NOT share another user's server, NOT grant more than access to its own,
    and is a body naming a group refused by the server's help API (the group is never the browser's choice)?"""
    s = shared
    other = ServerIdentity(**{**s.me.__dict__, "user": s.trainer.name})
    answer = asyncio.run(HubShares(other).share_with_group(s.group))
    assert answer.status in (403, 404), answer  # refused: no `shares` on someone else's server
    r = hub.api("POST", f"/shares/{s.learner.name}/", s.me.token, json={"group": s.group, "scopes": ["admin:users"]})
    assert r.status_code in (400, 403), r.text
    r = at_server(hub, s, s.learner, "POST", "academy/api/help", json={"share": True, "group": s.other_group})
    assert r.status_code == 400 and "group" in r.json()["message"], r.text
    assert hub.api("GET", f"/shares/{s.learner.name}/", s.admin).json()["items"] == []


def test_a_trainer_opens_the_shared_server_and_loses_it_at_end_access(hub, shared):
    """Does a share made with the server's own token let the trainer group in (a cell runs as the learner)
    but not another workshop's trainer; and after End access in the learner's server, is the trainer's
    open kernel connection closed and every next request refused with 403 at once?"""
    s = shared
    answer = asyncio.run(HubShares(s.me).share_with_group(s.group))
    assert answer.ok, answer
    assert answer.data["server"]["url"] == f"/user/{s.learner.name}/" and answer.data["group"]["name"] == s.group

    # The server honours the group share once it has read it from the hub (every 30 s at most while unshared;
    # at once when its own "Ask a trainer" made it): a generous wait, speed is not what is tested here.
    for _ in range(90):
        r = at_server(hub, s, s.trainer, "POST", "api/kernels", json={"name": "python3"})
        if r.status_code != 403:
            break
        time.sleep(1)
    assert r.status_code == 201, r.text
    assert at_server(hub, s, s.stranger, "GET", "api/status").status_code == 403
    kernel_id = r.json()["id"]
    as_trainer = types.SimpleNamespace(name=s.learner.name, token=s.trainer.token)
    out = kernel_output(hub, as_trainer, kernel_id, "import os; print('ran as', os.environ['JUPYTERHUB_USER'])")
    assert out.strip() == f"ran as {s.learner.name}"
    # The trainer's own helper: "Ask" and the privacy view are the learner's alone.
    assert at_server(hub, s, s.trainer, "POST", "academy/api/help", json={"share": True}).status_code == 403
    assert at_server(hub, s, s.trainer, "GET", "academy/api/help/mine").status_code == 403
    state = at_server(hub, s, s.learner, "GET", "academy/api/help").json()
    assert state["shared"] is True and state["share_path"] == f"/user/{s.learner.name}/"

    async def end_with_a_connection_open():
        conn = await _open_channels(hub, s, kernel_id)
        ended = await asyncio.get_running_loop().run_in_executor(
            None, lambda: at_server(hub, s, s.learner, "DELETE", "academy/api/help"))
        closed = await asyncio.wait_for(_drain(conn), 60)
        return ended, closed

    ended, closed = asyncio.run(end_with_a_connection_open())
    assert ended.status_code == 200 and ended.json()["shared"] is False, ended.text
    assert closed, "the trainer's kernel connection stayed open after End access"
    assert hub.api("GET", f"/shares/{s.learner.name}/", s.admin).json()["items"] == []
    assert at_server(hub, s, s.trainer, "GET", "api/status").status_code == 403
    assert at_server(hub, s, s.trainer, "GET", f"api/kernels/{kernel_id}").status_code == 403
    assert at_server(hub, s, s.learner, "GET", "api/status").status_code == 200


async def _drain(conn) -> bool:
    """Read until the server closes the connection; True when it did."""
    while True:
        msg = await conn.read_message()
        if msg is None:
            return True


def test_outside_a_workshop_nothing_is_offered_and_forwarding_pauses(hub, shared):
    """With no workshop for this learner (no events API on this branch's service), does the help API say
    Ask a trainer is unavailable with a reason, refuse to ask, and does the forwarder pause instead of retrying?"""
    s = shared
    state = at_server(hub, s, s.learner, "GET", "academy/api/help").json()
    assert state["available"] is False and state["reason"], state
    r = at_server(hub, s, s.learner, "POST", "academy/api/help", json={"share": True})
    assert r.status_code == 409 and "not available" in r.json()["message"], r.text
    # The sessions watch sends within ~10 s; the service refuses, and the forwarder goes quiet.
    for _ in range(60):
        fwd = at_server(hub, s, s.learner, "GET", "academy/api/help").json()["forwarding"]
        if fwd["paused"]:
            break
        time.sleep(1)
    assert fwd["paused"] and fwd["queued"] == 0 and fwd["last_error"], json.dumps(fwd)
