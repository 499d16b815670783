"""Fixtures for tests against a real hub (local backend) with the real configurable-http-proxy."""
from __future__ import annotations

import itertools
import random
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from _support import need
from hub_harness import REPO, HubProcess, shared_tmpdir

_names = itertools.count(1)
# Distinct per run, so Unix accounts left by an interrupted run never collide.
_RUN = "".join(random.choices(string.ascii_lowercase, k=4))
CREATED: list[str] = []


def remove_accounts(prefix: str = "acad-") -> None:
    """Delete the Unix accounts the local backend created for this run's learners."""
    for name in CREATED:
        subprocess.run(["userdel", f"{prefix}{name}"], capture_output=True)
    CREATED.clear()


def proxy_available() -> bool:
    return (REPO / "node_modules" / ".bin" / "configurable-http-proxy").exists() or bool(
        shutil.which("configurable-http-proxy")
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory, request):
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


@dataclass
class Learner:
    """A native account that has logged in through the form, with its session and API token."""

    name: str
    password: str
    session: requests.Session
    token: str


def make_learner(hub: HubProcess, prefix: str = "learner") -> Learner:
    name = f"{prefix}-{_RUN}{next(_names)}"
    CREATED.append(name)
    password = hub.add_accounts(name)[name]
    session = hub.login(name, password)
    return Learner(name, password, session, hub.token_for(session, name))


@pytest.fixture
def learner(hub) -> Learner:
    return make_learner(hub)
