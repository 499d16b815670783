"""A real hub for tests: ``academy up`` with its own YAML, state dir and free ports, plus a small client.

Used by the hub, browser and Slurm suites. ``HubProcess.start()`` runs the real CLI (so
the real preflight, admin bootstrap and configurable-http-proxy are exercised) and
``stop()`` sends SIGINT, exactly what Ctrl-C does.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import string
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
ACADEMY = [sys.executable, "-m", "academy"]


def shared_tmpdir(prefix: str) -> Path:
    """A temp dir learner accounts can traverse (pytest's own tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix=f"academy-{prefix}-"))
    path.chmod(0o711)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class HubProcess:
    """One ``academy up`` process with its own config, state dir and port."""

    workdir: Path
    site: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    admin_password: str | None = None
    output: list[str] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def config_path(self) -> Path:
        return self.workdir / "academy.yaml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "jupyterhub.log"

    def write_config(self) -> None:
        site = {
            "hub": {"ip": "127.0.0.1", "port": self.port, "state_dir": str(self.state_dir)},
            "backend": "local",
            "auth": {"type": "native", "admin_users": ["admin"]},
            "culler": {"enabled": False},
        }
        for key, value in self.site.items():
            if isinstance(value, dict) and isinstance(site.get(key), dict):
                site[key] = {**site[key], **value}
            else:
                site[key] = value
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(site))

    def start(self, timeout: float = 90) -> "HubProcess":
        self.write_config()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*ACADEMY, "--config", str(self.config_path), "up"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError("academy up exited early:\n" + "".join(self.output) + self.log_tail())
                continue
            self.output.append(line)
            if m := re.match(r"\s+password: (\S+)", line):
                self.admin_password = m.group(1)
            if line.startswith("Press Ctrl-C"):
                return self
        raise RuntimeError("academy up did not become ready:\n" + "".join(self.output) + self.log_tail())

    def stop(self, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self.proc.stdout:
            self.output.extend(self.proc.stdout.readlines())
        return rc

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n--- jupyterhub.log ---\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- clients -----------------------------------------------------------------
    def login(self, username: str, password: str) -> requests.Session:
        """Log in through the real login form (xsrf included), as a browser would."""
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=30)
        r = s.post(
            f"{self.url}/hub/login",
            data={"username": username, "password": password, "_xsrf": s.cookies.get("_xsrf", "")},
            timeout=30,
        )
        assert r.status_code == 200 and r.url.endswith("/hub/home"), f"login of {username} failed: {r.status_code} {r.url}"
        return s

    def token_for(self, session: requests.Session, username: str, note: str = "test") -> str:
        r = session.post(
            f"{self.url}/hub/api/users/{username}/tokens",
            json={"note": note, "expires_in": 3600},
            headers={"X-XSRFToken": session.cookies.get("_xsrf", "")},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def api(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers={"Authorization": f"token {token}"}, timeout=60, **kwargs
        )

    def add_accounts(self, *names: str) -> dict[str, str]:
        """Trainer flow: `academy accounts add --json` against this hub's state."""
        out = subprocess.run(
            [*ACADEMY, "--config", str(self.config_path), "accounts", "add", "--json", *names],
            capture_output=True, text=True, check=True, cwd=REPO,
        )
        return {row["username"]: row["password"] for row in json.loads(out.stdout)}

    def wait_ready(self, username: str, token: str, server: str = "", timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", f"/users/{username}", token)
            spawner = r.json().get("servers", {}).get(server)
            if spawner and spawner.get("ready"):
                return spawner
            time.sleep(0.5)
        raise TimeoutError(f"server of {username} not ready after {timeout} s" + self.log_tail())


# --- learners -------------------------------------------------------------------
_names = itertools.count(1)
# Distinct per run, so Unix accounts left by an interrupted run never collide.
_RUN = "".join(random.choices(string.ascii_lowercase, k=4))
CREATED: list[str] = []


def remove_accounts(prefix: str = "acad-") -> None:
    """Delete the Unix accounts the local backend created for this run's learners."""
    for name in CREATED:
        subprocess.run(["userdel", f"{prefix}{name}"], capture_output=True)
    CREATED.clear()


def proxy_available() -> bool:
    return (REPO / "node_modules" / ".bin" / "configurable-http-proxy").exists() or bool(
        shutil.which("configurable-http-proxy")
    )


@dataclass
class Learner:
    """A native account that has logged in through the form, with its session and API token."""

    name: str
    password: str
    session: requests.Session
    token: str


def make_learner(hub: "HubProcess", prefix: str = "learner") -> Learner:
    name = f"{prefix}-{_RUN}{next(_names)}"
    CREATED.append(name)
    password = hub.add_accounts(name)[name]
    session = hub.login(name, password)
    return Learner(name, password, session, hub.token_for(session, name))




@contextlib.contextmanager
def running_hub(prefix: str, site: dict | None = None):
    """A started hub in its own traversable temp dir; stopped, removed and de-accounted afterwards."""
    from _support import need

    need(proxy_available(), "configurable-http-proxy (npm install)")
    h = HubProcess(shared_tmpdir(prefix), site=site or {}).start()
    try:
        yield h
    finally:
        h.stop()
        shutil.rmtree(h.workdir, ignore_errors=True)
        remove_accounts()
