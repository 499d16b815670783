"""Runs one workshop teardown in its own process, so a test can kill it mid-way (SIGKILL) and rerun it.

argv[1] is a JSON object: hub, token, store, state_dir, homes, participants, db_url, log, hang_on.
The injected course steps append "<participant> <step>" to ``log`` when they complete; the
``autograde`` step of participant ``hang_on`` blocks forever, so the kill lands inside a step.
"""
import asyncio
import json
import sys
import time
from pathlib import Path

from academy.workshop.teardown import JsonStepStore, native_login_switch, run_teardown

args = json.loads(sys.argv[1])
log = Path(args["log"])


def step(name):
    def run(participant):
        if name == "autograde" and participant == args.get("hang_on"):
            while True:
                time.sleep(1)
        with log.open("a") as fh:
            fh.write(f"{participant} {name}\n")
    return run


def export():
    with log.open("a") as fh:
        fh.write("* export\n")


disable, _ = native_login_switch(args["db_url"])
report = asyncio.run(run_teardown(
    "ws1", args["participants"], hub_api_url=args["hub"], token=args["token"],
    store=JsonStepStore(args["store"]), state_dir=args["state_dir"],
    home_of=lambda n: Path(args["homes"]) / n,
    course_steps=[(s, step(s)) for s in ("collect", "autograde", "feedback")],
    workshop_steps=[("export", export)], disable_login=disable,
    on_step=lambda n, s: print(f"done {n} {s}", flush=True)))
print(json.dumps({"complete": report.complete, "failures": [f.__dict__ for f in report.failures],
                  "ran": report.ran, "skipped": report.skipped}))
