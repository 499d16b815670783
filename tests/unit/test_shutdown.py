"""What `academy up` prints while the hub stops: each part of the hub as it goes, then the hub's exit."""
from __future__ import annotations

import signal
import subprocess
import sys

from academy.shutdown import follow, parts_of

# A stand-in "hub": real processes whose command lines look like the culler and the proxy; on SIGTERM
# it stops the culler at once and the proxy a moment later, then exits, as JupyterHub's cleanup does.
FAKE_HUB = """
import signal, subprocess, sys, time
kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', name]) for name in ('academy.culler', 'configurable-http-proxy')]
def stop(*_):
    print('[I hub] Cleaning up 1 services...', flush=True)
    kids[0].kill(); kids[0].wait(); time.sleep(0.5); kids[1].kill(); kids[1].wait()
    print('[I hub] ...done', flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print('ready', flush=True)
time.sleep(60)
"""


def test_follow_reports_each_part_in_the_order_it_stops_and_the_hubs_own_lines(tmp_path):
    """Are the culler and proxy reported as they stop, with the hub's cleanup lines, and the exit status returned?"""
    log_path = tmp_path / "jupyterhub.log"
    with open(log_path, "wb") as log:
        hub = subprocess.Popen([sys.executable, "-c", FAKE_HUB], stdout=log, stderr=subprocess.STDOUT)
        while b"ready" not in log_path.read_bytes():
            pass
        offset, parts = log_path.stat().st_size, parts_of(hub.pid)
        hub.send_signal(signal.SIGTERM)
        said: list[str] = []
        rc = follow(hub, log_path, offset, parts, say=said.append, poll=0.05)
    assert rc == 0
    assert said[0].startswith("Stopping: 0 learner server(s)")
    culler = next(i for i, s in enumerate(said) if s.startswith("  stopped the idle culler"))
    proxy = next(i for i, s in enumerate(said) if s.startswith("  stopped the proxy"))
    assert culler < proxy
    assert "  hub: Cleaning up 1 services..." in said and "  hub: ...done" in said
