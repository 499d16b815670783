"""Benchmark: a whole class arriving at once, played by a real load client against `academy up`.

Usage:  .venv/bin/python benchmarks/load.py [--learners 30 60 100] [--arrival 60] [--code 30 60]
                                           [--deadline 1200] [--concurrency 0]

For each N (a fresh hub each time, local backend, load-test mode on 127.0.0.1, a small 1-core 512 MB
profile): N simulated learners arrive at random within ``--arrival`` seconds.  Each one, on its own
aiohttp session, as a browser would:
  login   GET /hub/login, POST the form (xsrf included), land on /hub/home;
  server  GET /hub/spawn (form-less in load-test mode), follow the spawn page's progress stream
          (noting the queue places it shows) until ready, then open /user/NAME/lab (the single-user
          OAuth round trip through the proxy);
  kernel  start a kernel and get its kernel_info reply over the websocket;
  code    run code for a random 30-60 s (``--code``) and get the execute reply;
  stop    DELETE its server and see it gone.
Meanwhile a prober times the hub's REST API (GET /hub/api/users with the load client's service token)
twice a second, and a sampler reads the hub process's CPU and memory and each learner's processes'
memory (server plus kernel, by Unix account) every second.  The hub's own event-loop measurement
(JupyterHub's PeriodicMetricsCollector, logged from 0.1 s) gives the worst stall; the hub log gives
each start's queue wait and phases.  Everything is bounded by ``--deadline`` per N; what is still
running then counts as a failure at its stage.
Writes benchmarks/results/load.json (every N, and the headline keys for the largest N that ran).
Goal (2 cores, 24 GiB): 100 learners, 0 failures, hub API p95 <= 1 s, event-loop stall <= 0.25 s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import re
import shutil
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import psutil
from yarl import URL

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "load.json"
sys.path[:0] = [str(REPO)]
from testbed.hub import HubProcess, shared_tmpdir  # noqa: E402

STAGES = ("login", "server", "kernel", "code", "stop")
PROFILES = """profiles:
  - slug: small
    display_name: Small · 1 core, 512 MB
    description: The load test's learner profile.
    cpus: 1
    memory: 512M
    hours: {default: 1, max: 2}
