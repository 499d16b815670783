"""Benchmark: login-to-JupyterLab time for workshop participants with a warm-started server and without.

Usage:  .venv/bin/python benchmarks/workshop.py [--participants 30] [--slurm 10] [--arrival 60] [--burst 10]

Part 1 (local backend): a fresh hub (``academy up``, its own state dir and ports) with
2 × ``--participants`` native accounts that exist as hub users before anyone logs in. Half are
warm-started with ``academy.workshop.warmstart.WarmStart`` (the service's code path, a token
scoped ``start:servers!group=…``); the other half are cold. Then every participant logs in
through the real login form (``next`` = their lab), arriving evenly over ``--arrival`` seconds as
a room does at the start (warm ones first, then cold ones). Measured per participant: from the
login POST until ``/user/<name>/lab`` answers 200 and the server's ``/api/status`` answers 200.
A cold participant gets the spawn form, posts the workshop profile and waits on the pending page,
as in the browser. Then, as a stress figure, every warm participant logs in once more with a new
session, ``--burst`` at the very same moment: each login's bcrypt check costs about 0.3 s of CPU
(cost 12, kept on purpose), so on 2 cores a burst queues on the password checks.
Part 2 (``--slurm N``, needs root and Slurm installed): the same with N + N participants on
the Slurm backend, each a real Unix user, on testbed/slurm_cluster.py's one-node cluster (started
here if it is not up, and stopped again afterwards). ``--slurm 0`` skips it.
The results file is written after each part, so a part that fails keeps the other's figures.

Writes benchmarks/results/workshop.json (``participants``, ``warm_login_to_lab_p50_s``,
``warm_login_to_lab_p95_s``, ``cold_login_to_lab_p50_s``, ``cold_login_to_lab_p95_s``,
``warm_start_failures``, ``warm_burst_login_to_lab_p50_s``/``_p95_s``, and a ``slurm`` section).
Goal: warm p95 <= 2 s, 0 failures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from academy.workshop.warmstart import WarmStart

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "workshop.json"
TAG = secrets.token_hex(2)
SLURM_PROFILES = {"profiles": [{"slug": "bench", "display_name": "Benchmark CPU", "description": "One core.",
                                "partition": "cpu", "cpus": 1, "memory": "512M", "hours": {"default": 1, "max": 2}}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """``academy up`` in a temp dir; URL and first-run admin password come from its ``--ready-file`` JSON."""

    def __init__(self, site: dict):
        self.workdir = Path(tempfile.mkdtemp(prefix="academy-bench-ws-"))
        self.workdir.chmod(0o711)  # learner accounts traverse it to their homes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.workdir / "academy.yaml"
        # The site's defaults for how many spawns may wait and start: a lower concurrent_spawn_limit
        # than the cold wave turns the last arrivals away with a 429, as it would on a real site.
        base = {"hub": {"ip": "127.0.0.1", "port": self.port, "state_dir": str(self.workdir / "state")},
                "backend": "local", "auth": {"type": "native", "admin_users": ["admin"]}, "culler": {"enabled": False}}
        for key, value in site.items():
            base[key] = {**base[key], **value} if isinstance(base.get(key), dict) else value
        self.config.write_text(yaml.safe_dump(base))
        ready_file = self.workdir / "ready.json"
        # up's prose goes to a file: an undrained pipe would block it once full.
        with open(self.workdir / "up.log", "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "academy", "--config", str(self.config), "up", "--ready-file", str(ready_file)],
                stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        deadline = time.monotonic() + 120
        while not ready_file.exists() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        ready = json.loads(ready_file.read_text()) if ready_file.exists() else {}
        self.admin_password = ready.get("admin_password")
        if self.proc.poll() is not None or not self.admin_password:
            raise SystemExit(f"academy up did not start; see {self.workdir / 'up.log'}")
        self.url = ready["url"].rstrip("/")
        s = self.login("admin", self.admin_password)
        r = s.post(f"{self.url}/hub/api/users/admin/tokens", json={"note": "bench", "expires_in": 7200},
                   headers={"X-XSRFToken": s.cookies.get("_xsrf", "")}, timeout=30)
        self.token = r.json()["token"]

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=120,
                                headers={"Authorization": f"token {self.token}"}, **kw)

    def login(self, name: str, password: str) -> requests.Session:
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=30)
        s.post(f"{self.url}/hub/login", data={"username": name, "password": password,
                                              "_xsrf": s.cookies.get("_xsrf", "")}, timeout=30)
        return s

    def participants(self, names: list[str], group: str) -> dict[str, str]:
        out = subprocess.run([sys.executable, "-m", "academy", "--config", str(self.config), "accounts", "add",
                              "--json", *names], capture_output=True, text=True, check=True, cwd=REPO)
        self.api("POST", "/users", json={"usernames": names})
        self.api("POST", f"/groups/{group}")
        self.api("POST", f"/groups/{group}/users", json={"users": names})
        return {row["username"]: row["password"] for row in json.loads(out.stdout)}

    def scoped_token(self, group: str) -> str:
        r = self.api("POST", "/users/admin/tokens", json={"note": "warm start", "expires_in": 7200, "scopes": [
            f"start:servers!group={group}", f"read:servers!group={group}", f"users:activity!group={group}"]})
        return r.json()["token"]

    def stop(self) -> None:
        for user in self.api("GET", "/users").json():
            if user.get("servers"):
                self.api("DELETE", f"/users/{user['name']}/server")
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        log = self.workdir / "state" / "jupyterhub.log"
        if log.exists():  # kept next to the results, to explain any failure
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, RESULTS.with_name(f"workshop-hub-{self.port}.log"))
        shutil.rmtree(self.workdir, ignore_errors=True)


def hub_xsrf(s: requests.Session) -> str:
    """The hub's _xsrf cookie; after a visit to the lab the server sets its own under /user/NAME/."""
    values = [c.value for c in s.cookies if c.name == "_xsrf" and not c.path.startswith("/user/")]
    return values[0] if values else ""


