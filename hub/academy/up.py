"""``academy up``: check everything, prepare the state directory, then run JupyterHub in the foreground.

Every check that can refuse a start runs before anything is written, so a bad config,
a busy port or an unwritable state directory exits with one clear line and leaves
existing state untouched. Ctrl-C (or SIGTERM) stops the hub, which stops the proxy and,
for the local backend, every server it started; users and their files stay.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from academy import clitools, loadtest
from academy.accounts import bootstrap_admin
from academy.loadtest import is_loopback
from academy.readyfile import RUNNING, write_ready_file
from academy.configurer import state_path
from academy.course.protect import close_site_courses, site_refusal
from academy.doctor_checks import check_proxy, check_state_dir, check_user_reachable
from academy.probes import PROJECT_ROOT, find_proxy, free_port, port_in_use
from academy.runtime import RunFacts
from academy.shutdown import exit_now, follow, parts_of
from academy.siteconfig import config_file, load_config
from academy.validation import ConfigError

CONFIG_PY = PROJECT_ROOT / "hub" / "jupyterhub_config.py"


class StartRefused(RuntimeError):
    """A pre-flight check failed; the message is the one line shown."""


def preflight(cfg: dict) -> str:
    """Refuse early; returns the proxy command. Writes nothing."""
    hub = cfg["hub"]
    state = check_state_dir(cfg)
    if not state.ok:
        raise StartRefused(state.detail)
    problem = port_in_use(hub["ip"], hub["port"])
    if problem:
        raise StartRefused(problem)
    for check in (check_proxy(cfg), check_user_reachable(cfg)):
        if not check.ok:
            raise StartRefused(check.detail)
    if cfg["backend"] == "slurm" and not cfg["hub"]["hub_port"]:
        raise StartRefused(
            "hub.hub_port: the slurm backend needs a fixed port, because running jobs keep the hub "
            "address they started with and must find the hub again after a restart"
        )
    if cfg["load_test"]["enabled"] and not is_loopback(hub["ip"]):
        raise StartRefused(
            f"load_test.enabled: hub.ip is {hub['ip']}; load-test mode (one shared password) only runs on "
            "a loopback address such as 127.0.0.1"
        )
    course_problem = site_refusal(cfg)  # a missing course, or one whose hidden tests learners could change
    if course_problem:
        raise StartRefused(course_problem)
    if cfg["auth"]["type"] == "oidc":
        var = cfg["auth"]["oidc"]["client_secret_env"]
        if not os.environ.get(var):
            raise StartRefused(f"auth.oidc.client_secret_env: environment variable {var} is not set")
    return find_proxy(cfg)  # type: ignore[return-value]


def _secret_file(path: Path, nbytes: int = 32) -> str:
    """Read or create an owner-only secret file."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_hex(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def prepare_state(cfg: dict) -> dict[str, str]:
    """Create the state dir and secrets; returns the environment the hub needs."""
    state = Path(cfg["hub"]["state_dir"])
    # Everything the hub writes (database with password hashes, logs, secrets) is private.
    os.umask(0o077)
    state.mkdir(parents=True, exist_ok=True)
    # Homes of the local backend live below; their owners need to traverse, not list.
    os.chmod(state, 0o711 if (os.geteuid() == 0 and cfg["backend"] == "local") else 0o700)
    for private in ("jupyterhub.sqlite", "jupyterhub.log"):
        if (state / private).exists():
            os.chmod(state / private, 0o600)
    _secret_file(state / "jupyterhub_cookie_secret")
    proxy_token = _secret_file(state / "proxy_auth_token")
    # The workshop service's hub API token, shared with `academy workshop` on this machine.
    _secret_file(state / "academy-service-token")
    return {"CONFIGPROXY_AUTH_TOKEN": proxy_token}


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def run(args: argparse.Namespace) -> int:
    try:
        # --port is this run's fact, merged and validated with the YAML (academy.runtime).
        cfg = load_config(args.config, RunFacts(port=args.port or None))
        proxy_cmd = preflight(cfg)
    except (ConfigError, StartRefused) as exc:
        return clitools.refused(args, str(exc))
    hub = cfg["hub"]
    # Everything decided here reaches the hub once, in $ACADEMY_RUNTIME; the hub's config reads it
    # with the YAML (siteconfig.hub_config) rather than being overridden on its command line.
    facts = RunFacts(port=hub["port"], hub_port=hub["hub_port"] or free_port(), proxy_api_port=free_port(),
                     proxy_cmd=proxy_cmd)
    env = {**os.environ, **prepare_state(cfg), "ACADEMY_CONFIG": str(config_file(args.config)), **facts.to_env()}
    for closed in close_site_courses(cfg):  # solutions and hidden tests: never readable by learners
        print(closed, flush=True)
    if cfg["auth"]["type"] == "oidc":
        # OAuthenticator reads its secret from OAUTH_CLIENT_SECRET; the YAML only names the variable.
        env["OAUTH_CLIENT_SECRET"] = os.environ[cfg["auth"]["oidc"]["client_secret_env"]]
    cmd = [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_PY)]
    credential = load_credentials = None
    if cfg["load_test"]["enabled"]:
        load_credentials = loadtest.prepare(cfg["hub"]["state_dir"])
    elif cfg["auth"]["type"] == "native" and cfg["auth"]["admin_users"]:
        credential = bootstrap_admin("sqlite:///" + state_path(cfg, "jupyterhub.sqlite"), cfg["auth"]["admin_users"][0])
    log_path = Path(cfg["hub"]["state_dir"]) / "jupyterhub.log"
    url = f"http://{hub['ip'] if hub['ip'] not in ('0.0.0.0', '') else 'localhost'}:{hub['port']}{hub['base_url']}"
    print(f"Starting AI Factory Academy ({cfg['backend']} backend, config {cfg['_source']}); log: {log_path}", flush=True)
    with open(log_path, "ab") as log:
        os.chmod(log_path, 0o600)
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cfg["hub"]["state_dir"], start_new_session=True)

        stopping: list[tuple] = []

        def stop(signum, frame):  # noqa: ARG001
            if proc.poll() is None and not stopping:
                # Where the log stood and what runs, before the hub starts stopping things.
                stopping.append((log_path.stat().st_size, parts_of(proc.pid)))
                proc.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if wait_ready(url.rstrip("/") + "/hub/api/", proc, timeout=args.start_timeout):
            print(f"\nAI Factory Academy is ready: {url}", flush=True)
            if credential:
                print(
                    "\nFirst start: an admin account was created. Its password is shown ONLY NOW"
                    " (stored hashed; reset it with `academy accounts reset "
                    f"{credential.username}`):\n  username: {credential.username}\n  password: {credential.password}\n",
                    flush=True,
                )
            if load_credentials:
                print(
                    "\nLoad-test mode (loopback only): every username logs in with the shared password in "
                    f"{Path(cfg['hub']['state_dir']) / loadtest.PASSWORD_FILE}; the load client's API token is in "
                    f"{Path(cfg['hub']['state_dir']) / loadtest.TOKEN_FILE}.\n",
                    flush=True,
                )
            print("Press Ctrl-C to stop the hub and every server it started.", flush=True)
            write_ready_file(args.ready_file, cfg, url=url, hub_pid=proc.pid, credential=credential)
            write_ready_file(Path(state_path(cfg, RUNNING)), cfg, url=url, hub_pid=proc.pid)  # no password
        elif proc.poll() is None:
            print(f"academy up: the hub did not answer within {args.start_timeout} s; see {log_path}", file=sys.stderr)
            proc.terminate()
        while proc.poll() is None and not stopping:
            time.sleep(0.2)
        rc = follow(proc, log_path, *stopping[0]) if stopping else proc.wait()
    if rc not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        print(f"academy up: the hub exited with status {rc}; last log lines:\n  " + "\n  ".join(tail), file=sys.stderr)
        return 1
    print("AI Factory Academy stopped.", flush=True)
    # The hub and everything it started are gone; tearing down JupyterHub's imports here would
    # only keep the terminal waiting for most of another second.
    exit_now(0)
    return 0  # not reached


def register(subparsers) -> None:
    p = subparsers.add_parser("up", help="start the hub in the foreground (Ctrl-C stops it)")
    p.add_argument("--port", type=clitools.port_number, help="public port (overrides hub.port)")
    p.add_argument("--start-timeout", type=clitools.positive_float, default=90, help="seconds to wait for the hub to answer")
    p.add_argument("--ready-file", metavar="FILE",
                   help="once the hub answers, write its URL, pid and first-run admin password to FILE as JSON (mode 0600)")
    p.set_defaults(func=run)
