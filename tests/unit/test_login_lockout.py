"""The login lock-out without a hub: its clock rule, its words, and that unknown names lock like accounts.

The authenticator runs on a real in-memory JupyterHub database with real bcrypt hashes (at the
lowest cost, so the tests stay quick); the lock-out's clock is a variable the tests advance.
"""
from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import bcrypt
import pytest
from jupyterhub import orm
from nativeauthenticator.orm import UserInfo

import academy.auth
from academy.auth import AcademyNativeAuthenticator, LoginLockout, wait_text
from academy.configurer import USERNAME_PATTERN


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_lock_for_the_wait_after_the_last_and_one_more_relocks():
    """Is a name locked from the fifth failure on, for 60 s after the latest, and locked again by one failure after that?"""
    clock = Clock()
    lock = LoginLockout(limit=5, seconds=60, forget_after=3600, clock=clock)
    assert [lock.failed("ann") for _ in range(4)] == [False] * 4
    assert lock.remaining("ann") == 0
    clock.now += 10
    assert lock.failed("ann") is True
    assert lock.remaining("ann") == 60
    clock.now += 59.5
    assert lock.remaining("ann") == pytest.approx(0.5)
    clock.now += 1
    assert lock.remaining("ann") == 0, "the lock must run out"
    assert lock.failed("ann") is True and lock.remaining("ann") == 60, "one more failure after the lock locks again"
    assert lock.remaining("bob") == 0, "another name is not touched"
    lock.succeeded("ann")
    assert lock.remaining("ann") == 0 and lock.failures("ann") == 0


def test_a_quiet_name_is_forgotten_and_no_limit_means_no_lock():
    """Is a name without failures for an hour forgotten (count from zero), and does limit 0 never lock?"""
    clock = Clock()
    lock = LoginLockout(limit=5, seconds=60, forget_after=3600, clock=clock)
    for _ in range(5):
        lock.failed("ann")
    clock.now += 3601
    assert lock.failed("someone-else") is False  # any later failure sweeps the quiet names
    assert lock.failures("ann") == 0 and lock.remaining("ann") == 0
    off = LoginLockout(limit=0, seconds=60, forget_after=3600, clock=clock)
    assert not any(off.failed("ann") for _ in range(20)) and off.remaining("ann") == 0


@pytest.mark.parametrize(
    "seconds, text",
    [(60, "60 seconds"), (59.2, "60 seconds"), (0.3, "1 second"), (1, "1 second"), (90, "90 seconds"),
     (91, "2 minutes"), (600, "10 minutes")],
)
def test_the_wait_is_said_rounded_up(seconds, text):
    """Is the wait on the login page never shorter than the real one?"""
    assert wait_text(seconds) == text


# --- the authenticator on a real (in-memory) hub database ----------------------------------

@pytest.fixture
def auth(monkeypatch):
    db = orm.new_session_factory("sqlite://")()
    a = AcademyNativeAuthenticator(
        db=db, allowed_failed_logins=5, seconds_before_next_try=60, username_pattern=USERNAME_PATTERN,
    )
    a.lockout.clock = clock = Clock()
    a.test_clock = clock
    db.add(UserInfo(username="ann", password=bcrypt.hashpw(b"right-pass", bcrypt.gensalt(4)), is_authorized=True))
    db.commit()
    # The decoy hash at the lowest cost too; it is still a real bcrypt check.
    monkeypatch.setattr(academy.auth, "_decoy_hash", lambda: bcrypt.hashpw(b"x", bcrypt.gensalt(4)))
    return a


def login(auth, username, password, ip=None):
    # The authenticator reads only the client address from its handler.
    handler = SimpleNamespace(request=SimpleNamespace(remote_ip=ip)) if ip else None
    return asyncio.run(auth.authenticate(handler, {"username": username, "password": password}))


def test_the_right_password_gets_in_until_five_failures_then_not_until_the_lock_runs_out(auth):
    """Does a locked account refuse even the right password, and let it in once the 60 s are over?"""
    assert login(auth, "ann", "right-pass") == "ann"
    for _ in range(5):
        assert login(auth, "ann", "wrong") is None
    assert auth.lockout.remaining("ann") == 60
    assert login(auth, "ann", "right-pass") is None
    auth.test_clock.now += 61
    assert login(auth, "ann", "right-pass") == "ann"
    assert auth.lockout.failures("ann") == 0, "a login clears the count"


def test_an_unknown_name_locks_like_an_account_and_costs_a_password_check(auth, monkeypatch, caplog):
    """Can a student tell a real account from an unknown name by the lock, or by a missing bcrypt check? (They must not.)"""
    checks = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: checks.append(1) or real(pw, h))
    caplog.set_level(logging.WARNING)
    for name in ("ann", "nosuchuser"):
        checks.clear()
        results = [login(auth, name, "wrong", ip="10.1.2.3" if name == "nosuchuser" else None) for _ in range(5)]
        assert results == [None] * 5
        assert len(checks) == 5, f"{name}: every failed login costs one bcrypt check"
        assert auth.lockout.remaining(name) == 60, name
    locks = [r for r in caplog.records if r.getMessage().startswith("Login locked:")]
    assert [r.levelname for r in locks] == ["WARNING", "WARNING"]
    assert "Login locked: ann after 5 failed logins, for 60 s" == locks[0].getMessage()
    assert locks[1].getMessage() == "Login locked: nosuchuser after 5 failed logins, for 60 s (no such account), from 10.1.2.3"
    assert not any(r.exc_info for r in caplog.records), "a lock-out is not a fault: no traceback"
    # A name no account can have (the username pattern) is not kept in memory.
    for _ in range(6):
        login(auth, "Not A Name!" * 20, "wrong")
    assert auth.lockout.failures("not a name!" * 20) == 0


def test_parallel_guesses_cannot_slip_the_right_password_past_the_lock(auth, monkeypatch):
    """If guesses arrive together, and the failures among them lock the account, is the right one refused too?"""
    for _ in range(4):
        login(auth, "ann", "wrong")
    real = academy.auth.password_matches

    async def slow_for_the_right_one(info, password):
        # Scheduling only: the right guess finishes its check after the wrong one has locked the account.
        ok = await real(info, password)
        if ok:
            for _ in range(500):
                if auth.lockout.remaining("ann"):
                    break
                await asyncio.sleep(0.01)
        return ok

    monkeypatch.setattr(academy.auth, "password_matches", slow_for_the_right_one)

    async def both():
        return await asyncio.gather(
            auth.authenticate(None, {"username": "ann", "password": "right-pass"}),
            auth.authenticate(None, {"username": "ann", "password": "wrong"}),
        )

    assert asyncio.run(both()) == [None, None]
    assert auth.lockout.remaining("ann") == 60