"""
STALL = re.compile(r"Event loop was unresponsive for at least ([0-9.]+)s")
# The hub's log formatter indents a record's continuation lines: the stack's lines carry that indent.
BLOCKED = re.compile(r"Event loop blocked for ([0-9.]+)s so far, in:\n((?: +File .*\n(?: +(?!File ).*\n)?)+)")
FRAME = re.compile(r' +File "([^"]+)", line (\d+), in (\S+)')
WAITED = re.compile(r"Start slot granted to \S+ \(number (\d+) in line on arrival, waited ([0-9.]+) s\)")
PHASES = re.compile(r"Start phases of \S+: (.*)")


@dataclass
class LearnerResult:
    """One simulated learner: seconds per stage it finished, the stage it failed at, queue places seen."""

    name: str
    stages: dict[str, float] = field(default_factory=dict)
    failed_stage: str | None = None
    error: str = ""
    queue_places: list[int] = field(default_factory=list)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 3)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.5), "p95": pct(values, 0.95), "max": pct(values, 1.0)}


def xsrf(session: aiohttp.ClientSession, url: str) -> str:
    cookie = session.cookie_jar.filter_cookies(URL(url)).get("_xsrf")
    return cookie.value if cookie else ""


class Learner:
    """One simulated learner's browser session."""

    def __init__(self, base: str, name: str, password: str, code_seconds: float):
        self.base, self.name, self.password, self.code_seconds = base, name, password, code_seconds
        self.result = LearnerResult(name)
        self.stage = "login"

    async def run(self, session: aiohttp.ClientSession) -> None:
        for stage in STAGES:
            self.stage = stage
            started = time.monotonic()
            await getattr(self, f"_{stage}")(session)
            self.result.stages[stage] = round(time.monotonic() - started, 3)

    async def _login(self, s):
        async with s.get(f"{self.base}/hub/login") as r:
            r.raise_for_status()
        data = {"username": self.name, "password": self.password, "_xsrf": xsrf(s, f"{self.base}/hub/")}
        async with s.post(f"{self.base}/hub/login", data=data) as r:
            if not str(r.url).endswith("/hub/home"):
                raise RuntimeError(f"login ended at {r.url} ({r.status})")

    async def _server(self, s):
        async with s.get(f"{self.base}/hub/spawn", allow_redirects=False) as r:
            if r.status not in (200, 302):
                raise RuntimeError(f"/hub/spawn answered {r.status}")
        url = f"{self.base}/hub/api/users/{self.name}/server/progress"
        ready = False
        # The spawn page's EventSource; a dropped stream is reopened, as the browser does.
        while not ready:
            async with s.get(url, params={"_xsrf": xsrf(s, f"{self.base}/hub/")},
                             timeout=aiohttp.ClientTimeout(total=None, sock_read=600)) as r:
                if r.status != 200:
                    raise RuntimeError(f"progress answered {r.status}")
                async for raw in r.content:
                    line = raw.decode().strip()
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if "academy_queue" in event:
                        self.result.queue_places.append(event["academy_queue"]["position"])
                    if event.get("failed"):
                        raise RuntimeError(f"spawn failed: {event.get('message', '')[:200]}")
                    if event.get("ready"):
                        ready = True
                        break
        async with s.get(f"{self.base}/user/{self.name}/lab") as r:
            if r.status != 200:
                raise RuntimeError(f"/user/{self.name}/lab answered {r.status}")

    async def _kernel(self, s):
        api = f"{self.base}/user/{self.name}/api"
        async with s.post(f"{api}/kernels", json={"name": "python3"},
                          headers={"X-XSRFToken": xsrf(s, f"{self.base}/user/{self.name}/")}) as r:
            if r.status != 201:
                raise RuntimeError(f"kernel start answered {r.status}: {(await r.text())[:200]}")
            self.kernel_id = (await r.json())["id"]
        ws_url = f"{api}/kernels/{self.kernel_id}/channels".replace("http://", "ws://")
        self.ws = await s.ws_connect(ws_url, headers={"X-XSRFToken": xsrf(s, f"{self.base}/user/{self.name}/")})
        await self._request("kernel_info_request", {})

    async def _request(self, msg_type: str, content: dict) -> dict:
        msg_id = uuid.uuid4().hex
        await self.ws.send_json({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "username": self.name, "session": uuid.uuid4().hex,
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "content": content, "channel": "shell",
        })
        reply = msg_type.replace("_request", "_reply")
        async for msg in self.ws:
            data = json.loads(msg.data)
            if data.get("parent_header", {}).get("msg_id") == msg_id and data["header"]["msg_type"] == reply:
                return data["content"]
        raise RuntimeError("kernel websocket closed before the reply")

    async def _code(self, s):
        code = ("import time\nt0 = time.time()\nn = 0\n"
                f"while time.time() - t0 < {self.code_seconds:.1f}:\n    n += sum(range(2000)); time.sleep(0.05)\nn")
        content = await self._request("execute_request", {"code": code, "silent": False, "store_history": True,
                                                          "user_expressions": {}, "allow_stdin": False})
        await self.ws.close()
        if content.get("status") != "ok":
            raise RuntimeError(f"code ended with {content.get('status')}: {content.get('ename', '')}")

    async def _stop(self, s):
        headers = {"X-XSRFToken": xsrf(s, f"{self.base}/hub/")}
        async with s.delete(f"{self.base}/hub/api/users/{self.name}/server", headers=headers) as r:
            if r.status not in (202, 204):
                raise RuntimeError(f"stop answered {r.status}")
        while True:
            async with s.get(f"{self.base}/hub/api/users/{self.name}", headers=headers) as r:
                if not (await r.json()).get("servers"):
                    return
            await asyncio.sleep(1)


async def play(learner: Learner, delay: float) -> None:
    await asyncio.sleep(delay)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, as a browser keeps them
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=900)) as session:
        try:
            await learner.run(session)
        except asyncio.CancelledError:
            learner.result.failed_stage, learner.result.error = learner.stage, "still running at the deadline"
            raise
        except Exception as exc:  # a failure is a result, recorded by stage
            learner.result.failed_stage, learner.result.error = learner.stage, f"{type(exc).__name__}: {exc}"[:300]


