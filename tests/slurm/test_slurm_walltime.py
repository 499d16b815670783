"""Walltime in a real Slurm job, seen in Debian's Chromium: countdown, More time, saves before the end, the hub's word after.

The job starts with the CPU profile's 1 h, gets one more hour through "More time" (the hub runs
``scontrol update``), is refused beyond the profile's 4 h, and is then cut by an administrator to end
about 3 minutes later, which the server must notice through ``squeue`` by itself. JupyterLab's own
autosave is switched off for this learner, so what reaches the disk was saved by the Academy extension.
"""
from __future__ import annotations

import json
import math
import os
import pwd
import re
import shutil
import time
from pathlib import Path

import pytest
import requests

from support.skip import need
from support.lab import terminal_run
from support.slurm import PYTHON_ENV, job_of, job_state, make_learner, new_username, slurm, slurm_site, spawn, start_hub

pytestmark = [pytest.mark.slurm, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LEFT_RE = re.compile(r"(\d+):(\d\d):(\d\d) left")


@pytest.fixture(scope="module")
def hub(slurm_cluster):
    # squeue re-read every 10 s (production: 180), so the admin's change shows within the test's minutes.
    h = start_hub({**slurm_site(), "lab": {"walltime_recheck_seconds": 10}})
    yield h
    h.stop()
    shutil.rmtree(h.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    need(os.access(CHROMIUM, os.X_OK), "Debian's chromium at /usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def time_limit(job_id: str) -> str:
    out = slurm("scontrol", "show", "job", job_id).stdout
    return re.search(r"TimeLimit=(\S+)", out).group(1)


def seconds_left(page) -> int:
    text = page.locator(".academy-walltime").inner_text()
    h, m, s = map(int, LEFT_RE.search(text).groups())
    return h * 3600 + m * 60 + s


def notebook_text(path: Path) -> str:
    # Jupyter's "atomic" save keeps a backup and rewrites the file in place, so a read
    # can land in the middle of a save: that is "not saved yet", not a failure.
    try:
        cells = json.loads(path.read_text())["cells"]
    except (json.JSONDecodeError, FileNotFoundError):
        return ""
    return "\n".join("".join(c["source"]) for c in cells)


def wait_for(predicate, timeout: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def test_walltime_countdown_more_time_saves_and_the_end(hub, browser):
    """Does the countdown show the job's end, More time extend it within 4 h only, the 5- and 1-minute saves
    reach the disk before Slurm ends the job, and the hub say afterwards that it ended at its walltime?"""
    learner = make_learner(hub, new_username("wt"))
    home = Path(pwd.getpwnam(learner.name).pw_dir)
    auth = {"Authorization": f"token {learner.token}"}
    spawn(hub, learner, {"profile": "cpu", "hours": 1}, timeout=180)
    job = job_of(learner.name)["id"]
    base = f"{hub.url}/user/{learner.name}"
    # JupyterLab's own autosave off: only the Academy extension may save the edits below.
    r = requests.put(f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin", headers=auth, timeout=60,
                     json={"raw": json.dumps({"autosave": False})})
    assert r.status_code == 204, r.text
    cells = [{"cell_type": "code", "metadata": {}, "source": "", "outputs": [], "execution_count": None}]
    r = requests.put(f"{base}/api/contents/walltime.ipynb", headers=auth, timeout=60, json={
        "type": "notebook", "format": "json",
        "content": {"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}})
    assert r.status_code == 201, r.text

    # More time: within the profile's 4 h, then beyond it.
    r = requests.post(f"{base}/academy/api/walltime/extend", headers=auth, json={"hours": 1}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["walltime"]["hours"] == 2 and time_limit(job) == "02:00:00"
    refused = requests.post(f"{base}/academy/api/walltime/extend", headers=auth, json={"hours": 3}, timeout=60)
    assert refused.status_code == 400 and "at most 4 h" in refused.json()["message"]
    assert time_limit(job) == "02:00:00"

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": c.path or "/"}
                         for c in learner.session.cookies])
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{base}/lab/tree/walltime.ipynb")
    page.locator(".academy-walltime").wait_for()
    wait_for(lambda: LEFT_RE.search(page.locator(".academy-walltime").inner_text()), 30, "the countdown")
    assert 3600 < seconds_left(page) <= 7200, "the countdown shows the extended 2 h"

    page.locator(".jp-Dialog").wait_for(state="detached", timeout=60_000)  # no dialog may catch the typing
    page.locator(".lm-TabBar-tab", has_text="walltime.ipynb").first.click()
    editor = page.locator(".jp-NotebookPanel:visible .jp-CodeCell .jp-InputArea-editor").first
    editor.click()
    page.keyboard.type("first = 'saved at five minutes'")
    # An administrator cuts the job short: about 3 minutes from now.
    elapsed = slurm("squeue", "--noheader", f"--jobs={job}", "--format=%M").stdout.strip()
    minutes = sum(int(x) * f for x, f in zip(reversed(elapsed.split(":")), (1 / 60, 1, 60)))
    cut = slurm("scontrol", "update", f"JobId={job}", f"TimeLimit={math.ceil(minutes) + 3}")
    assert cut.returncode == 0, cut.stderr
    notebook = home / "walltime.ipynb"
    wait_for(lambda: seconds_left(page) <= 300, 90, "the countdown to notice the admin's change through squeue")
    page.get_by_text("ends in less than 5 minutes").first.wait_for(timeout=30_000)
    wait_for(lambda: "saved at five minutes" in notebook_text(notebook), 60, "the 5-minute save")

    page.keyboard.press("Enter")
    page.keyboard.type("second = 'saved at one minute'")
    wait_for(lambda: "saved at one minute" in notebook_text(notebook), 300, "the 1-minute save")
    assert job_state(job) == "RUNNING", "the 1-minute save must land before Slurm ends the job"

    wait_for(lambda: job_state(job) in ("TIMEOUT", "GONE"), 240, "Slurm to end the job at its walltime", poll=3)
    wait_for(lambda: not hub.api("GET", f"/users/{learner.name}", learner.token).json().get("servers"), 60,
             "the hub to notice the end")
    page.goto(f"{hub.url}/hub/user/{learner.name}/lab")
    message = page.locator(".alert-warning").first
    message.wait_for(timeout=60_000)
    text = message.inner_text()
    assert "end of its walltime" in text and "were saved" in text, text
    context.close()


def test_terminal_in_a_slurm_job_finds_the_learner_environment(hub):
    """Does a JupyterLab terminal inside the learner's Slurm job find academy, python, pip and jupyter of the
    shared learner environment (not the node's system Python), and do pip and academy course run there?"""
    learner = make_learner(hub, new_username("tm"))
    spawn(hub, learner, {"profile": "cpu", "hours": 1}, timeout=180)
    base = f"{hub.url}/user/{learner.name}"
    r = requests.post(f"{base}/api/terminals", headers={"Authorization": f"token {learner.token}"}, timeout=60)
    assert r.status_code == 200, r.text
    command = ("for c in academy python pip jupyter; do echo \"$c=$(command -v $c)\"; done; pip --version; "
               "academy course --help | head -3; echo DONE-$((6*7))")
    out = terminal_run(hub, learner, r.json()["name"], command, "DONE-42")
    env_bin = str(PYTHON_ENV / "bin")
    for tool in ("academy", "python", "pip", "jupyter"):
        assert f"{tool}={env_bin}/{tool}" in out, (tool, out)
    assert f"from {PYTHON_ENV}/lib/" in out and "usage: academy course" in out, out
    hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
