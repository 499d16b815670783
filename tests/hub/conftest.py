"""Fixtures for tests against a real hub (local backend) with the real configurable-http-proxy."""
from __future__ import annotations

import pytest

from testbed.hub import Learner, make_learner
from support.hub import running_hub


@pytest.fixture(scope="module")
def hub():
    with running_hub("hub") as h:
        yield h


@pytest.fixture(autouse=True)
def _dump_hub_log_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "hub" in request.fixturenames:
        print(request.getfixturevalue("hub").log_tail(120))


@pytest.fixture
def learner(hub) -> Learner:
    return make_learner(hub)
