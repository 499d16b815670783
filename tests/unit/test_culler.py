"""The culler's decision for one server, from the hub's model and the server's activity report."""
from __future__ import annotations

import datetime as dt

from academy.culler import judge

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def ago(seconds: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds)).isoformat()


def server(started_ago=7200, hub_activity_ago=0):
    return {"started": ago(started_ago), "last_activity": ago(hub_activity_ago)}


def activity(kernels_ago=None, gpu_ago=None, busy=False):
    return {"busy": busy, "last_activity": ago(kernels_ago) if kernels_ago is not None else None,
            "gpu_last_busy": ago(gpu_ago) if gpu_ago is not None else None}


def test_idle_kernels_and_idle_gpu_are_culled_even_with_a_browser_open():
    """Is a server culled when kernels and GPU sat idle past the limit, although the hub saw browser activity now?"""
    v = judge(server(hub_activity_ago=0), activity(kernels_ago=1900, gpu_ago=2000), 1800, 300, NOW)
    assert v.action == "cull" and v.idle_seconds == 1900


def test_a_busy_kernel_is_kept_however_old_its_last_output():
    """Is a server with a kernel still executing kept, even if it printed nothing for hours?"""
    assert judge(server(), activity(kernels_ago=9000, busy=True), 1800, 300, NOW).action == "keep"


def test_gpu_busy_server_without_browser_is_kept():
    """Is a server whose GPU was busy a minute ago kept, though kernels and browser have been idle for hours?"""
    v = judge(server(hub_activity_ago=9000), activity(kernels_ago=9000, gpu_ago=60), 1800, 300, NOW)
    assert v.action == "keep" and v.reason == "GPU busy recently"


def test_the_learner_is_warned_inside_the_warning_window_only():
    """Is the verdict 'warn' between limit-warn_before and limit, and 'keep' before that?"""
    assert judge(server(), activity(kernels_ago=1600), 1800, 300, NOW).action == "warn"
    assert judge(server(), activity(kernels_ago=1400), 1800, 300, NOW).action == "keep"


def test_a_fresh_server_without_kernels_counts_from_its_start():
    """Is a server started 10 minutes ago, never used, kept under a 30-minute limit and culled after it?"""
    assert judge(server(started_ago=600), activity(), 1800, 300, NOW).action == "keep"
    assert judge(server(started_ago=1900), activity(), 1800, 300, NOW).action == "cull"


def test_without_the_extension_the_hubs_activity_decides():
    """Does a server that gives no activity report fall back to the hub's last_activity?"""
    assert judge(server(hub_activity_ago=100), None, 1800, 300, NOW).action == "keep"
    assert judge(server(hub_activity_ago=2000), None, 1800, 300, NOW).action == "cull"
