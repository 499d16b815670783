"""The few hub REST API calls a workshop needs: users, groups and memberships, with the service's token.

Users created here show in the admin page at once, so a trainer can group them before anyone
has logged in. The CLI uses the same client and token as the service.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import requests


class HubError(RuntimeError):
    """The hub refused or could not be reached; the message says which call and why."""


@dataclass(frozen=True)
class HubUser:
    name: str
    admin: bool
    groups: frozenset[str]


class HubClient:
    def __init__(self, api_url: str, token: str, timeout: float = 30):
        self.api_url = api_url.rstrip("/")
        self.token = token  # the lifecycle engines (warm start, teardown) make their own aiohttp calls
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"token {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, ok=(200, 201, 204), **kwargs) -> requests.Response:
        try:
            r = self._session.request(method, self.api_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise HubError(f"the hub API at {self.api_url} cannot be reached ({exc}); is `academy up` running?") from exc
        if r.status_code not in ok:
            raise HubError(f"hub API {method} {path}: {r.status_code} {r.text[:200]}")
        return r

    def user(self, name: str) -> HubUser | None:
        r = self._call("GET", f"/users/{quote(name)}", ok=(200, 404))
        if r.status_code == 404:
            return None
        model = r.json()
        return HubUser(model["name"], bool(model.get("admin")), frozenset(model.get("groups") or []))

    def users_exist(self, names: list[str]) -> set[str]:
        return {n for n in names if self.user(n) is not None}

    def create_users(self, names: list[str]) -> None:
        missing = [n for n in names if self.user(n) is None]
        if missing:
            self._call("POST", "/users", json={"usernames": missing, "admin": False})

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"/users/{quote(name)}", ok=(204, 404))

    def group_members(self, group: str) -> list[str] | None:
        r = self._call("GET", f"/groups/{quote(group)}", ok=(200, 404))
        return None if r.status_code == 404 else sorted(r.json().get("users") or [])

    def ensure_group(self, group: str) -> None:
        if self.group_members(group) is None:
            self._call("POST", f"/groups/{quote(group)}", json={"users": []}, ok=(201, 409))

    def add_to_group(self, group: str, names: list[str]) -> None:
        self.ensure_group(group)
        if names:
            self._call("POST", f"/groups/{quote(group)}/users", json={"users": names})

    def remove_from_group(self, group: str, names: list[str]) -> None:
        if names and self.group_members(group) is not None:
            self._call("DELETE", f"/groups/{quote(group)}/users", json={"users": names})
