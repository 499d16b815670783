"""Many learners at once, on a real hub and proxy: a fair start queue, and a hub that keeps answering."""
from __future__ import annotations

import concurrent.futures
import json
import os
import re
import time

import pytest
import requests

from testbed.hub import make_learner
from support.hub import running_hub

pytestmark = pytest.mark.hub

GRANTED = re.compile(r"Start slot granted to ([\w-]+):")
STALL = re.compile(r"Event loop was unresponsive for at least ([0-9.]+)s")


def queue_place(hub, learner, timeout: float = 30) -> dict | None:
    """The queue part of the first progress event that has one (None if the start got its slot first)."""
    url = f"{hub.url}/hub/api/users/{learner.name}/server/progress"
    with requests.get(url, headers={"Authorization": f"token {learner.token}"}, stream=True, timeout=timeout) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if "academy_queue" in event:
                return event["academy_queue"]
            if event.get("ready") or event.get("failed"):
                return None
    return None


def stop_all(hub, learners):
    for who in learners:
        hub.api("DELETE", f"/users/{who.name}/server", who.token)


@pytest.fixture(scope="module")
def queued_hub():
    # One start at a time makes every start after the first wait in line, whatever the machine.
    # Generous start timeouts: a shared test machine may be slow; waiting in line is not what times out.
    site = {"spawn_queue": {"concurrency": 1}, "local": {"start_timeout": 300}}
    with running_hub("queue", site=site) as h:
        yield h


@pytest.mark.timeout(1200)  # four real starts one after another
def test_burst_beyond_the_limit_queues_and_starts_in_order(queued_hub):
    """Do four starts at once with room for one all queue, start in arrival order, once each, and none fail?"""
    hub = queued_hub
    learners = [make_learner(hub, "q") for _ in range(4)]
    try:
        # Sent together (a second apart, so arrival order is list order): one after another, each POST
        # would wait for its own start on a quick machine, and nothing would ever queue.
        pool = concurrent.futures.ThreadPoolExecutor(len(learners))
        posts = []
        for who in learners:
            posts.append(pool.submit(hub.api, "POST", f"/users/{who.name}/server", who.token, json={}))
            time.sleep(1)
        last = learners[-1]
        # A second request for the same server joins its start: JupyterHub answers "already pending".
        again = hub.api("POST", f"/users/{last.name}/server", last.token, json={})
        assert again.status_code in (202, 400), again.text
        # The learner's spawn page, opened and then reloaded, shows the same place in line (or a better one).
        page = last.session.get(f"{hub.url}/hub/spawn-pending/{last.name}", timeout=30)
        assert page.status_code == 200
        first = queue_place(hub, last)
        assert first is not None and first["position"] >= 1, "the last of four starts with room for one must wait"
        assert first["waiting"] >= first["position"] and first["eta_seconds"] > 0
        reloaded = last.session.get(f"{hub.url}/hub/spawn-pending/{last.name}", timeout=30)
        assert reloaded.status_code == 200
        second = queue_place(hub, last)
        if second is not None:
            assert second["position"] <= first["position"]
        for post in posts:
            assert post.result().status_code in (201, 202), post.result().text
        pool.shutdown()
        for who in learners:
            hub.wait_ready(who.name, who.token, timeout=900)
        log = hub.log_path.read_text(errors="replace")
        granted = [name for name in GRANTED.findall(log) if name in {w.name for w in learners}]
        assert granted == [w.name for w in learners], "slots must be granted first come, first served, once each"
        assert "Failed to spawn" not in log and "Unhandled error starting" not in log
    finally:
        stop_all(hub, learners)


@pytest.mark.timeout(1200)  # four real first starts, two at a time, on a shared 2-core machine
def test_hub_answers_while_new_accounts_are_created(tmp_path, monkeypatch):
    """Does the hub's event loop keep turning while four first spawns (two rounds of the queue) each spend 4 s
    creating a Unix account?"""
    if os.geteuid() != 0:
        pytest.skip("account creation (and so this blocking risk) exists only when the hub runs as root")
    delay = 4.0
    # A deliberately slow useradd: if account creation ran on the event loop, the hub's own
    # stall measurement would show at least `delay` seconds; off the loop it stays far below.
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    (wrappers / "useradd").write_text(f"#!/bin/sh\nsleep {delay}\nexec /usr/sbin/useradd \"$@\"\n")
    (wrappers / "useradd").chmod(0o755)
    tmp_path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}:{os.environ['PATH']}")
    site = {"spawn_queue": {"stall_log_threshold": 0.5}, "local": {"start_timeout": 300}}
    with running_hub("stall", site=site) as hub:
        learners = [make_learner(hub, "s") for _ in range(4)]
        try:
            for who in learners:
                r = hub.api("POST", f"/users/{who.name}/server", who.token, json={})
                assert r.status_code in (201, 202), r.text
            # wait_ready polls the hub's API throughout; every call must be answered.
            for who in learners:
                hub.wait_ready(who.name, who.token, timeout=600)
            log = hub.log_path.read_text(errors="replace")
            stalls = [float(s) for s in STALL.findall(log)]
            assert log.count("Start slot granted to s-") == 4
            assert max(stalls, default=0.0) < delay, f"the hub's event loop stalled {max(stalls)} s: something blocks it"
        finally:
            stop_all(hub, learners)
