"""Local-account authentication: NativeAuthenticator (bcrypt hashes in the hub DB), made to fit JupyterHub 6.

NativeAuthenticator 1.3.0 is the jupyterhub organisation's package for local accounts,
but its login handler still calls ``self.statsd``, which JupyterHub 6 removed, so every
login failed with a 500. We swap in a login handler with the same behaviour minus the
metrics call; everything else (hashing, approval) is the package's own, except that the
bcrypt check runs in a thread: done on the hub's event loop it stalls every other request while a
whole class logs in. The lock-out after repeated failures keeps the package's rule but says so
(login page, one WARNING line in the log) and treats unknown names exactly like accounts, so the
page cannot be used to find out which accounts exist.
"""
from __future__ import annotations

import asyncio
import functools
import math
import time
from dataclasses import dataclass
from typing import Callable

import bcrypt
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from sqlalchemy.exc import InvalidRequestError
from traitlets import Integer


async def password_matches(info, password: str) -> bool:
    """bcrypt costs a CPU-bound ~0.3 s per check: in a thread, so a class logging in at once never stalls the hub."""
    stored = info.password  # read here: the ORM session belongs to the event loop's thread
    return await asyncio.to_thread(bcrypt.checkpw, password.encode(), stored)


@functools.cache
def _decoy_hash() -> bytes:
    # Same cost as the package's own hashes (bcrypt.gensalt() defaults), made once per hub.
    return bcrypt.hashpw(b"no account has this password", bcrypt.gensalt())


async def spend_a_password_check(password: str) -> None:
    """An unknown name costs the same bcrypt check as a known one: a fast refusal would name the accounts."""
    await asyncio.to_thread(bcrypt.checkpw, password.encode(), _decoy_hash())


def wait_text(seconds: float) -> str:
    """'45 seconds', '1 second', '3 minutes': rounded up, so the wait said is never too short."""
    if seconds > 90:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minutes"
    whole = max(1, math.ceil(seconds))
    return f"{whole} second{'s' if whole != 1 else ''}"


@dataclass
class _Failures:
    count: int
    last: float  # clock reading of the latest failure


class LoginLockout:
    """Failed logins per name: from ``limit`` failures on, the name is locked for ``seconds`` after the latest one.

    The package's rule, kept: the count only resets on a successful login, so once the lock has
    run out every further failure locks again at once (one guess per ``seconds``). A name with no
    failure for ``forget_after`` seconds is forgotten (count back to zero), which also bounds the
    memory that guessed names take.
    """

    def __init__(self, limit: int, seconds: float, forget_after: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.seconds = seconds
        self.forget_after = max(forget_after, seconds)
        self.clock = clock
        self._failures: dict[str, _Failures] = {}
        self._pruned = clock()

    def remaining(self, name: str) -> float:
        """Seconds left of the lock on ``name``; 0 when it may try."""
        entry = self._failures.get(name)
        if not self.limit or entry is None or entry.count < self.limit:
            return 0.0
        return max(0.0, entry.last + self.seconds - self.clock())

    def failed(self, name: str) -> bool:
        """Count a failure; True when this one locks the name."""
        now = self.clock()
        self._forget_idle(now)
        entry = self._failures.get(name)
        if entry is None:
            entry = self._failures[name] = _Failures(0, now)
        entry.count += 1
        entry.last = now
        return bool(self.limit) and entry.count >= self.limit

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)

    def failures(self, name: str) -> int:
        entry = self._failures.get(name)
        return entry.count if entry else 0

    def _forget_idle(self, now: float) -> None:
        if now - self._pruned < 60:
            return
        self._pruned = now
        for name in [n for n, e in self._failures.items() if now - e.last > self.forget_after]:
            del self._failures[name]