def login_to_lab(hub: Hub, name: str, password: str, profile: str, timeout: float = 600) -> float:
    """Seconds from the login POST until /lab and /api/status both answer 200."""
    s = requests.Session()
    nxt = "/hub/user-redirect/lab"
    s.get(f"{hub.url}/hub/login", params={"next": nxt}, timeout=30)
    t0 = time.perf_counter()
    r = s.post(f"{hub.url}/hub/login", params={"next": nxt}, timeout=120,
               data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf", "")})
    if "/hub/spawn/" in r.url or r.url.rstrip("/").endswith("/hub/spawn"):  # cold: the form, as in the browser
        r = s.post(r.url, data={"profile": profile, "hours": "1", "_xsrf": hub_xsrf(s)}, timeout=120)
    lab = f"{hub.url}/user/{name}/lab"
    deadline = time.monotonic() + timeout
    while not (r.status_code == 200 and r.url.split("?")[0] == lab):
        if r.status_code >= 500:  # the hub's page for a failed spawn
            raise RuntimeError(f"{name}: spawn failed ({r.status_code} {r.url})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: no lab after {timeout} s (last {r.status_code} {r.url})")
        time.sleep(0.25)
        r = s.get(lab, timeout=120)
    status = s.get(f"{hub.url}/user/{name}/api/status", timeout=60)
    if status.status_code != 200:
        raise RuntimeError(f"{name}: /api/status answered {status.status_code}")
    return time.perf_counter() - t0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def arriving(items: list, fn, arrival: float) -> None:
    """Call ``fn(item)`` for every item, the i-th starting ``i * arrival / len(items)`` seconds in."""
    start = time.monotonic()

    def at_its_time(numbered):
        i, item = numbered
        time.sleep(max(0.0, start + i * arrival / len(items) - time.monotonic()))
        fn(item)

    with ThreadPoolExecutor(max(1, len(items))) as pool:
        list(pool.map(at_its_time, enumerate(items)))


def run_part(site: dict, n: int, profile: str, arrival: float, burst: int, prefix: str) -> dict:
    hub = Hub(site)
    warm_names: list[str] = []
    cold_names: list[str] = []
    try:
        warm_names = [f"{prefix}w{TAG}{i:02d}" for i in range(1, n + 1)]
        cold_names = [f"{prefix}c{TAG}{i:02d}" for i in range(1, n + 1)]
        group = f"bench{TAG}"
        passwords = hub.participants(warm_names + cold_names, group)

        async def warm() -> dict:
            async with WarmStart(f"{hub.url}/hub/api", hub.scoped_token(group), warm_names,
                                 {"profile": profile, "hours": 1}, concurrent_spawn_limit=10) as ws:
                return {k: v.as_dict() for k, v in (await ws.run()).items()}

        t0 = time.perf_counter()
        warm_status = asyncio.run(warm())
        warm_wall = time.perf_counter() - t0
        failures = [s for s in warm_status.values() if s["state"] != "running"]
        timings: dict[str, list[float]] = {"warm": [], "cold": [], "burst": []}
        errors: list[str] = []

        def one(kind_name):
            kind, name = kind_name
            try:
                timings[kind].append(login_to_lab(hub, name, passwords[name], profile))
            except Exception as exc:  # a failed login is a result, reported, not a crash
                errors.append(f"{name}: {exc}")

        arriving([("warm", x) for x in warm_names], one, arrival)
        arriving([("cold", x) for x in cold_names], one, arrival)
        with ThreadPoolExecutor(burst) as pool:
            list(pool.map(one, [("burst", x) for x in warm_names]))
        return {
            "participants": n,
            "arrival_s": arrival,
            "warm_login_to_lab_p50_s": round(statistics.median(timings["warm"]), 3) if timings["warm"] else None,
            "warm_login_to_lab_p95_s": round(p95(timings["warm"]), 3) if timings["warm"] else None,
            "cold_login_to_lab_p50_s": round(statistics.median(timings["cold"]), 3) if timings["cold"] else None,
            "cold_login_to_lab_p95_s": round(p95(timings["cold"]), 3) if timings["cold"] else None,
            "burst": burst,
            "warm_burst_login_to_lab_p50_s": round(statistics.median(timings["burst"]), 3) if timings["burst"] else None,
            "warm_burst_login_to_lab_p95_s": round(p95(timings["burst"]), 3) if timings["burst"] else None,
            "warm_start_failures": len(failures),
            "warm_start_wall_s": round(warm_wall, 2),
            "login_errors": errors,
            "warm_start_failed": failures,
        }
    finally:
        hub.stop()
        if site.get("backend", "local") == "local":  # the local backend made acad-<name> accounts
            for name in warm_names + cold_names:
                subprocess.run(["userdel", f"acad-{name}"], capture_output=True)


def slurm_part(n: int, arrival: float, burst: int) -> dict:
    if os.geteuid() != 0:
        return {"skipped": "needs root (jobs run as each participant's own Unix account)"}
    sys.path.insert(0, str(REPO))
    from testbed import slurm_cluster

    cluster = slurm_cluster.Cluster()
    was_up = cluster.conf.exists() and slurm_cluster.controller_up(cluster)
    slurm_cluster.start(cluster)
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        return _slurm_run(n, arrival, burst)
    finally:
        if not was_up:
            slurm_cluster.stop(cluster)


def _slurm_run(n: int, arrival: float, burst: int) -> dict:
    profiles = Path(tempfile.mkdtemp(prefix="academy-bench-prof-")) / "profiles.yaml"
    profiles.write_text(yaml.safe_dump(SLURM_PROFILES))
    profiles.parent.chmod(0o755)
    names = [f"sbw{TAG}{i:02d}" for i in range(1, n + 1)] + [f"sbc{TAG}{i:02d}" for i in range(1, n + 1)]
    for name in names:  # Slurm runs each job as the participant's own Unix account
        subprocess.run(["useradd", "--create-home", name], capture_output=True)
    try:
        site = {"backend": "slurm", "profiles_file": str(profiles), "hub": {"hub_port": free_port()},
                "slurm": {"poll_interval": 1, "start_timeout": 300}}
        return run_part(site, n, "bench", arrival, burst, "sb")
    finally:
        for name in names:
            subprocess.run(["userdel", "-r", name], capture_output=True)
        shutil.rmtree(profiles.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=30, help="warm participants (and as many cold)")
    ap.add_argument("--slurm", type=int, default=10, help="participants of the Slurm part (0 skips it)")
    ap.add_argument("--arrival", type=float, default=60, help="seconds over which participants arrive, evenly spread")
    ap.add_argument("--burst", type=int, default=10, help="warm logins at the same moment in the stress round")
    ap.add_argument("--profile", default="cpu", help="profile of the local part")
    args = ap.parse_args(argv)
    result = run_part({}, args.participants, args.profile, args.arrival, args.burst, "b")
    result["slurm"] = {"skipped": "--slurm 0"} if not args.slurm else {"not run": "the local part's figures come first"}
    write(result)
    if args.slurm:
        try:
            result["slurm"] = slurm_part(args.slurm, args.arrival, args.burst)
        except BaseException as exc:  # Ctrl-C or a dead cluster: keep the local part and say what happened
            result["slurm"] = {"error": f"{type(exc).__name__}: {exc}"}
            write(result)
            raise
        write(result)
    print(json.dumps(result, indent=2))
    ok = [result, result["slurm"]] if "participants" in result["slurm"] else [result]
    return 0 if all(r["warm_start_failures"] == 0 and not r["login_errors"] for r in ok) else 1


def write(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
