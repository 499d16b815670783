"""Fixtures for tests against a real hub (local backend) with the real configurable-http-proxy."""
from __future__ import annotations

import shutil

import pytest

from _support import need
from hub_harness import HubProcess, Learner, make_learner, proxy_available, remove_accounts, shared_tmpdir


@pytest.fixture(scope="module")
def hub():
    need(proxy_available(), "configurable-http-proxy (npm install)")
    h = HubProcess(shared_tmpdir("hub")).start()
    yield h
    h.stop()
    shutil.rmtree(h.workdir, ignore_errors=True)
    remove_accounts()


@pytest.fixture(autouse=True)
def _dump_hub_log_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "hub" in request.fixturenames:
        print(request.getfixturevalue("hub").log_tail(120))


@pytest.fixture
def learner(hub) -> Learner:
    return make_learner(hub)
