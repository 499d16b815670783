"""Benchmark: spawn latency and Slurm query load of the Slurm backend, on the real one-node Slurm.

Usage:  .venv/bin/python benchmarks/spawn.py [--runs 5] [--parallel 20] [--window 60] [--skip-stock]

In one run (root; starts or reuses the cluster of testbed/slurm_cluster.py):
  (a) the floor, measured directly: ``sbatch`` of a trivial job until it runs, plus a bare
      ``jupyterhub-singleuser`` start until it answers HTTP (as the same Unix user, same hub API);
  (b) request-to-ready through our hub (REST API), ``--runs`` times, interleaved with the floor's
      samples; median and ratio to the floor;
  (c) ``--parallel`` simultaneous spawns: how many became ready, wall time, failures;
  (d) Slurm queries per minute (``squeue``/``sacct`` calls, counted by wrappers first on PATH) with
      ``--parallel`` running servers and with a quarter of them, ours (poll_interval 5 s, the default)
      against stock ``batchspawner.SlurmSpawner`` with JupyterHub's default polling.
Prints a table and writes benchmarks/results/spawn.json. Goals: median spawn <= 1.3x the floor,
all parallel spawns ready, queries per minute independent of the number of servers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "spawn.json"
VENV = REPO / ".venv"
sys.path[:0] = [str(REPO)]
from testbed.hub import HubProcess, free_port, shared_tmpdir  # noqa: E402
from testbed.slurm_cluster import Cluster, ensure_user, start as start_cluster  # noqa: E402

PROFILES = REPO / "testbed" / "slurm_profiles.yaml"
COUNTED = ("squeue", "sacct", "sinfo", "sbatch", "scancel")


# -- counting Slurm calls -------------------------------------------------------------------------
def install_counters(bindir: Path, log: Path) -> None:
    """Wrappers first on PATH that log each call, then run the real command."""
    bindir.mkdir(parents=True, exist_ok=True)
    log.touch()
    log.chmod(0o666)  # user-side commands (sbatch, scancel, stock squeue) log as the learner
    for name in COUNTED:
        wrapper = bindir / name
        wrapper.write_text(f'#!/bin/sh\necho {name} >> {log}\nexec /usr/bin/{name} "$@"\n')
        wrapper.chmod(0o755)


def count_calls(log: Path) -> dict[str, int]:
    lines = log.read_text().split()
    return {name: lines.count(name) for name in COUNTED}


def queries_per_minute(log: Path, window: float) -> dict[str, float]:
    log.write_text("")
    time.sleep(window)
    calls = count_calls(log)
    return {"squeue": calls["squeue"] * 60 / window, "sacct": calls["sacct"] * 60 / window}


# -- the floor -----------------------------------------------------------------------------------
def sbatch_to_running(user: str, cluster: Cluster, tmp: Path) -> float:
    marker = tmp / f"started-{secrets.token_hex(4)}"
    t0 = time.monotonic()
    subprocess.run(["/usr/sbin/runuser", "-u", user, "--", "/usr/bin/sbatch", "--parsable", "--partition=cpu", "--mem=64M",
                    "--output=/dev/null", f"--chdir={tmp}", f"--wrap=touch {marker}; sleep 5"],
                   env=cluster.env(), check=True, capture_output=True)
    while not marker.exists():
        time.sleep(0.01)
    return time.monotonic() - t0


def bare_singleuser(user: str, hub_api: str) -> float:
    """A jupyterhub-singleuser started by hand as ``user`` (same hub API for its start-up check) until it answers."""
    port = free_port()
    env = {
        "PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": f"/home/{user}", "USER": user,
        "JUPYTERHUB_API_TOKEN": secrets.token_hex(16), "JUPYTERHUB_API_URL": hub_api, "JUPYTERHUB_USER": user,
        "JUPYTERHUB_SERVICE_PREFIX": f"/user/{user}/", "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/user/{user}/", "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/user/{user}/oauth_callback",
    }
    t0 = time.monotonic()
    proc = subprocess.Popen(["/usr/sbin/runuser", "-u", user, "--", f"{VENV}/bin/jupyterhub-singleuser"], env=env,
                            cwd=f"/home/{user}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/user/{user}/api/status", timeout=1)
                return time.monotonic() - t0
            except requests.RequestException:
                if proc.poll() is not None:
                    raise RuntimeError("bare jupyterhub-singleuser exited before answering")
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(15)


# -- driving a hub through its REST API ------------------------------------------------------------
class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.headers = url, {"Authorization": f"token {token}"}

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", headers=self.headers, timeout=60, **kw)

    def create_users(self, names: list[str]) -> None:
        r = self("POST", "/users", json={"usernames": names})
        assert r.status_code in (201, 409), r.text

    def spawn_until_ready(self, name: str, options: dict, timeout: float = 300) -> float:
        t0 = time.monotonic()
        r = self("POST", f"/users/{name}/server", json=options)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"{name}: {r.status_code} {r.text[:200]}")
        while time.monotonic() - t0 < timeout:
            server = self("GET", f"/users/{name}").json().get("servers", {}).get("")
            if server and server.get("ready"):
                return time.monotonic() - t0
            if not server and time.monotonic() - t0 > 5:
                raise RuntimeError(f"{name}: spawn failed")
            time.sleep(0.05)
        raise TimeoutError(f"{name}: not ready after {timeout} s")

    def stop(self, name: str, timeout: float = 60) -> None:
        self("DELETE", f"/users/{name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self("GET", f"/users/{name}").json().get("servers"):
            time.sleep(0.1)


def parallel_spawns(api: Api, names: list[str], options: dict) -> dict:
    t0 = time.monotonic()
    with ThreadPoolExecutor(len(names)) as pool:
        futures = {name: pool.submit(api.spawn_until_ready, name, options) for name in names}
    failures = {name: str(f.exception())[:200] for name, f in futures.items() if f.exception()}
    return {"ready": len(names) - len(failures), "of": len(names), "wall_s": time.monotonic() - t0,
            "failures": failures}


# -- the two hubs ----------------------------------------------------------------------------------
def start_our_hub() -> tuple[HubProcess, Api]:
    hub = HubProcess(shared_tmpdir("bench"), site={
        "hub": {"hub_port": free_port(), "concurrent_spawn_limit": 30},
        "backend": "slurm",
        "profiles_file": str(PROFILES),
        "slurm": {"start_timeout": 300},
    }).start(timeout=120)
    session = hub.login("admin", hub.admin_password)
    return hub, Api(hub.url, hub.token_for(session, "admin"))


STOCK_CONFIG = """
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = ["{chp}"]
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.JupyterHub.concurrent_spawn_limit = 30
c.JupyterHub.services = [{{"name": "bench", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [{{"name": "bench", "scopes": ["admin:users", "admin:servers", "read:users"], "services": ["bench"]}}]
# What a site has to add to stock batchspawner for this cluster: absolute paths, the user switch, resources.
c.Spawner.env_keep = ["PATH", "SLURM_CONF"]
c.Spawner.cmd = ["{venv}/bin/jupyterhub-singleuser"]
c.Spawner.start_timeout = 300
c.SlurmSpawner.batchspawner_singleuser_cmd = "{venv}/bin/batchspawner-singleuser"
c.SlurmSpawner.exec_prefix = "runuser -u {{username}} --"
c.SlurmSpawner.req_partition = "cpu"
c.SlurmSpawner.req_memory = "512M"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_runtime = "1:00:00"
"""


def start_stock_hub(workdir: Path) -> tuple[subprocess.Popen, Api]:
    state = workdir / "state"
    state.mkdir(parents=True)
    port, token = free_port(), secrets.token_hex(16)
    config = workdir / "stock_config.py"
    config.write_text(STOCK_CONFIG.format(port=port, hub_port=free_port(), api_port=free_port(), state=state,
                                          token=token, venv=VENV, chp=REPO / "node_modules" / ".bin" / "configurable-http-proxy"))
    log = open(workdir / "stock.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=state, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16)})
    api = Api(f"http://127.0.0.1:{port}", token)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if api("GET", "/").status_code == 200:
                return proc, api
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    raise RuntimeError(f"stock hub did not start; see {workdir / 'stock.log'}")


def stop_all(api: Api, names: list[str]) -> None:
    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(api.stop, names))


# -- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--window", type=float, default=60, help="seconds over which queries are counted")
    parser.add_argument("--skip-stock", action="store_true", help="leave out stock batchspawner's query count")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("benchmarks/spawn.py needs root (it creates Unix users and runs jobs as them)", file=sys.stderr)
        return 2
    cluster = start_cluster(Cluster())
    tmp = Path(tempfile.mkdtemp(prefix="academy-bench-"))
    tmp.chmod(0o777)
    calls = tmp / "slurm-calls.log"
    install_counters(tmp / "bin", calls)
    os.environ["SLURM_CONF"] = str(cluster.conf)
    os.environ["PATH"] = f"{tmp / 'bin'}:{os.environ['PATH']}"
    users = [f"bench{i:02d}" for i in range(1, args.parallel + 1)]
    for user in users:
        ensure_user(user)
    result: dict = {"machine": f"{platform.node()} ({os.cpu_count()} cores)", "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()[0]}

    try:
        run_all(args, cluster, tmp, calls, users, result)
    finally:
        for user in users:
            subprocess.run(["/usr/bin/scancel", f"--user={user}"], env=cluster.env(), capture_output=True)
            subprocess.run(["userdel", "--remove", user], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    report(result, args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {RESULTS}")
    ok = result["spawn"]["ratio"] <= 1.3 and result["parallel"]["ready"] == args.parallel
    return 0 if ok else 1


def run_all(args, cluster: Cluster, tmp: Path, calls: Path, users: list[str], result: dict) -> None:
    hub, api = start_our_hub()
    try:
        api.create_users(users)
        hub_api = f"http://127.0.0.1:{hub.site['hub']['hub_port']}/hub/api"
        sbatch, bare, ours = [], [], []
        # Interleaved, so a change in machine load shifts the floor and our spawns alike.
        for _ in range(args.runs):
            sbatch.append(sbatch_to_running(users[0], cluster, tmp))
            bare.append(bare_singleuser(users[0], hub_api))
            ours.append(api.spawn_until_ready(users[0], {"profile": "cpu"}))
            api.stop(users[0])
        floor = statistics.median(sbatch) + statistics.median(bare)
        result["floor"] = {"sbatch_to_running_s": sbatch, "bare_singleuser_s": bare, "floor_s": floor}
        result["spawn"] = {"runs_s": ours, "median_s": statistics.median(ours), "ratio": statistics.median(ours) / floor}
        result["parallel"] = parallel_spawns(api, users, {"profile": "cpu"})
        time.sleep(5)  # let the burst's own queries settle before counting
        quarter = max(1, args.parallel // 4)
        result["ours_queries_per_min"] = {str(args.parallel): queries_per_minute(calls, args.window)}
        stop_all(api, users[quarter:])
        result["ours_queries_per_min"][str(quarter)] = queries_per_minute(calls, args.window)
        stop_all(api, users[:quarter])
    finally:
        hub.stop()
        shutil.rmtree(hub.workdir, ignore_errors=True)

    if not args.skip_stock:
        proc, stock = start_stock_hub(tmp / "stock")
        try:
            stock.create_users(users)
            result["stock_parallel"] = parallel_spawns(stock, users, {})
            time.sleep(5)
            result["stock_queries_per_min"] = {str(args.parallel): queries_per_minute(calls, args.window)}
            stop_all(stock, users)
        finally:
            proc.terminate()
            proc.wait(60)
    result["load_average_at_end"] = os.getloadavg()[0]


def report(r: dict, args) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Slurm spawn benchmark on {r['machine']}, load average "
                    f"{r['load_average_at_start']:.1f} -> {r['load_average_at_end']:.1f}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("goal")
    f = r["floor"]
    t.add_row("floor: sbatch → running (median)", f"{statistics.median(f['sbatch_to_running_s']):.2f} s", "")
    t.add_row("floor: bare jupyterhub-singleuser → answers (median)", f"{statistics.median(f['bare_singleuser_s']):.2f} s", "")
    t.add_row("floor (sum)", f"{f['floor_s']:.2f} s", "")
    t.add_row(f"our request → ready, median of {args.runs}", f"{r['spawn']['median_s']:.2f} s",
              ", ".join(f"{x:.1f}" for x in r["spawn"]["runs_s"]))
    t.add_row("ratio to floor", f"{r['spawn']['ratio']:.2f}x", "<= 1.3x")
    p = r["parallel"]
    t.add_row(f"{p['of']} simultaneous spawns ready", f"{p['ready']}/{p['of']} in {p['wall_s']:.1f} s",
              f"{p['of']}/{p['of']}; failures: {len(p['failures'])}")
    for n, q in r["ours_queries_per_min"].items():
        t.add_row(f"ours: Slurm queries/min with {n} servers", f"{q['squeue'] + q['sacct']:.1f}", "flat in N")
    if "stock_queries_per_min" in r:
        for n, q in r["stock_queries_per_min"].items():
            t.add_row(f"stock batchspawner: queries/min with {n} servers", f"{q['squeue'] + q['sacct']:.1f}", "")
        sp = r["stock_parallel"]
        t.add_row(f"stock: {sp['of']} simultaneous spawns ready", f"{sp['ready']}/{sp['of']} in {sp['wall_s']:.1f} s", "")
    Console().print(t)


if __name__ == "__main__":
    sys.exit(main())
