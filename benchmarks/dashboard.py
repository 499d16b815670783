"""Benchmark: how fast a learner's progress event reaches the trainer's live dashboard, under a full room.

Usage:  .venv/bin/python benchmarks/dashboard.py [--participants 60] [--seconds 60] [--rate 1]

A fresh hub (``academy up``, local backend, its own state dir and ports) and its trainer service.
``--participants`` hub users are made through the admin API and added to one workshop through the
service's own form; each gets a real hub API token of their own (the admin API's
``POST /users/<name>/tokens``, which inherits the user's scopes, ``access:services!service=academy``
included): the event API accepts a learner's own token as it accepts their server's, and starting
60 servers would measure the spawner instead. The admin listens on the workshop's dashboard stream
(Server-Sent Events, through the proxy, as the page's EventSource does). Every participant then
posts one ``check`` event per second (``--rate``) for ``--seconds``, spread evenly over each
second, to ``/services/academy/api/events`` through the proxy. Measured: for every accepted event,
the time from just before its POST to its arrival on the stream (p50, p95, max), events not seen
on the stream within 10 s of the end (lost), refused posts, and the CPU seconds of the hub process
and of the service process over the sending window. As a same-run baseline, the p50 of the hub's
own ``GET /hub/api/`` before the load.

Writes benchmarks/results/dashboard.json (``participants``, ``events_sent``, ``events_accepted``,
``events_lost``, ``event_to_dashboard_p50_s``/``_p95_s``/``_max_s``, ``hub_cpu_s``, ``service_cpu_s``,
``baseline_hub_api_p50_s``). Goal: 0 lost, p95 <= 2 s on the 2-core machine.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "dashboard.json"
sys.path[:0] = [str(REPO)]
from testbed.accounts import CREATED, remove_accounts  # noqa: E402
from testbed.hub import _RUN, HubProcess, shared_tmpdir  # noqa: E402
from testbed.sse import SseReader  # noqa: E402

SERVICE = "/services/academy/"


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 4)


def service_process(hub: HubProcess) -> psutil.Process:
    for child in psutil.Process(hub.ready["hub_pid"]).children(recursive=True):
        if "academy.workshop.service" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("the academy service process was not found under the hub")


def cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def make_room(hub: HubProcess, n: int) -> tuple[str, str, dict[str, str]]:
    """A workshop of ``n`` participants; the admin's token and each participant's own token."""
    admin = hub.login("admin", hub.admin_password)
    admin_token = hub.token_for(admin, "admin", note="bench-dashboard")
    names = [f"bd{_RUN}-{i:02d}" for i in range(1, n + 1)]
    CREATED.extend(names)
    r = hub.api("POST", "/users", admin_token, json={"usernames": names})
    assert r.status_code == 201, r.text
    slug = f"bench{_RUN}"
    page = admin.get(f"{hub.url}{SERVICE}new", timeout=60)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    form = {"_xsrf": xsrf, "slug": slug, "title": "Dashboard benchmark", "start": "2030-03-02T09:00",
            "end": "2030-03-02T17:00", "profiles": "cpu", "count": "0", "reservation": "", "usernames": "\n".join(names)}
    r = admin.post(f"{hub.url}{SERVICE}new", data=form, timeout=600)
    assert r.status_code == 200 and slug in r.text, r.text[-2000:]
    tokens = {}
    for name in names:
        r = hub.api("POST", f"/users/{name}/tokens", admin_token, json={"note": "bench", "expires_in": 7200})
        assert r.status_code == 201, r.text
        tokens[name] = r.json()["token"]
    return slug, admin_token, tokens


async def send_all(url: str, tokens: dict[str, str], seconds: int, rate: float) -> list[dict]:
    """Every participant posts one event every 1/rate s, the room spread evenly over each interval."""
    from tornado.httpclient import AsyncHTTPClient

    AsyncHTTPClient.configure(None, max_clients=max(10, len(tokens)))
    client = AsyncHTTPClient()
    sent: list[dict] = []
    start = time.monotonic() + 1.0
    period = 1.0 / rate

    async def one(i: int, name: str, token: str) -> None:
        for k in range(int(seconds * rate)):
            delay = start + k * period + i * period / len(tokens) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            message = f"{name}#{k}"
            event = {"kind": "check", "notebook": "bench.ipynb", "exercise": f"e{k % 10}", "passed": k % 3 == 0,
                     "message": message, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            at = time.time()
            r = await client.fetch(url, method="POST", body=json.dumps({"events": [event]}), raise_error=False,
                                   headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
                                   request_timeout=60)
            accepted = r.code == 202 and json.loads(r.body).get("accepted") == 1
            sent.append({"message": message, "at": at, "code": r.code, "accepted": accepted})

    await asyncio.gather(*(one(i, name, token) for i, (name, token) in enumerate(sorted(tokens.items()))))
    return sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=60)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rate", type=float, default=1.0, help="events per participant per second")
    args = ap.parse_args()
    hub = HubProcess(shared_tmpdir("bench-dashboard"), site={"workshops": {"max_participants": max(60, args.participants)}})
    hub.start()
    try:
        slug, admin_token, tokens = make_room(hub, args.participants)
        baseline = []
        for _ in range(20):
            t = time.monotonic()
            hub.api("GET", "/", admin_token)
            baseline.append(time.monotonic() - t)
        stream = SseReader(f"{hub.url}{SERVICE}w/{slug}/dashboard/stream", {"Authorization": f"token {admin_token}"})
        assert stream.wait_status() == 200, stream.status
        stream.wait_for(lambda e: e.event == "row", timeout=60)  # the stream's first snapshot is in
        hub_proc, service = psutil.Process(hub.ready["hub_pid"]), service_process(hub)
        cpu0 = (cpu(hub_proc), cpu(service))
        t0 = time.monotonic()
        sent = asyncio.run(send_all(f"{hub.url}{SERVICE}api/events", tokens, args.seconds, args.rate))
        window = time.monotonic() - t0
        cpu1 = (cpu(hub_proc), cpu(service))
        time.sleep(10)  # what arrives later than this counts as lost
        stream.close()
        arrived: dict[str, float] = {}
        for ev in list(stream.events):
            if ev.event == "activity":
                for a in ev.json():
                    arrived.setdefault(a["message"], ev.at)
        accepted = [s for s in sent if s["accepted"]]
        latencies = [arrived[s["message"]] - s["at"] for s in accepted if s["message"] in arrived]
        result = {
            "participants": args.participants, "seconds": args.seconds, "rate_per_participant": args.rate,
            "events_sent": len(sent), "events_accepted": len(accepted), "events_refused": len(sent) - len(accepted),
            "refused_codes": sorted({s["code"] for s in sent if not s["accepted"]}),
            "events_lost": len(accepted) - len(latencies),
            "event_to_dashboard_p50_s": pct(latencies, 50), "event_to_dashboard_p95_s": pct(latencies, 95),
            "event_to_dashboard_max_s": round(max(latencies), 4) if latencies else None,
            "sending_window_s": round(window, 2),
            "hub_cpu_s": round(cpu1[0] - cpu0[0], 2), "service_cpu_s": round(cpu1[1] - cpu0[1], 2),
            "baseline_hub_api_p50_s": round(statistics.median(baseline), 4),
            "cpus": psutil.cpu_count(), "goal": "events_lost == 0 and event_to_dashboard_p95_s <= 2",
        }
    finally:
        hub.stop()
        remove_accounts()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
