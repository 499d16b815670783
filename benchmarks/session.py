"""Benchmark: what the session tools cost a learner's server and the hub, and how fast Ctrl-C stops it all.

Usage (root, local backend, cgroups as in the hub tests):
    .venv/bin/python benchmarks/session.py [--servers 20] [--window 60]

In one run, against one real hub (``academy up``, the real proxy, real learner accounts):
  (a) RSS of a learner's server process (``jupyterhub-singleuser``, after it served /lab once):
      "bare" = the same ``jupyterhub-singleuser`` command, account and environment, started beside the
      first learner's server with every server extension hub/singleuser enables (and nbgrader's and
      jupyter-resource-usage) off, against ours (median of all the hub's servers);
  (b) hub CPU per minute with ``--servers`` running servers: the hub process plus its services (the
      culler), over ``--window`` seconds, at the shipped culler interval;
  (c) with 3 servers left running, seconds from SIGINT (Ctrl-C) on ``academy up`` until it exits.
Writes benchmarks/results/session.json. Goals: ours <= bare + 40 MB; culler (and countdown) <= 1 s of
hub CPU per minute at 20 servers; Ctrl-C to exit <= 10 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "session.json"
sys.path[:0] = [str(REPO)]
from testbed.hub import HubProcess, free_port, make_learner, shared_tmpdir  # noqa: E402
from testbed.accounts import remove_accounts  # noqa: E402


def server_process(account: str) -> psutil.Process:
    uid = pwd.getpwnam(account).pw_uid
    for p in psutil.process_iter(["cmdline", "uids"]):
        if p.info["uids"] and p.info["uids"].real == uid and any("jupyterhub-singleuser" in a for a in p.info["cmdline"] or []):
            return p
    raise RuntimeError(f"no server process for {account}")


def spawn(hub, learners, profile="cpu"):
    for who in learners:
        r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": profile})
        r.raise_for_status()
    for who in learners:
        hub.wait_ready(who.name, who.token, timeout=600)


def stop(hub, learners):
    for who in learners:
        hub.api("DELETE", f"/users/{who.name}/server", who.token)
    for who in learners:
        while hub.api("GET", f"/users/{who.name}", who.token).json()["servers"]:
            time.sleep(0.5)


def bare_server(who, workdir: Path) -> tuple[subprocess.Popen, str]:
    """Beside the learner's own server, start the same ``jupyterhub-singleuser`` as the same account with
    the same environment, except that every server extension hub/singleuser turns on (and nbgrader's and
    jupyter-resource-usage) is off and our config directory is not read; returns it and its URL.

    A learner's ~/.jupyter cannot do this: JUPYTER_CONFIG_PATH (ours) outranks it, as it should.
    """
    ours = server_process(f"acad-{who.name}")
    env, cmd, cwd = ours.environ(), ours.cmdline(), ours.cwd()
    ours_json = json.loads((REPO / "hub/singleuser/jupyter_server_config.json").read_text())
    off = {name: False for name in ours_json["ServerApp"]["jpserver_extensions"]}
    off["jupyter_resource_usage"] = False
    cfg = workdir / f"bare-config-{who.name}"
    cfg.mkdir()
    cfg.chmod(0o755)  # the learner's account reads it
    (cfg / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": off}}))
    (cfg / "jupyter_server_config.json").chmod(0o644)
    port = free_port()
    path = urlparse(env["JUPYTERHUB_SERVICE_URL"]).path
    env.update(JUPYTER_CONFIG_PATH=str(cfg), JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}{path}")
    pw = pwd.getpwnam(f"acad-{who.name}")
    log = open(workdir / f"bare-{who.name}.log", "wb")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}{path}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "api/status", headers={"Authorization": f"token {who.token}"}, timeout=10).status_code == 200:
                return proc, base
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the bare server did not start; see {workdir / f'bare-{who.name}.log'}")


def warm_url(base: str, token: str) -> int:
    """Serve /lab and the status and resources APIs once; returns the resources API's status code."""
    for path in ("lab", "api/status", "academy/api/resources"):
        r = requests.get(base + path, headers={"Authorization": f"token {token}"}, timeout=120)
    return r.status_code


