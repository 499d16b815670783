"""Benchmark: Slurm accounting calls made for GPU-hour budgets, and the spawn form's cost of showing them.

Usage:  .venv/bin/python benchmarks/accounting.py [--accounts 50] [--servers 20] [--viewers 20]
        [--seconds 60] [--view-every 3] [--refresh 120] [--renders 30]

Runs as root on the accounting test cluster of testbed/slurm_cluster.py (slurmdbd + MariaDB; it honours
ACADEMY_SLURM_DIR and ACADEMY_SLURM_PORTS). ``--accounts`` budget accounts are created with
``academy budgets sync`` (a generated site config, each with a GrpTRESMins budget), and ``--servers``
jobs run under them (sleep jobs standing in for notebook servers: the first six hold the cluster's
GPUs, the rest are CPU-only), so sshare has real figures and reservations to report.

1. Slurm calls per minute: ``--viewers`` learners each open the spawn form every ``--view-every``
   seconds for ``--seconds``. Each view asks the hub's own ``BudgetReader`` (academy.slurm.budgets) for
   figures, against the real ``sshare``; calls are counted at the Slurm command choke point
   (academy.slurm.commands.CALLS). Ours: the shared reader with ``--refresh``; baseline in the same run:
   the same reader with no cache (one call per page view).
2. Form render time: two real hubs on the same cluster, profiles and learner group, one with
   ``slurm.accounting`` on (the budget shown) and one without; ``--renders`` GETs of /hub/spawn each,
   interleaved, after one warm-up; the median in milliseconds.

Writes benchmarks/results/accounting.json (``slurm_calls_per_min`` {ours, per_page_view},
``form_ms_with_budget``, ``form_ms_without_budget``, ``ratio``, and the sizes). Goal: calls per minute
independent of viewers and servers (ours <= 60 / refresh + 1); the form at most 1.2x slower with budgets.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "accounting.json"
sys.path[:0] = [str(REPO)]
from testbed import slurm_accounting, slurm_cluster  # noqa: E402
from testbed.accounts import CREATED, remove_users  # noqa: E402
from testbed.hub import HubProcess, free_port, shared_tmpdir  # noqa: E402

TAG = f"{os.getpid() % 1000:03d}"
GPU_JOBS = (("gpu", "gpu:h100:1"), ("gpu", "gpu:h100:1")) + (("gpu-mig", "gpu:1g.18gb:1"),) * 4


async def calls_per_minute(viewers: int, seconds: float, view_every: float, refresh: float) -> float:
    from academy.slurm import budgets, commands

    reader = budgets.BudgetReader(refresh_seconds=refresh)
    before = commands.CALLS["sshare"]
    start = time.monotonic()

    async def viewer(offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() - start < seconds:
            snap = await reader.snapshot()
            assert snap.available, snap.error
            await asyncio.sleep(view_every)

    await asyncio.gather(*(viewer(i * view_every / viewers) for i in range(viewers)))
    return (commands.CALLS["sshare"] - before) * 60 / (time.monotonic() - start)


def form_ms(hubs: dict[str, tuple[HubProcess, object]], renders: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in hubs}
    for hub, session in hubs.values():
        session.get(f"{hub.url}/hub/spawn", timeout=30)  # warm-up: the first render fills caches
    for _ in range(renders):
        for key, (hub, session) in hubs.items():
            t = time.perf_counter()
            r = session.get(f"{hub.url}/hub/spawn", timeout=30)
            times[key].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and ('academy-budget' in r.text) == (key == "with"), (key, r.status_code)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--servers", type=int, default=20)
    ap.add_argument("--viewers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--view-every", type=float, default=3)
    ap.add_argument("--refresh", type=float, default=120)
    ap.add_argument("--renders", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (accounts, jobs and Unix users)", file=sys.stderr)
        return 2
    cluster = slurm_cluster.start(slurm_cluster.Cluster())
    os.environ["SLURM_CONF"] = str(cluster.conf)
    accounts = [f"bn{TAG}a{i:03d}" for i in range(args.accounts)]
    learner = f"bn{TAG}u"
    accounting = {"enabled": True, "default_account": slurm_accounting.DEFAULT_ACCOUNT, "refresh_seconds": args.refresh,
                  "budgets": {f"team{i:03d}": {"account": a, "gpu_hours": 100} for i, a in enumerate(accounts)}}
    work = Path(tempfile.mkdtemp(prefix="academy-bench-acct-"))
    jobs: list[str] = []
    hubs: list[HubProcess] = []
    try:
        site = work / "sync.yaml"
        site.write_text(yaml.safe_dump({"backend": "slurm", "slurm": {"accounting": accounting}}))
        subprocess.run([str(REPO / ".venv/bin/academy"), "--config", str(site), "budgets", "sync"], check=True,
                       capture_output=True, timeout=600)
        for i in range(args.servers):
            account = accounts[i % len(accounts)]
            slurm_accounting.add_user(cluster, "root", account)
            partition, gres = GPU_JOBS[i] if i < len(GPU_JOBS) else ("cpu", "")
            argv = ["sbatch", "--parsable", f"--account={account}", f"--partition={partition}", "--time=60",
                    "--mem=32M", "--output=/dev/null", "--wrap=sleep 3600"] + ([f"--gres={gres}"] if gres else [])
            jobs.append(subprocess.run(argv, env=cluster.env(), check=True, capture_output=True, text=True).stdout.strip())
        ours = asyncio.run(calls_per_minute(args.viewers, args.seconds, args.view_every, args.refresh))
        naive = asyncio.run(calls_per_minute(args.viewers, args.seconds, args.view_every, 0))

        slurm_cluster.ensure_user(learner, account=accounts[0])
        CREATED.add_unix_user(learner)
        base = {"backend": "slurm", "profiles_file": str(REPO / "testbed" / "slurm_profiles.yaml"),
                "groups": {"team000": [learner]}, "slurm": {"poll_interval": 5, "availability_cache_seconds": 10}}
        sessions = {}
        for key, acct in (("with", accounting), ("without", {"enabled": False})):
            site_cfg = {**base, "hub": {"hub_port": free_port()}, "slurm": {**base["slurm"], "accounting": acct}}
            hub = HubProcess(shared_tmpdir(f"benchacct{key}"), site=site_cfg).start()
            hubs.append(hub)
            password = hub.add_accounts(learner)[learner]
            sessions[key] = (hub, hub.login(learner, password))
        forms = form_ms(sessions, args.renders)
    finally:
        for hub in hubs:
            hub.stop()
            shutil.rmtree(hub.workdir, ignore_errors=True)
        if jobs:
            subprocess.run(["scancel", *jobs], env=cluster.env(), capture_output=True)
            time.sleep(6)  # sacctmgr refuses to delete an account with running jobs
        subprocess.run(["sacctmgr", "-i", "delete", "account", ",".join(accounts)], env=cluster.env(), capture_output=True)
        remove_users()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "accounts": args.accounts, "servers": args.servers, "viewers": args.viewers, "seconds": args.seconds,
        "view_every_s": args.view_every, "refresh_s": args.refresh, "renders": args.renders,
        "slurm_calls_per_min": {"ours": round(ours, 2), "per_page_view": round(naive, 2)},
        "form_ms_with_budget": round(forms["with"], 1), "form_ms_without_budget": round(forms["without"], 1),
        "ratio": round(forms["with"] / forms["without"], 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
