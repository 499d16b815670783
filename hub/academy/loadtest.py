"""Load-test mode (``load_test.enabled``): a shared-password authenticator that only runs on loopback.

``benchmarks/load.py`` plays a whole class arriving at once: many usernames that log in through the
real form.  JupyterHub's ``SharedPasswordAuthenticator`` does that with one password for every name;
here the password is a random one kept in the state directory (never in the YAML), an API token is
kept beside it for the load client's service, and the hub refuses to start unless every address it
binds is a loopback address, so the mode can never open a machine to anyone who knows the password.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from traitlets import Unicode

PASSWORD_FILE = "load-test-password"
TOKEN_FILE = "load-client-token"
SERVICE = "load-client"


@dataclass(frozen=True)
class LoadTestCredentials:
    """What the load client needs: the shared learner password and its API token."""

    password: str
    api_token: str


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def prepare(state_dir: str | os.PathLike) -> LoadTestCredentials:
    """Read or create the password and token files (owner-only) in the state directory."""
    state = Path(state_dir)
    return LoadTestCredentials(_secret(state / PASSWORD_FILE), _secret(state / TOKEN_FILE))


def read_token(state_dir: str | os.PathLike) -> str:
    path = Path(state_dir) / TOKEN_FILE
    return path.read_text().strip() if path.exists() else ""


class LoadTestAuthenticator(SharedPasswordAuthenticator):
    """Any username with the shared password; refuses to run unless the hub binds loopback only."""

    password_file = Unicode(config=True, help="File holding the shared password (created by `academy up`).")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.password_file and not self.user_password:
            self.user_password = Path(self.password_file).read_text().strip()

    def get_handlers(self, app):
        for name in ("bind_url", "hub_bind_url"):
            url = getattr(app, name, "") or ""
            host = urlparse(url).hostname if url else None
            if host is not None and not is_loopback(host):
                raise SystemExit(
                    f"load_test: refusing to start, JupyterHub.{name} is {url}; "
                    "the load-test authenticator only runs on a loopback address"
                )
        return super().get_handlers(app)