async def probe_api(base: str, token: str, latencies: list[float], failures: list[str], stop: asyncio.Event):
    async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as s:
        while not stop.is_set():
            started = time.monotonic()
            try:
                async with s.get(f"{base}/hub/api/users", params={"limit": "20"},
                                 timeout=aiohttp.ClientTimeout(total=30)) as r:
                    await r.read()
                    if r.status != 200:
                        failures.append(str(r.status))
                latencies.append(time.monotonic() - started)
            except Exception as exc:  # the hub not answering is what we measure
                failures.append(type(exc).__name__)
            await asyncio.sleep(0.5)


def hub_pid(state: Path) -> int:
    return int((state / "jupyterhub.pid").read_text().strip())


async def sample(state: Path, names: list[str], out: dict, stop: asyncio.Event) -> None:
    """Hub CPU% and RSS, and per learner the peak RSS of everything its Unix account runs."""
    hub = psutil.Process(hub_pid(state))
    hub.cpu_percent(None)
    accounts = {f"acad-{n}": n for n in names}
    peaks: dict[str, float] = {}
    while not stop.is_set():
        await asyncio.sleep(1)
        out["hub_cpu"].append(hub.cpu_percent(None))
        out["hub_rss_mb"].append(hub.memory_info().rss / 2**20)
        per: dict[str, float] = {}
        for proc in psutil.process_iter(["username", "memory_info"]):
            who = accounts.get(proc.info["username"] or "")
            if who and proc.info["memory_info"]:
                per[who] = per.get(who, 0.0) + proc.info["memory_info"].rss / 2**20
        for who, mb in per.items():
            peaks[who] = max(peaks.get(who, 0.0), mb)
    out["learner_peak_rss_mb"] = peaks


def stall_culprits(log: str, top: int = 6) -> list[dict]:
    """Where the loop was when the watchdog saw it stall: the innermost frame, and the innermost of ours or the hub's."""
    counts: dict[tuple[str, str], int] = {}
    for _late, stack in BLOCKED.findall(log):
        frames = [(f"{Path(path).name}:{line}", func) for path, line, func in FRAME.findall(stack)]
        ours = [f"{Path(path).name}:{line} {func}" for path, line, func in FRAME.findall(stack)
                if "/academy/" in path or "/jupyterhub/" in path]
        key = (f"{frames[-1][0]} {frames[-1][1]}" if frames else "?", ours[-1] if ours else "-")
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return [{"innermost": inner, "in_academy_or_hub": ours, "stalls": n} for (inner, ours), n in ranked]


