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


class StartingServer:
    """Just what ``wait_answering`` reads of a spawner: a process that is alive until ``dies_after`` polls."""

    def __init__(self, dies_after: int | None):
        self.server, self.http_timeout, self.queue_key = None, 3600, "ann:"
        self.log = logging.getLogger("test-queue")
        self.polls, self.dies_after = 0, dies_after

    async def poll(self):
        self.polls += 1
        return 1 if self.dies_after is not None and self.polls > self.dies_after else None


def test_a_server_that_dies_while_starting_frees_its_slot_at_once(caplog):
    """Does a server that exits before it answers end the wait (and so free its slot), not hold it for http_timeout?"""
    from academy.spawners.queue import wait_answering

    caplog.set_level(logging.WARNING, logger="test-queue")
    spawner = StartingServer(dies_after=2)
    # Nothing listens on port 9 (discard): the server never answers; only its death can end the wait.
    # The guard is 60 x the poll interval against an http_timeout of an hour.
    run(asyncio.wait_for(wait_answering(spawner, "http://127.0.0.1:9", poll_interval=0.05), 60))
    assert spawner.polls == 3
    assert "exited while starting (status 1)" in caplog.text


def test_a_server_that_answers_ends_the_wait(caplog):
    """Does the wait end when the new server answers HTTP, while its process still runs?"""
    from academy.spawners.queue import wait_answering

    async def scenario():
        async def answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spawner = StartingServer(dies_after=None)
        async with server:
            await asyncio.wait_for(wait_answering(spawner, f"http://127.0.0.1:{port}", poll_interval=0.05), 60)
        return spawner

    caplog.set_level(logging.WARNING, logger="test-queue")
    spawner = run(scenario())
    assert spawner.polls >= 1  # it was watched while it started
    assert "exited while starting" not in caplog.text and "did not answer" not in caplog.text
