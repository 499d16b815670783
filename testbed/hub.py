"""A real hub for tests and benchmarks: ``academy up`` with its own YAML, state dir and free ports, plus a small client.

Used by the hub, browser and Slurm suites and by the benchmarks. ``HubProcess.start()`` runs the real
CLI (so the real preflight, admin bootstrap and configurable-http-proxy are exercised) and waits for
the JSON of ``academy up --ready-file`` (URL, first-run admin password); ``stop()`` sends SIGINT,
exactly what Ctrl-C does. ``output`` holds what ``academy up`` printed.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import string
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

from academy.siteconfig import deep_merge
from testbed.accounts import CREATED

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
    ready: dict | None = field(default=None, init=False)  # what `academy up --ready-file` wrote
    _unread: bytes = field(default=b"", init=False, repr=False)  # output after its last complete line

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
    def ready_file(self) -> Path:
        return self.workdir / "ready.json"

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
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(deep_merge(site, self.site)))

    def start(self, timeout: float = 90) -> "HubProcess":
        self.write_config()
        self.ready_file.unlink(missing_ok=True)  # a second start in the same workdir
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*ACADEMY, "--config", str(self.config_path), "up", "--ready-file", str(self.ready_file)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read_output()
            if self.ready_file.exists():
                # `academy up` writes the file after its last start-up line, so that output is all here now.
                self._read_output()
                self.ready = json.loads(self.ready_file.read_text())
                self.admin_password = self.ready["admin_password"]
                return self
            if self.proc.poll() is not None:
                self._read_output(to_end=True)
                raise RuntimeError("academy up exited early:\n" + "".join(self.output) + self.log_tail())
            time.sleep(0.1)
        raise RuntimeError("academy up did not become ready:\n" + "".join(self.output) + self.log_tail())

    def _read_output(self, to_end: bool = False) -> None:
        """Move what `academy up` printed into ``output``, line by line; ``to_end`` waits for it to close stdout."""
        fd = self.proc.stdout.fileno()
        os.set_blocking(fd, to_end)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._unread += chunk
        *lines, self._unread = self._unread.split(b"\n")
        self.output.extend(line.decode(errors="replace") + "\n" for line in lines)
        if to_end and self._unread:
            self.output.append(self._unread.decode(errors="replace"))
            self._unread = b""

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
            self._read_output(to_end=True)
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
        # The hub's own XSRF cookie: a session that also visited a service holds that service's one too.
        xsrf = next((c.value for c in session.cookies if c.name == "_xsrf" and c.path.startswith("/hub")), "")
        r = session.post(
            f"{self.url}/hub/api/users/{username}/tokens",
            json={"note": note, "expires_in": 3600},
            headers={"X-XSRFToken": xsrf},
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


@dataclass
class Learner:
    """A hub account that has logged in through the form, with its password, session and API token.

    On the local backend the hub makes its Unix account; the Slurm suite makes it first (tests/support/slurm.py).
    """

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