def warm(hub, who) -> int:
    return warm_url(f"{hub.url}/user/{who.name}/", who.token)


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=20, help="running servers while hub CPU is measured (>= 3)")
    ap.add_argument("--window", type=float, default=60, help="seconds of hub CPU measurement")
    args = ap.parse_args()
    assert args.servers >= 3, "need 3 servers left for Ctrl-C"
    hub = HubProcess(shared_tmpdir("bench-session"), site={"culler": {"enabled": True}, "local": {"start_timeout": 600}})
    hub.start(timeout=300)
    try:
        learners = [make_learner(hub, prefix="bs") for _ in range(args.servers)]
        t0 = time.monotonic()
        spawn(hub, learners)
        print(f"{args.servers} servers ready in {time.monotonic() - t0:.0f} s", flush=True)
        codes = {who.name: warm(hub, who) for who in learners}
        bare_proc, bare_url = bare_server(learners[0], hub.workdir)
        try:
            # The comparison means something only if the bare server really runs without our extensions.
            bare_code = warm_url(bare_url, learners[0].token)
            if bare_code != 404 or any(code != 200 for code in codes.values()):
                raise SystemExit(f"the bare server serves our API ({bare_code}), or one of ours does not: {codes}")
            bare_mb = psutil.Process(bare_proc.pid).memory_info().rss / 2**20
        finally:
            bare_proc.terminate()
            bare_proc.wait(30)
        rss = {who.name: server_process(f"acad-{who.name}").memory_info().rss / 2**20 for who in learners}
        ours_mb = statistics.median(rss.values())
        # `academy up` runs the hub as its child; the hub's own children are the services, proxy and servers.
        jhub = next(p for p in psutil.Process(hub.proc.pid).children() if "jupyterhub" in " ".join(p.cmdline()))
        services = [p for p in jhub.children() if "academy.culler" in " ".join(p.cmdline())]
        before = cpu_seconds([jhub, *services])
        time.sleep(args.window)
        per_min = (cpu_seconds([jhub, *services]) - before) * 60 / args.window
        stop(hub, learners[3:])
        t0 = time.monotonic()
        hub.proc.send_signal(signal.SIGINT)
        hub.proc.wait(timeout=300)
        ctrl_c = time.monotonic() - t0
        hub.output.extend(hub.proc.stdout.readlines() if hub.proc.stdout else [])
    finally:
        hub.stop()
        remove_accounts()
    result = {
        "bare_server_rss_mb": round(bare_mb, 1),
        "academy_server_rss_mb": round(ours_mb, 1),
        "extra_rss_mb": round(ours_mb - bare_mb, 1),
        "culler_hub_cpu_s_per_min_20_servers": round(per_min, 3),
        "ctrl_c_to_exit_s_3_servers": round(ctrl_c, 2),
        "servers_during_cpu_window": args.servers,
        "bare_checked": "the bare server (same account, environment and command, our extensions off) answers 404 on /academy/api/resources; ours 200",
        "window_s": args.window,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "goals": {"extra_rss_mb_max": 40, "culler_hub_cpu_s_per_min_max": 1.0, "ctrl_c_to_exit_s_max": 10},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"RSS per server: bare {bare_mb:.1f} MB, ours {ours_mb:.1f} MB (+{ours_mb - bare_mb:.1f} MB; goal <= 40)")
    print(f"Hub + culler CPU with {args.servers} servers: {per_min:.3f} s per minute (goal <= 1)")
    print(f"Ctrl-C to exit with 3 servers: {ctrl_c:.2f} s (goal <= 10)")
    print("".join(hub.output[-12:]))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