async def one_run(n: int, args) -> dict:
    work = shared_tmpdir(f"load{n}")
    (work / "profiles.yaml").write_text(PROFILES)
    site = {
        "load_test": {"enabled": True},
        "profiles_file": str(work / "profiles.yaml"),
        "spawn_queue": {"concurrency": args.concurrency, "stall_log_threshold": 0.1, "stall_stacks": True},
        "local": {"start_timeout": 300},
    }
    hub = HubProcess(work, site=site).start()
    run_tag = uuid.uuid4().hex[:4]
    names = [f"ld{run_tag}{i:03d}" for i in range(n)]
    try:
        password = (hub.state_dir / "load-test-password").read_text().strip()
        token = (hub.state_dir / "load-client-token").read_text().strip()
        learners = [Learner(hub.url, name, password, random.uniform(*args.code)) for name in names]
        stop = asyncio.Event()
        latencies: list[float] = []
        api_failures: list[str] = []
        samples: dict = {"hub_cpu": [], "hub_rss_mb": []}
        background = [asyncio.create_task(probe_api(hub.url, token, latencies, api_failures, stop)),
                      asyncio.create_task(sample(hub.state_dir, names, samples, stop))]
        started = time.monotonic()
        tasks = [asyncio.create_task(play(lr, random.uniform(0, args.arrival))) for lr in learners]
        done, pending = await asyncio.wait(tasks, timeout=args.deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.monotonic() - started
        stop.set()
        await asyncio.gather(*background)
        log = hub.log_path.read_text(errors="replace")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.with_name(f"load-hub-{n}.log").write_text(log)  # kept, to explain any failure afterwards
    finally:
        hub.stop()
        for name in names:  # the Unix accounts the local backend created for the simulated learners
            await asyncio.create_subprocess_exec("userdel", f"acad-{name}")
        shutil.rmtree(work, ignore_errors=True)
    results = [lr.result for lr in learners]
    failures = [r for r in results if r.failed_stage]
    phases: dict[str, list[float]] = {}
    for line in PHASES.findall(log):
        for part in line.split(", "):
            name, sec = part.rsplit(" ", 1)
            phases.setdefault(name, []).append(float(sec.rstrip("s")))
    waits = [float(w) for _, w in WAITED.findall(log)]
    stalls = [float(s) for s in STALL.findall(log)]
    peaks = list(samples.get("learner_peak_rss_mb", {}).values())
    culprits = stall_culprits(log)
    return {
        "learners": n,
        "wall_s": round(wall, 1),
        "failures": len(failures),
        "failures_by_stage": {st: sum(1 for r in failures if r.failed_stage == st) for st in STAGES},
        "failure_examples": [asdict(r) for r in failures[:5]],
        "stages": {st: summary([r.stages[st] for r in results if st in r.stages]) for st in STAGES},
        "server_ready_p95_s": pct([r.stages["server"] for r in results if "server" in r.stages], 0.95),
        "queue_wait": summary(waits),
        "queue_place_max": max((max(r.queue_places) for r in results if r.queue_places), default=0),
        "learners_shown_a_place": sum(1 for r in results if r.queue_places),
        "start_phases_p50": {k: pct(v, 0.5) for k, v in phases.items()},
        "hub_api_p95_s": pct(latencies, 0.95),
        "hub_api": {**summary(latencies), "failed": len(api_failures)},
        "event_loop_max_stall_s": max(stalls, default=0.0),
        "event_loop_stalls_logged": len(stalls),
        "event_loop_log_threshold_s": 0.1,
        "event_loop_stall_culprits": culprits,
        "hub_cpu_percent": {"mean": round(statistics.fmean(samples["hub_cpu"]), 1) if samples["hub_cpu"] else None,
                            "max": max(samples["hub_cpu"], default=None)},
        "hub_rss_mb_max": round(max(samples["hub_rss_mb"], default=0), 1),
        "server_rss_mb_median": round(statistics.median(peaks), 1) if peaks else None,
        "server_rss_mb_max": round(max(peaks), 1) if peaks else None,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--learners", type=int, nargs="+", default=[30, 60, 100])
    p.add_argument("--arrival", type=float, default=60, help="seconds within which all learners arrive")
    p.add_argument("--code", type=float, nargs=2, default=[30, 60], metavar=("MIN", "MAX"),
                   help="seconds each learner's code runs (uniform between MIN and MAX)")
    p.add_argument("--deadline", type=float, default=1200, help="seconds per N before what still runs counts as failed")
    p.add_argument("--concurrency", type=int, default=0, help="spawn_queue.concurrency (0: from the backend)")
    args = p.parse_args()
    runs = []
    for n in sorted(args.learners):
        print(f"--- {n} learners ---", flush=True)
        result = asyncio.run(one_run(n, args))
        runs.append(result)
        print(json.dumps({k: result[k] for k in ("learners", "failures", "failures_by_stage", "server_ready_p95_s",
                                                 "hub_api_p95_s", "event_loop_max_stall_s", "server_rss_mb_median",
                                                 "queue_place_max", "wall_s")}), flush=True)
    largest = runs[-1]
    out = {
        **{k: largest[k] for k in ("learners", "failures", "hub_api_p95_s", "event_loop_max_stall_s",
                                   "server_ready_p95_s", "server_rss_mb_median")},
        "machine": {"cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "platform": platform.platform()},
        "settings": {"arrival_s": args.arrival, "code_s": args.code, "deadline_s": args.deadline,
                     "concurrency": args.concurrency},
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS}")
    return 0 if largest["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