class AcademyLoginHandler(NativeLoginHandler):
    """NativeAuthenticator's login page without the removed statsd timer, and one that says when a login is locked."""

    def _render(self, login_error=None, username=None, **kwargs):
        # JupyterHub 6 passes extra template arguments (e.g. sync=True) to _render.
        return super()._render(login_error=login_error, username=username)

    async def post(self):
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        name = self.authenticator.normalize_username(data.get("username", ""))
        locked = self.authenticator.lockout.remaining(name)
        if locked:
            # The same words for an unknown name: the page must not tell which accounts exist.
            error = f"Too many failed logins: this account is locked. Try again in {wait_text(locked)}."
        else:
            error = "Invalid username or password."
            info = self.authenticator.get_user(name)
            if info is not None and not info.is_authorized and await password_matches(info, data.get("password", "")):
                error = f"User {name} has not been authorized by an administrator yet."
        self.set_status(403)
        self.finish(await self._render(login_error=error, username=data.get("username")))


class AcademyNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with a JupyterHub 6 compatible login handler and a lock-out that says so."""

    failed_logins_forgotten_after = Integer(
        3600,
        config=True,
        help="Seconds without a failed login after which a name's failure count starts again from zero "
        "(at least seconds_before_next_try).",
    )

    @functools.cached_property
    def lockout(self) -> LoginLockout:
        # Built on first use, after the config has set the package's two lock-out traits.
        return LoginLockout(self.allowed_failed_logins, self.seconds_before_next_try, self.failed_logins_forgotten_after)

    # The package's lock-out API, kept for anything that calls it, on our LoginLockout.
    def add_login_attempt(self, username):
        self._count_failure(username, known=True)

    def is_blocked(self, username):
        return self.lockout.remaining(username) > 0

    def successful_login(self, username):
        self.lockout.succeeded(username)

    def get_user(self, username):
        # The hub's session keeps ORM objects across commits (expire_on_commit=False), so
        # re-read the row: `academy accounts reset` and a workshop teardown change it from
        # another process, and a disabled account must be refused at once.
        info = super().get_user(username)
        if info is not None:
            try:
                self.db.refresh(info)
            except InvalidRequestError:  # deleted by another process since the query (a purge)
                return None
        return info

    async def refresh_user(self, user, handler=None):
        """An account disabled since login (e.g. by a workshop teardown) must log in again, and cannot."""
        info = self.get_user(user.name)
        return not (info is not None and not info.is_authorized)

    def _count_failure(self, username: str, known: bool, handler=None) -> None:
        if self.lockout.failed(username):
            # Anyone may lock any name: the address helps an admin find who keeps doing it.
            ip = getattr(getattr(handler, "request", None), "remote_ip", None)
            self.log.warning(
                "Login locked: %s after %d failed logins, for %d s%s%s",
                username, self.lockout.failures(username), self.lockout.seconds,
                "" if known else " (no such account)", f", from {ip}" if ip else "",
            )

    async def authenticate(self, handler, data):
        # The package's rules (lock-out, approval, 2FA), with the bcrypt check off the event loop.
        username = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        locked = self.lockout.remaining(username)
        if locked:
            self.log.warning("Login refused: %s is locked for %d more s after failed logins", username, math.ceil(locked))
            return None
        user = self.get_user(username)
        if user is None:
            await spend_a_password_check(password)
            # An unknown name counts and locks like an account; names no account can have
            # (the username pattern) are not kept, so guessed names cannot fill the memory.
            if self.validate_username(username):
                self._count_failure(username, known=False, handler=handler)
            return None
        valid = await password_matches(user, password)
        validations = [user.is_authorized, valid]
        if user.has_2fa:
            validations.append(user.is_valid_token(data.get("2fa")))
        if all(validations):
            if self.lockout.remaining(username):
                # Guesses sent in parallel all passed the check above before any failed: once
                # those failures lock the name, the right password among them gets no answer.
                return None
            self.successful_login(username)
            return username
        self._count_failure(username, known=True, handler=handler)
        return None

    def get_handlers(self, app):
        return [
            (path, AcademyLoginHandler if handler is NativeLoginHandler else handler)
            for path, handler in super().get_handlers(app)
        ]
