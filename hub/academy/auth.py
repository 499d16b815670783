"""Local-account authentication: NativeAuthenticator (bcrypt hashes in the hub DB), made to fit JupyterHub 6.

NativeAuthenticator 1.3.0 is the jupyterhub organisation's package for local accounts,
but its login handler still calls ``self.statsd``, which JupyterHub 6 removed, so every
login failed with a 500. We swap in a login handler with the same behaviour minus the
metrics call; everything else (hashing, approval, lock-out) is the package's own, except that the
bcrypt check runs in a thread: done on the hub's event loop it stalls every other request while a
whole class logs in.
"""
from __future__ import annotations

import asyncio

import bcrypt
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from sqlalchemy.exc import InvalidRequestError


async def password_matches(info, password: str) -> bool:
    """bcrypt costs a CPU-bound ~0.3 s per check: in a thread, so a class logging in at once never stalls the hub."""
    stored = info.password  # read here: the ORM session belongs to the event loop's thread
    return await asyncio.to_thread(bcrypt.checkpw, password.encode(), stored)


class AcademyLoginHandler(NativeLoginHandler):
    """NativeAuthenticator's login page without the removed statsd timer."""

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
        error = "Invalid username or password."
        info = self.authenticator.get_user(data.get("username", ""))
        if info is not None and not info.is_authorized and await password_matches(info, data.get("password", "")):
            error = f"User {data['username']} has not been authorized by an administrator yet."
        self.set_status(403)
        self.finish(await self._render(login_error=error, username=data.get("username")))


class AcademyNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with a JupyterHub 6 compatible login handler."""

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

    async def authenticate(self, handler, data):
        # The package's own rules (lock-out, approval, 2FA), with the bcrypt check off the event loop.
        username = self.normalize_username(data["username"])
        user = self.get_user(username)
        if not user or (self.allowed_failed_logins and self.is_blocked(username)):
            return None
        valid = await password_matches(user, data["password"])
        validations = [user.is_authorized, valid]
        if user.has_2fa:
            validations.append(user.is_valid_token(data.get("2fa")))
        if all(validations):
            self.successful_login(username)
            return username
        self.add_login_attempt(username)
        return None

    def get_handlers(self, app):
        return [
            (path, AcademyLoginHandler if handler is NativeLoginHandler else handler)
            for path, handler in super().get_handlers(app)
        ]
