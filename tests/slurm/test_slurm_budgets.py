"""GPU-hour budgets on the real cluster: slurmdbd + MariaDB accounting, a real hub, real jobs.

Four teams (hub groups) map to Slurm accounts through ``slurm.accounting.budgets``: ``full`` has
1.5 GPU-hours, ``roomy`` 100, ``gone`` names an account Slurm never gets, ``late`` one that the
slurmdbd test creates. ``academy budgets sync`` creates the first two, as an administrator would.
Each test uses its own members, so the tests hold in any order.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import time

import pytest
import yaml

from support.slurm import (
    job_of, make_learner, newest_job_id, new_username, progress_events, slurm, slurm_site, spawn, start_hub,
    wait_no_server,
)
from support.workshop import admin_session, service_url
from testbed.hub import REPO
from testbed import slurm_accounting
from testbed.slurm_cluster import Cluster
from test_slurm_walltime import browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def budget_hub(slurm_cluster, tmp_path_factory):
    tag = new_username("b")
    accounts = {"full": f"{tag}full", "roomy": f"{tag}roomy", "gone": f"{tag}gone", "late": f"{tag}late"}
    members = {team: [new_username(team[:2]) for _ in range(3)] for team in accounts}
    accounting = {
        "enabled": True, "default_account": slurm_accounting.DEFAULT_ACCOUNT, "refresh_seconds": 10,
        "budgets": {"full": {"account": accounts["full"], "gpu_hours": 1.5},
                    "roomy": {"account": accounts["roomy"], "gpu_hours": 100},
                    "gone": {"account": accounts["gone"], "gpu_hours": 10},
                    "late": {"account": accounts["late"], "gpu_hours": 10}},
    }
    # The administrator's step: sync creates the accounts of the two real budgets (not "gone").
    synced = {**accounting, "budgets": {k: v for k, v in accounting["budgets"].items() if k in ("full", "roomy")}}
    site_file = tmp_path_factory.mktemp("budgets") / "academy.yaml"
    site_file.write_text(yaml.safe_dump({"backend": "slurm", "slurm": {"accounting": synced}}))
    sync = subprocess.run([str(REPO / ".venv" / "bin" / "academy"), "--config", str(site_file), "budgets", "sync"],
                          capture_output=True, text=True, timeout=120, env=Cluster().env())
    assert sync.returncode == 0, sync.stderr
    hub = start_hub(slurm_site(groups=members, accounting=accounting))
    hub.accounts, hub.members = accounts, members
    yield hub
    hub.stop()
    shutil.rmtree(hub.workdir, ignore_errors=True)


def form_of(hub, learner) -> str:
    return learner.session.get(f"{hub.url}/hub/spawn", timeout=30).text


def budget_line(form: str) -> str:
    found = re.search(r'class="alert alert-info academy-budget"[^>]*>([^<]*)<', form)
    assert found, form[:2000]
    return html.unescape(found.group(1))


def spawn_failure(hub, learner, options: dict) -> str:
    """The message of a spawn that fails after the request was accepted: in the API answer
    when it fails within the request, else in the progress stream."""
    r = hub.api("POST", f"/users/{learner.name}/server", learner.token, json=options)
    if r.status_code not in (201, 202):
        return r.json()["message"]
    events = progress_events(hub, learner, until=lambda e: e.get("failed"), timeout=60)
    return " ".join(e.get("message", "") for e in events if e.get("failed"))


def used_hours(line: str) -> float:
    return float(re.search(r": ([0-9.]+) of ", line).group(1))


def test_gpu_usage_shows_on_the_form_after_a_gpu_job(budget_hub):
    """After a team member's 4-GPU batch job ran 30 s, does the form show GPU-hours used by the team's account?"""
    member = make_learner(budget_hub, budget_hub.members["full"][0])
    account = budget_hub.accounts["full"]
    line = budget_line(form_of(budget_hub, member))
    assert f"GPU budget of {account}: " in line and " of 1.50 GPU-hours used" in line, line
    used_before = used_hours(line)
    slurm_accounting.add_user(Cluster(), member.name, account)
    job = subprocess.run(["runuser", "-u", member.name, "--", "sbatch", "--parsable", f"--account={account}",
                          "--partition=gpu-mig", "--gres=gpu:1g.18gb:4", "--time=2", "--mem=64M", "--output=/dev/null",
                          "--wrap=sleep 30"], capture_output=True, text=True, env=Cluster().env(), cwd="/")
    assert job.returncode == 0, job.stderr
    # Slurm adds usage to the association every PriorityCalcPeriod (1 min on the test cluster); the hub refreshes every 10 s.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = budget_line(form_of(budget_hub, member))
        # Slurm adds a running job's usage in steps, so wait for the whole job's share, not the first step.
        if used_hours(line) >= used_before + 0.03:
            break
        time.sleep(5)
    assert used_hours(line) >= used_before + 0.03, line  # 4 GPUs × 30 s = 2 GPU-minutes at least
    sacct = slurm("sacct", "-n", "-X", "-P", f"--jobs={job.stdout.strip()}", "--format=Account,State,AllocTRES")
    assert f"{account}|COMPLETED|" in sacct.stdout and "gres/gpu=4" in sacct.stdout


@pytest.mark.browser
def test_a_team_at_its_limit_cannot_start_and_another_team_can(budget_hub, browser):  # noqa: F811
    """With one 1-hour GPU server running, is the team's next 1-hour GPU spawn refused with what is left, another team's
    allowed, and do both see their own team's figures (only theirs) in JupyterLab's status bar?"""
    first, second = (make_learner(budget_hub, n) for n in budget_hub.members["full"][1:3])
    roomy = make_learner(budget_hub, budget_hub.members["roomy"][0])
    before = newest_job_id()
    spawn(budget_hub, first, {"profile": "h100-1", "hours": 1})
    job = job_of(first.name, after=before)
    script = slurm("scontrol", "write", "batch_script", job["id"], "-").stdout
    assert f"#SBATCH --account={budget_hub.accounts['full']}" in script
    try:
        r = budget_hub.api("POST", f"/users/{second.name}/server", second.token, json={"profile": "h100-1", "hours": 1})
        assert r.status_code == 400, r.text
        message = r.json()["message"]
        assert "GPU-hours left" in message and budget_hub.accounts["full"] in message, message
        left = float(re.search(r"has only ([0-9.]+) GPU-hours left", message).group(1))
        assert left < 1.0
        assert job_of(second.name, after=before) is None
        # The other team starts, and the hub registered its member in the team's account first.
        spawn(budget_hub, roomy, {"profile": "h100-1", "hours": 1})
        assoc = slurm("sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={roomy.name}", "format=account")
        assert budget_hub.accounts["roomy"] in assoc.stdout.split()
        # Once both servers hold a GPU, the figure counts the reserved hour too.
        time.sleep(11)
        line = budget_line(form_of(budget_hub, second))
        assert "reserved by running servers and jobs" in line, line
        check_status_bar_figures(budget_hub, first, roomy)
        check_status_bar_item(budget_hub, first, browser)
        budget_hub.api("DELETE", f"/users/{roomy.name}/server", roomy.token)
        wait_no_server(budget_hub, roomy, 60)
    finally:
        budget_hub.api("DELETE", f"/users/{first.name}/server", first.token)
        wait_no_server(budget_hub, first, 60)


def lab_budget(hub, learner, query: str = "") -> dict:
    """What the learner's running server serves to JupyterLab's status bar."""
    r = learner.session.get(f"{hub.url}/user/{learner.name}/academy/api/budget{query}",
                            headers={"Authorization": f"token {learner.token}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def check_status_bar_figures(hub, member, other) -> None:
    """JupyterLab's figures (the server asks the hub with its own token) are the member's team's, whatever they ask for."""
    mine, theirs = hub.accounts["full"], hub.accounts["roomy"]
    got = lab_budget(hub, member)
    assert got["status"] == "ok" and got["account"] == mine and got["limit_gpu_hours"] == 1.5, got
    # The member's own 1-hour GPU server: Slurm counts the time left before its walltime, so a little under 1 h.
    assert got["reserved_gpu_hours"] >= 0.9 and got["left_gpu_hours"] < 0.6, got
    assert lab_budget(hub, other)["account"] == theirs and lab_budget(hub, other)["limit_gpu_hours"] == 100
    # Attacks: naming the other team's account or user, on the server's route and on the hub's.
    for query in (f"?account={theirs}", f"?user={other.name}"):
        assert lab_budget(hub, member, query)["account"] == mine
        direct = hub.api("GET", f"/academy/budget{query}", member.token)
        assert direct.status_code == 200 and direct.json()["account"] == mine, direct.text
    assert hub.api("GET", f"/academy/budget/{other.name}", member.token).status_code == 404
    assert hub.api("GET", "/academy/budget", "not-a-token").status_code == 403


