"""The GPU budget for JupyterLab's status bar without a cluster: the hub's answer, its config, and the server's cache.

``answer_for`` is the hub handler's logic, fed the budgeted spawner's own account choice and a recorded
sshare answer. The learner server's cache talks real HTTP to a small local tornado app that STANDS IN
for the hub's ``/hub/api/academy/budget`` (the real hub endpoint is exercised in
tests/slurm/test_slurm_budgets.py); it counts the calls it gets.
"""
from __future__ import annotations

import json
import socket
import time
from dataclasses import asdict

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets.config import Config

from academy.labtools.budget import BudgetCache, clean
from academy.labtools.servicelink import ServerIdentity
from academy.slurm import budgets
from academy.slurm.accounting_config import update_slurm_accounting
from academy.slurm.budget_api import SCOPE, BudgetHandler, answer_for
from test_budget_figures import SSHARE
from test_budgeted_spawner import budgeted  # noqa: F401  (the fixture: a BudgetedSlurmSpawner without a cluster)


def test_a_member_gets_only_their_own_accounts_figures(budgeted):
    """Does a member of sme-a get alpha's used, reserved and left hours, and nothing naming or counting beta?"""
    snap = budgets.parse_sshare(SSHARE)
    answer = asdict(answer_for(budgeted("cy", ["sme-a"]).account_choice(None), snap, 120))
    assert answer["status"] == "ok" and answer["account"] == "alpha"
    assert (answer["limit_gpu_hours"], answer["used_gpu_hours"], answer["reserved_gpu_hours"], answer["left_gpu_hours"]) == (2.0, 0.75, 1.0, 0.25)
    text = json.dumps(answer)
    assert "beta" not in text and "200" not in text  # beta's 12000 GPU-minutes are 200 hours
    other = asdict(answer_for(budgeted("dee", ["sme-b"]).account_choice(None), snap, 120))
    assert other["account"] == "beta" and other["left_gpu_hours"] == 200.0 and "alpha" not in json.dumps(other)


def test_unavailable_missing_and_no_budget_are_said_plainly(budgeted):
    """Does slurmdbd down read 'unavailable', a missing account name it, and a user in no budget group get 'none'?"""
    member = budgeted("ed", ["sme-a"]).account_choice(None)
    down = answer_for(member, budgets.BudgetSnapshot(error="Slurm accounting did not answer"), 120)
    assert down.status == "unavailable" and "Slurm accounting did not answer" in down.message and down.left_gpu_hours is None
    assert answer_for(member, None, 120).status == "unavailable"
    missing = answer_for(member, budgets.parse_sshare(SSHARE.replace(" alpha|", " alphb|")), 120)
    assert missing.status == "unavailable" and "'alpha' does not exist" in missing.message
    assert answer_for(budgeted("flo", []).account_choice(None), budgets.parse_sshare(SSHARE), 120).status == "none"


def test_the_hub_gets_the_route_and_the_scope_added_to_what_others_set():
    """Does accounting add the budget route, a custom scope held by users and server tokens, and keep other areas' scopes and handlers?"""
    c = Config()
    c.Spawner.server_token_scopes = ["access:servers!server", "shares!user"]
    c.JupyterHub.extra_user_scopes = {"shares!user"}
    c.JupyterHub.extra_handlers = [("/other", web.RequestHandler)]
    update_slurm_accounting(c, {"backend": "slurm", "slurm": {"accounting": {"enabled": True, "budgets": {}}}})
    assert c.Spawner.server_token_scopes == ["access:servers!server", "shares!user", SCOPE]
    assert c.JupyterHub.extra_user_scopes == {"shares!user", SCOPE}
    assert SCOPE in c.JupyterHub.custom_scopes and SCOPE.startswith("custom:")
    assert c.JupyterHub.extra_handlers == [("/other", web.RequestHandler), ("/api/academy/budget", BudgetHandler)]
    off = Config()
    update_slurm_accounting(off, {"backend": "local", "slurm": {"accounting": {"enabled": True}}})
    assert "extra_handlers" not in off.JupyterHub and "server_token_scopes" not in off.Spawner


def test_the_servers_answer_keeps_only_known_fields_and_types():
    """Is an odd hub answer (unknown status, strings for numbers, extra keys) reduced to plain fields, never passed through?"""
    assert clean({"status": "pwned"})["status"] == "unavailable"
    assert clean(["x"])["status"] == "unavailable"
    got = clean({"status": "ok", "account": "alpha", "left_gpu_hours": "9", "used_gpu_hours": True,
                 "limit_gpu_hours": 2, "secret": "x", "message": "m" * 900})
    assert got["left_gpu_hours"] is None and got["used_gpu_hours"] is None and got["limit_gpu_hours"] == 2.0
    assert "secret" not in got and len(got["message"]) == 500


class HubBudget(web.RequestHandler):
    def get(self):
        s = self.settings["budget_standin"]
        s["calls"].append((self.request.headers.get("Authorization"), self.request.uri))
        self.set_status(s["status"])
        self.finish(s["body"])


@pytest.fixture
async def budget_standin():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    state = {"calls": [], "status": 200,
             "body": {"status": "ok", "account": "alpha", "limit_gpu_hours": 200, "used_gpu_hours": 150,
                      "reserved_gpu_hours": 37.5, "left_gpu_hours": 12.5, "refresh_seconds": 120, "message": ""}}
    server = HTTPServer(web.Application([(r"/hub/api/academy/budget", HubBudget)], budget_standin=state))
    server.listen(port, "127.0.0.1")
    me = ServerIdentity(user="ada", server_name="", prefix="/user/ada/", hub_api=f"http://127.0.0.1:{port}/hub/api",
                        service_url="", token="server-token")
    yield state, me
    server.stop()


async def test_the_server_asks_the_hub_once_per_refresh_with_its_token(budget_standin):
    """However many tabs poll, does the server ask the hub once per refresh period, with its own token and no user input?"""
    state, me = budget_standin
    cache = BudgetCache(me)
    for _ in range(5):
        answer = await cache.view()
    assert answer["left_gpu_hours"] == 12.5 and answer["account"] == "alpha"
    assert state["calls"] == [("token server-token", "/hub/api/academy/budget")]
    cache.expires = 0  # the refresh period passed
    await cache.view()
    assert len(state["calls"]) == 2


async def test_a_hub_without_budgets_hides_the_item_and_a_failing_hub_says_unavailable(budget_standin):
    """Does a 404 from the hub become 'no budget here' (None), and a 500 'unavailable' retried sooner than a refresh?"""
    state, me = budget_standin
    state["status"], state["body"] = 404, {"message": "GPU budgets are not enabled on this hub"}
    assert await BudgetCache(me).view() is None
    state["status"], state["body"] = 500, {"message": "boom"}
    cache = BudgetCache(me)
    answer = await cache.view()
    assert answer["status"] == "unavailable" and "500" in answer["message"]
    assert cache.expires - time.monotonic() <= 30  # not kept for the full 120 s refresh
