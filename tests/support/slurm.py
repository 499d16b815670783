"""Helpers for the Slurm suite: a hub with the slurm backend, real Unix learners, and looks into real jobs."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from pathlib import Path

import requests

from testbed.accounts import CREATED
from testbed.hub import REPO, HubProcess, Learner, free_port, shared_tmpdir
from testbed.slurm_cluster import Cluster, ensure_user

PROFILES = REPO / "testbed" / "slurm_profiles.yaml"
PYTHON_ENV = REPO / ".venv"
_serial = itertools.count(1)
_run_tag = f"{os.getpid() % 1000:03d}"


def slurm_site(groups: dict[str, list[str]] | None = None, **slurm: object) -> dict:
    """Site config for a test hub: our test profiles, fast polling, no culler.

    The hub's internal port is fixed, as it must be in production: running jobs keep the hub
    API URL they were started with, so a restarted hub has to come back on the same one.
    """
    return {
        "hub": {"hub_port": free_port()},
        "backend": "slurm",
        "profiles_file": str(PROFILES),
        "groups": groups or {},
        "slurm": {"poll_interval": 1, "start_timeout": 120, "availability_cache_seconds": 1, **slurm},
    }


def start_hub(site: dict, workdir: Path | None = None) -> HubProcess:
    return HubProcess(workdir or shared_tmpdir("slurmhub"), site=site).start()


def new_username(prefix: str = "sl") -> str:
    """Unique per test run, so reruns against a reused cluster never meet an old job's user."""
    return f"{prefix}{_run_tag}x{next(_serial)}"


def unix_user(name: str, groups: tuple[str, ...] = ()) -> str:
    """A real Unix user, removed with the others at the end of the session (testbed.accounts.remove_users)."""
    ensure_user(name, groups)
    CREATED.add_unix_user(name)
    return name


def make_learners(hub: HubProcess, names: list[str], groups: tuple[str, ...] = ()) -> list[Learner]:
    """Unix users plus hub accounts (Slurm runs the job as them), created in one ``academy accounts add`` (it costs seconds per call)."""
    for name in names:
        unix_user(name, groups)
    passwords = hub.add_accounts(*names)
    learners = []
    for name in names:
        session = hub.login(name, passwords[name])
        learners.append(Learner(name, passwords[name], session, hub.token_for(session, name)))
    return learners


def make_learner(hub: HubProcess, name: str, groups: tuple[str, ...] = ()) -> Learner:
    return make_learners(hub, [name], groups)[0]


class LearnerPool:
    """Hands out fresh learners of one hub, creating them in batches."""

    def __init__(self, hub: HubProcess, batch: int = 6) -> None:
        self.hub, self.batch, self._ready = hub, batch, []

    def take(self, prefix: str = "sl") -> Learner:
        if not self._ready:
            self._ready = make_learners(self.hub, [new_username(prefix) for _ in range(self.batch)])
        return self._ready.pop(0)


def check_python_env_usable(username: str) -> None:
    """The job runs the shared environment as the learner; fail clearly if they cannot."""
    proc = subprocess.run(
        ["runuser", "-u", username, "--", str(PYTHON_ENV / "bin" / "python"), "-c",
         "import jupyterhub, batchspawner, academy.home"],
        capture_output=True, text=True, cwd="/",
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{PYTHON_ENV} is not usable by the unprivileged user {username} (Slurm jobs run as the learner): "
            f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}; make it world-readable (chmod -R o+rX)"
        )


def slurm(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), env=Cluster().env(), capture_output=True, text=True, timeout=60)


def newest_job_id() -> int:
    """The highest job id Slurm still lists; uids are reused after userdel, so 'no job of X' needs a baseline."""
    out = slurm("squeue", "--noheader", "--all", "--states=all", "--format=%i")
    return max((int(j) for j in out.stdout.split() if j.isdigit()), default=0)


def job_of(name: str, after: int = 0) -> dict[str, str] | None:
    """The newest job of a Unix user (all states, ids above ``after``) as squeue describes it, or None."""
    out = slurm("squeue", "--noheader", "--all", "--states=all", f"--user={name}", "--format=%i|%T|%v|%P|%b")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.strip() and int(line.split("|")[0]) > after]
    if not rows:
        return None
    jid, state, reservation, partition, gres = max(rows, key=lambda r: int(r[0]))
    return {"id": jid, "state": state, "reservation": reservation, "partition": partition, "gres": gres}


def job_state(job_id: str) -> str:
    out = slurm("squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--format=%T")
    return out.stdout.strip() or "GONE"


def server_environ(job_id: str, timeout: float = 20) -> dict[str, str]:
    """Environment of the job's jupyterhub-singleuser process, read from /proc (the test runs as root)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
                if "jupyterhub-singleuser" not in cmdline:
                    continue
                env = dict(
                    item.split("=", 1)
                    for item in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                    if "=" in item
                )
            except OSError:
                continue
            if env.get("SLURM_JOB_ID") == job_id:
                return env
        time.sleep(0.3)
    raise AssertionError(f"no jupyterhub-singleuser process for job {job_id}")


def spawn(hub: HubProcess, learner: Learner, options: dict, timeout: float = 90) -> dict:
    r = hub.api("POST", f"/users/{learner.name}/server", learner.token, json=options)
    assert r.status_code in (201, 202), f"{r.status_code} {r.text}" + hub.log_tail()
    return hub.wait_ready(learner.name, learner.token, timeout=timeout)


def wait_no_server(hub: HubProcess, learner: Learner, timeout: float) -> float:
    """Seconds until the hub lists no server for the learner."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not hub.api("GET", f"/users/{learner.name}", learner.token).json().get("servers"):
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{learner.name} still has a server after {timeout} s" + hub.log_tail())


def progress_events(hub: HubProcess, learner: Learner, until, timeout: float = 60) -> list[dict]:
    """Read the spawn's progress event stream until ``until(event)`` is true or the stream ends."""
    events: list[dict] = []
    with requests.get(f"{hub.url}/hub/api/users/{learner.name}/server/progress",
                      headers={"Authorization": f"token {learner.token}"}, stream=True, timeout=timeout) as r:
        deadline = time.monotonic() + timeout
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if until(event):
                    break
            if time.monotonic() > deadline:
                break
    return events


def proxy_routes(hub: HubProcess) -> dict[str, str]:
    """Route -> target from configurable-http-proxy's own API (what the proxy really forwards to)."""
    token = (hub.state_dir / "proxy_auth_token").read_text().strip()
    pid = (hub.state_dir / "proxy.pid").read_text().strip()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    api = f"http://{argv[argv.index('--api-ip') + 1]}:{argv[argv.index('--api-port') + 1]}"
    routes = requests.get(f"{api}/api/routes", headers={"Authorization": f"token {token}"}, timeout=10).json()
    return {path: info["target"] for path, info in routes.items()}
