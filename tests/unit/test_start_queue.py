"""The start queue's rules, on a real event loop: first come first served, join not duplicate, no leaked slots."""
from __future__ import annotations

import asyncio
import logging

import pytest
from tornado import web

from academy.spawners.queue import StartQueue, TooManyIsNotAnError, auto_concurrency


def run(coro):
    return asyncio.run(coro)


def test_slots_are_granted_in_arrival_order():
    """With one slot, do five waiting starts get it strictly in the order they arrived?"""
    async def scenario():
        q = StartQueue(1)
        assert await q.acquire("first:") == 0
        waiters = [asyncio.create_task(q.acquire(f"u{i}:")) for i in range(5)]
        await asyncio.sleep(0)
        assert [q.place(f"u{i}:").position for i in range(5)] == [1, 2, 3, 4, 5]
        q.release("first:")
        for i in range(5):
            await asyncio.sleep(0)
            assert q.holds(f"u{i}:") and not q.place(f"u{i}:")
            q.release(f"u{i}:")
        await asyncio.gather(*waiters)
        return q.granted

    assert run(scenario()) == ["first:"] + [f"u{i}:" for i in range(5)]


def test_a_second_request_for_the_same_start_joins_it():
    """Does a repeated request for a waiting server keep one place in line and get one slot?"""
    async def scenario():
        q = StartQueue(1)
        await q.acquire("a:")
        one, two = asyncio.create_task(q.acquire("b:")), asyncio.create_task(q.acquire("b:"))
        await asyncio.sleep(0)
        assert q.place("b:").waiting == 1
        q.release("a:")
        await asyncio.gather(one, two)
        return q.granted

    assert run(scenario()).count("b:") == 1


def test_a_start_given_up_in_line_frees_its_place_and_the_line_moves_on():
    """When a waiting start is cancelled (timeout, stop), does the next one move up and no slot leak?"""
    async def scenario():
        q = StartQueue(1)
        await q.acquire("a:")
        b, c = asyncio.create_task(q.acquire("b:")), asyncio.create_task(q.acquire("c:"))
        await asyncio.sleep(0)
        b.cancel()
        await asyncio.sleep(0)
        assert q.place("b:") is None and q.place("c:").position == 1
        q.release("a:")
        await c
        assert q.holds("c:")
        q.release("c:")
        assert not q._running

    run(scenario())


def test_estimate_counts_whole_rounds_of_recent_starts():
    """Is the wait estimate the typical start time times the rounds ahead (2 slots, place 3: two rounds)?"""
    q = StartQueue(2)
    q._durations.extend([10.0, 10.0, 30.0])
    assert q.estimate(1) == 10.0 and q.estimate(3) == 20.0


def test_concurrency_follows_the_backend():
    """Do local starts get one slot per core and Slurm starts many (they wait in Slurm's queue)?"""
    assert auto_concurrency("local", cores=2) == 2
    assert auto_concurrency("slurm", cores=2) > 2
    with pytest.raises(ValueError):
        StartQueue(0)


def test_too_many_is_logged_as_a_warning_without_traceback():
    """Is JupyterHub's 429 'try again' logged as a warning, while real errors keep their traceback?"""
    def record(exc):
        try:
            raise exc
        except Exception:
            import sys
            return logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1, "Failed to spawn", (), sys.exc_info())

    busy = record(web.HTTPError(429, "Too many users"))
    TooManyIsNotAnError().filter(busy)
    assert busy.levelno == logging.WARNING and busy.exc_info is None and "too many" in busy.getMessage()
    broken = record(RuntimeError("disk full"))
    TooManyIsNotAnError().filter(broken)
    assert broken.levelno == logging.ERROR and broken.exc_info is not None
    # The spawn form's path (jupyterhub/handlers/pages.py) logs the refusal as a plain ERROR line.
    refused = web.HTTPError(429, "Too many users trying to log in right now. Try again in 50 seconds.")
    form = logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1, f"Error starting server ada: {refused}", (), None)
    TooManyIsNotAnError().filter(form)
    assert form.levelno == logging.WARNING and "too many starts at once" in form.getMessage()
    failed = logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1,
                               f"Error starting server ada: {web.HTTPError(500, 'spawner broke')}", (), None)
    TooManyIsNotAnError().filter(failed)
    assert failed.levelno == logging.ERROR


def test_local_start_timeout_covers_the_wait_until_the_server_answers():
    """Does local.start_timeout also bound the wait for the new server to answer (where a local start spends its CPU)?"""
    from traitlets.config import Config

    from academy.configurer import apply_config
    from academy.siteconfig import build_config

    c = apply_config(Config(), build_config({"local": {"start_timeout": 300}, "spawn_queue": {"concurrency": 3}}))
    assert c.AcademyLocalSpawner.start_timeout == 300 and c.AcademyLocalSpawner.http_timeout == 300
    assert c.AcademyLocalSpawner.start_concurrency == 3
    slurm = apply_config(Config(), build_config({"backend": "slurm", "hub": {"hub_port": 8081}}))
    assert "http_timeout" not in slurm.AcademyLocalSpawner and slurm.AcademySlurmSpawner.start_concurrency == 0
