"""Benchmark: what the session tools cost a learner's server and the hub, and how fast Ctrl-C stops it all.

Usage (root, local backend, cgroups as in the hub tests):
    .venv/bin/python benchmarks/session.py [--servers 20] [--window 60]

In one run, against one real hub (``academy up``, the real proxy, real learner accounts):
  (a) RSS of a learner's server process (``jupyterhub-singleuser``, after it served /lab once):
      "bare" = the same server with every server extension that hub/singleuser enables switched off
      (the learner's own ~/.jupyter config, which Jupyter reads last), against ours (median of the rest);
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
import sys
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "session.json"
sys.path[:0] = [str(REPO / "tests")]
from hub_harness import HubProcess, make_learner, remove_accounts, shared_tmpdir  # noqa: E402


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


def make_bare(hub, who) -> None:
    """Switch off, for this learner only, every server extension hub/singleuser turns on."""
    enabled = json.loads((REPO / "hub/singleuser/jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    off = {name: False for name, on in enabled.items() if on}
    off["jupyter_resource_usage"] = False
    pw = pwd.getpwnam(f"acad-{who.name}")
    cfg_dir = hub.state_dir / "homes" / who.name / ".jupyter"
    cfg_dir.mkdir(exist_ok=True)
    (cfg_dir / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": off}}))
    for path in (cfg_dir, cfg_dir / "jupyter_server_config.json"):
        os.chown(path, pw.pw_uid, pw.pw_gid)


def warm(hub, who) -> None:
    for path in ("lab", "api/status", "academy/api/resources"):
        requests.get(f"{hub.url}/user/{who.name}/{path}", headers={"Authorization": f"token {who.token}"}, timeout=120)


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
    ap.add_argument("--servers", type=int, default=20, help="running servers while hub CPU is measured (>= 4)")
    ap.add_argument("--window", type=float, default=60, help="seconds of hub CPU measurement")
    args = ap.parse_args()
    assert args.servers >= 4, "need one bare server, one of ours and 3 left for Ctrl-C"
    hub = HubProcess(shared_tmpdir("bench-session"), site={"culler": {"enabled": True}, "local": {"start_timeout": 600}})
    hub.start(timeout=300)
    try:
        learners = [make_learner(hub, prefix="bs") for _ in range(args.servers)]
        bare, ours = learners[0], learners[1:]
        spawn(hub, [bare])
        make_bare(hub, bare)
        stop(hub, [bare])
        t0 = time.monotonic()
        spawn(hub, learners)
        print(f"{args.servers} servers ready in {time.monotonic() - t0:.0f} s", flush=True)
        for who in learners:
            warm(hub, who)
        rss = {who.name: server_process(f"acad-{who.name}").memory_info().rss / 2**20 for who in learners}
        bare_mb, ours_mb = rss[bare.name], statistics.median(rss[w.name] for w in ours)
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
