"""Ctrl-C on `academy up` with running servers: everything stops, and the terminal says what as it goes.

How long it takes is measured in benchmarks/session.py, not asserted here.
"""
from __future__ import annotations

import time

import psutil
import pytest

from support.process import exited
from testbed.hub import make_learner
from support.hub import running_hub

pytestmark = pytest.mark.hub


def test_ctrl_c_with_three_servers_stops_everything_and_reports_progress():
    """After Ctrl-C, are the culler, three learners' servers and the proxy gone, each reported as it stopped?"""
    site = {"culler": {"enabled": True, "every": 5}, "local": {"start_timeout": 300}}
    with running_hub("ctrlc", site=site) as hub:
        learners = [make_learner(hub, prefix="cc") for _ in range(3)]
        for who in learners:  # one by one: a loaded test machine starts servers slowly
            r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "cpu"})
            assert r.status_code in (201, 202), r.text
            hub.wait_ready(who.name, who.token, timeout=300)
        children = psutil.Process(hub.proc.pid).children(recursive=True)
        assert len(children) >= 5, "expected the hub, proxy, culler and three servers"
        rc = hub.stop(timeout=120)
        out = "".join(hub.output)
        assert rc == 0, out + hub.log_tail()
        assert "Stopping: 3 learner server(s)" in out, out
        for who in learners:
            assert f"stopped the server of {who.name}" in out, out
        assert "stopped the idle culler" in out and "stopped the proxy" in out, out
        assert out.rstrip().endswith("AI Factory Academy stopped."), out
        time.sleep(1)
        left = [p.pid for p in children if not exited(p.pid)]
        assert not left, f"processes outlived `academy up`: {left}"