def check_status_bar_item(hub, member, browser) -> None:  # noqa: F811
    """The lab's status bar item in Chromium: hours left of the team's 1.5, used and reserved in its tooltip."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": c.path or "/"}
                         for c in member.session.cookies])
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{hub.url}/user/{member.name}/lab")
        item = page.locator(".academy-budget")
        item.wait_for(state="visible")
        assert re.fullmatch(r"GPU [0-9.]+ h left of 1\.5", item.inner_text().strip()), item.inner_text()
        title = item.get_attribute("title") or ""
        assert hub.accounts["full"] in title and "reserved by running servers and jobs" in title, title
    finally:
        context.close()


def test_an_account_missing_from_slurm(budget_hub):
    """Does a team mapped to an account Slurm lacks see 'budgets unavailable', a refused GPU spawn, and a clear failure for CPU?"""
    member = make_learner(budget_hub, budget_hub.members["gone"][0])
    account = budget_hub.accounts["gone"]
    assert f"its Slurm account '{account}' does not exist" in budget_line(form_of(budget_hub, member))
    before = newest_job_id()
    r = budget_hub.api("POST", f"/users/{member.name}/server", member.token, json={"profile": "h100-1", "hours": 1})
    assert r.status_code == 400 and "does not exist" in r.json()["message"], r.text
    assert "does not exist" in spawn_failure(budget_hub, member, {"profile": "cpu", "hours": 1})
    assert job_of(member.name, after=before) is None


def test_slurmdbd_down(budget_hub):
    """With slurmdbd stopped, do figures still come from the controller, a registered member still start, and a new one get a clear message?"""
    cluster = Cluster()
    known = make_learner(budget_hub, budget_hub.members["roomy"][1])
    slurm_accounting.add_user(cluster, known.name, budget_hub.accounts["roomy"])
    newcomer = make_learner(budget_hub, budget_hub.members["late"][0])
    # The newcomer's account exists, but not their association, and slurmdbd cannot add it.
    slurm_accounting.sacctmgr(cluster, "add", "account", budget_hub.accounts["late"], "cluster=academy")
    slurm_accounting.stop_dbd(cluster)
    try:
        time.sleep(11)  # past the hub's refresh
        assert "GPU budget of" in budget_line(form_of(budget_hub, known))
        spawn(budget_hub, known, {"profile": "cpu", "hours": 1})
        budget_hub.api("DELETE", f"/users/{known.name}/server", known.token)
        wait_no_server(budget_hub, known, 60)
        message = spawn_failure(budget_hub, newcomer, {"profile": "cpu", "hours": 1})
        assert "(slurmdbd) did not answer" in message and "Try again in a few minutes" in message, message
    finally:
        slurm_accounting.start_dbd(cluster)


def test_admins_see_usage_per_account_on_the_trainer_service_and_learners_do_not(budget_hub):
    """Does the service's budgets page list each team's account, group and budget for an admin, flag a missing one, and refuse a learner?"""
    page = admin_session(budget_hub).get(service_url(budget_hub, "budgets"), timeout=60)
    assert page.status_code == 200, page.text[:500]
    full = re.search(rf'<tr data-account="{budget_hub.accounts["full"]}">(.*?)</tr>', page.text, re.S)
    assert full and "<td>full</td>" in full.group(1) and "<td>1.50</td>" in full.group(1), page.text[:3000]
    gone = re.search(rf'<tr data-account="{budget_hub.accounts["gone"]}">(.*?)</tr>', page.text, re.S)
    assert gone and "missing in Slurm" in gone.group(1)
    learner = make_learner(budget_hub, budget_hub.members["roomy"][2])
    assert learner.session.get(service_url(budget_hub, "budgets"), timeout=60).status_code == 403
