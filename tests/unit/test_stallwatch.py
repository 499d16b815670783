"""The stall watchdog: does it name the code that blocked the hub's event loop?"""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

from academy import stallwatch
from academy.siteconfig import DEFAULTS


def block_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # what a blocking subprocess or a slow query does to the loop


async def _run_with_watch(threshold: float, blocker) -> stallwatch.StallWatch:
    watch = stallwatch.StallWatch(threshold, interval=0.01, logger=logging.getLogger("test-stallwatch"))
    watch.start(asyncio.get_running_loop())
    await asyncio.sleep(0.05)
    blocker()
    await asyncio.sleep(0.05)
    watch.stop()
    return watch


def test_a_blocking_call_is_logged_with_its_stack(caplog):
    """Does a 0.3 s blocking call on the loop get one log line whose stack names the blocking function?"""
    caplog.set_level(logging.WARNING, logger="test-stallwatch")
    watch = asyncio.run(_run_with_watch(0.1, lambda: block_the_loop_for(0.3)))
    assert len(watch.stacks) == 1
    assert "block_the_loop_for" in watch.stacks[0]
    assert "Event loop blocked for" in caplog.text and "block_the_loop_for" in caplog.text


def test_a_responsive_loop_logs_nothing():
    """Does a loop that only awaits stay silent?"""
    watch = asyncio.run(_run_with_watch(0.1, lambda: None))
    assert watch.stacks == []


def test_off_by_default_and_outside_a_loop():
    """Is the watch off unless the site config asks, and harmless when config is applied outside the hub's loop?"""
    assert DEFAULTS["spawn_queue"]["stall_stacks"] is False
    assert stallwatch.install({"spawn_queue": {"stall_stacks": False, "stall_log_threshold": 0.25}}) is None
    assert stallwatch.install({"spawn_queue": {"stall_stacks": True, "stall_log_threshold": 0.25}}) is None


def test_threshold_must_exceed_the_beat():
    """Is a threshold the beat cannot resolve refused?"""
    with pytest.raises(ValueError, match="must exceed"):
        stallwatch.StallWatch(0.01, interval=0.02)
