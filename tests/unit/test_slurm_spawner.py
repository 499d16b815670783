"""The Slurm spawner's life cycle without Slurm, in batchspawner's style: replayed (command regex, output) scripts.

Every Slurm command goes through ``academy.slurm.commands.run_command``; here it is
replaced by a script of expected commands and canned answers, so controller outages and odd
answers (faults a healthy test cluster cannot produce on cue) are replayed exactly.
"""
from __future__ import annotations

import asyncio
import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from academy.slurm import commands as slurm_commands
from academy.spawners.slurm.spawner import AcademySlurmSpawner, JobFailed
from academy.slurm.commands import CommandResult
from academy.spawners.slurm.poller import SlurmPoller
from academy.slurm.states import Phase

REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
SQUEUE_ALL = r"^squeue --noheader --all --states=all --jobs={ids} '--format="


@dataclass
class Replay:
    """Expected commands, in order, each with its canned answer; records what actually ran."""

    steps: list[tuple[str, int, str, str]] = field(default_factory=list)
    ran: list[tuple[str, str | None]] = field(default_factory=list)

    def expect(self, pattern: str, stdout: str = "", rc: int = 0, stderr: str = "") -> "Replay":
        self.steps.append((pattern, rc, stdout, stderr))
        return self

    async def run_command(self, cmd, input=None, env=None, timeout=30):
        self.ran.append((cmd, input))
        assert self.steps, f"unexpected command: {cmd}"
        pattern, rc, out, err = self.steps.pop(0)
        assert re.search(pattern, cmd), f"expected /{pattern}/, got: {cmd}"
        return CommandResult(cmd, rc, out, err)

    def done(self) -> None:
        assert not self.steps, f"commands never ran: {[s[0] for s in self.steps]}"


def squeue(*ids: str) -> str:
    return SQUEUE_ALL.format(ids=",".join(ids))


def line(job: str, state: str, reason: str = "None", node: str = "n/a", start: str = "N/A") -> str:
    return f"{job}|{state}|{reason}|{node}|{start}|N/A\n"


@pytest.fixture
def replay(monkeypatch):
    r = Replay()
    monkeypatch.setattr(slurm_commands, "run_command", r.run_command)
    yield r


@pytest.fixture
def make_spawner(tmp_path):
    def make(name: str = "ada", **config) -> AcademySlurmSpawner:
        c = Config()
        s = c.AcademySlurmSpawner
        s.profiles_file = str(REPO / "spawner_config" / "profiles.yaml")
        s.batch_script_file = str(REPO / "spawner_config" / "slurm.sh.j2")
        s.python_env = "/opt/academy/env"
        s.homes_dir = str(tmp_path)
        s.node_hosts = {"node01": "127.0.0.1"}
        s.http_timeout = 5
        for key, value in config.items():
            setattr(s, key, value)
        user = SimpleNamespace(name=name, groups=[], admin=False, url=f"/user/{name}/", escaped_name=name)
        spawner = AcademySlurmSpawner(user=user, hub=Hub(), config=c, api_token="secret-token")
        # A poller that never polls by itself: each test decides when Slurm is asked.
        spawner._poller = SlurmPoller(query_timeout=5, use_sacct=False, background=False)
        return spawner

    return make


@pytest.fixture
async def listener():
    """A real TCP port standing in for JupyterLab in the job."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def until(predicate, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_pending_outage_running_then_scancel(replay, make_spawner, listener):
    """Does a spawn walk PENDING -> controller unreachable -> RUNNING -> ready, and stop with one scancel?"""
    spawner = make_spawner()
    spawner._apply_profile_options({"profile": "cpu", "hours": "3"})
    replay.expect(r"^runuser -u ada -- mkdir -p -m 700 \S+/ada/\.academy/logs$")
    replay.expect(r"^runuser -u ada -- sbatch --parsable$", "4242\n")
    start = asyncio.ensure_future(spawner.start())
    progress = spawner.progress()
    await until(lambda: spawner.job_id == "4242")
    script = replay.ran[1][1]
    assert re.search(r"^#SBATCH --partition=cpu$", script, re.M) and re.search(r"^#SBATCH --time=03:00:00$", script, re.M)

    replay.expect(squeue("4242"), line("4242", "PENDING", "Priority", start="2031-01-01T10:00:00"))
    await spawner.poller.refresh()
    event = await asyncio.wait_for(progress.__anext__(), 2)
    assert "Slurm job 4242 is PENDING in partition cpu (Priority:" in event["message"]
    assert "expects it to start at 10:00" in event["message"]

    replay.expect(squeue("4242"), rc=1, stderr=UNREACHABLE)
    await spawner.poller.refresh()
    assert spawner.poller.view("4242").phase is Phase.PENDING, "an outage must not change what we know"
    event = await asyncio.wait_for(progress.__anext__(), 2)
    assert "Slurm did not answer" in event["message"] and "last known: PENDING" in event["message"]

    replay.expect(squeue("4242"), line("4242", "RUNNING", node="node01"))
    await spawner.poller.refresh()
    assert not start.done()
    replay.expect(squeue("4242"), line("4242", "RUNNING", node="node01"))
    spawner.report_port(listener)
    assert await asyncio.wait_for(start, 5) == ("127.0.0.1", listener)
    await progress.aclose()

    assert await spawner.poll() is None  # from the cache: no command
    replay.expect(squeue("4242"), rc=1, stderr=UNREACHABLE)
    await spawner.poller.refresh()
    assert await spawner.poll() is None, "a running server was dropped during an outage"

    replay.expect(r"^runuser -u ada -- scancel 4242$")
    replay.expect(squeue("4242"), line("4242", "CANCELLED", node="node01"))
    await spawner.stop()
    assert await spawner.poll() == 1 and spawner.job_id == ""
    replay.done()


async def test_job_that_dies_before_its_port_fails_with_its_log(replay, make_spawner):
    """Does a job that ends before reporting a port fail start() with Slurm's state and the log's last lines?"""
    spawner = make_spawner()
    spawner._apply_profile_options({"profile": "cpu"})
    replay.expect(r"mkdir").expect(r"sbatch --parsable$", "77\n")
    start = asyncio.ensure_future(spawner.start())
    await until(lambda: spawner.job_id == "77")
    replay.expect(squeue("77"), line("77", "FAILED", "NonZeroExitCode", "node01"))
    replay.expect(r"^runuser -u ada -- tail -n 20 -- \S+/ada/\.academy/logs/slurm-77\.log$",
                  "academy: job 77 on node01\nmodule: CUDA/12.4 not found\n")
    await spawner.poller.refresh()
    with pytest.raises(JobFailed) as failed:
        await asyncio.wait_for(start, 5)
    message = failed.value.jupyterhub_message
    assert "Slurm job 77 ended before JupyterLab started (FAILED: NonZeroExitCode)" in message
    assert message.endswith("module: CUDA/12.4 not found")
    assert "<pre>" in failed.value.jupyterhub_html_message and spawner.job_id == ""
    replay.done()


async def test_refused_submission_says_what_slurm_said(replay, make_spawner):
    """Does an sbatch refusal reach the learner as Slurm's own words?"""
    spawner = make_spawner()
    spawner._apply_profile_options({"profile": "h100-1"})
    replay.expect(r"mkdir").expect(r"sbatch", rc=1,
                                   stderr="sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified")
    with pytest.raises(JobFailed, match="Slurm refused the job: .*Invalid account"):
        await spawner.start()
    replay.done()


async def test_job_cancelled_behind_the_hubs_back_is_reported_at_once(replay, make_spawner):
    """When a job vanishes from squeue, is its end confirmed before the hub is told, with a message for the learner?"""
    spawner = make_spawner()
    spawner.load_state({"job_id": "55", "ready": True})
    notified = []
    spawner.poll_and_notify = lambda: notified.append(True) or asyncio.sleep(0)
    replay.expect(squeue("55"), line("55", "RUNNING", node="node01"))
    assert await spawner.poll() is None
    replay.expect(squeue("55"), "")  # left out of the batched answer...
    replay.expect(r"^squeue --noheader --jobs=55 ", rc=1, stderr="slurm_load_jobs error: Invalid job id specified")
    await spawner.poller.refresh()
    assert notified == [True]
    assert "Slurm job 55) ended while the hub was not watching" in spawner.last_stop_message
    assert await spawner.poll() == 1
    assert spawner.get_state()["last_stop_message"] == spawner.last_stop_message
    replay.done()


async def test_unrecognised_answer_keeps_the_server(replay, make_spawner):
    """Is an answer we cannot parse treated as 'unknown', never as 'job gone'?"""
    spawner = make_spawner()
    spawner.load_state({"job_id": "60", "ready": True})
    replay.expect(squeue("60"), "squeue: warning: something new and strange\n")
    assert await spawner.poll() is None
    assert "not recognised" in spawner.poller.view("60").note
    replay.done()


async def test_hub_restart_reattaches_running_and_clears_ended(replay, make_spawner):
    """At hub start-up, is a running job kept, an ended one cleared with a reason, and one caught mid-spawn cancelled?"""
    running, ended, starting = make_spawner("ada"), make_spawner("bob"), make_spawner("cy")
    poller = running.poller
    ended._poller = starting._poller = poller
    running.load_state({"job_id": "90", "ready": True})
    ended.load_state({"job_id": "91", "ready": True})
    starting.load_state({"job_id": "92"})
    for spawner in (running, ended, starting):
        spawner._check_pending = True
    replay.expect(squeue("90", "91", "92"), line("90", "RUNNING", node="node01") + line("91", "TIMEOUT", node="node01")
                  + line("92", "PENDING", "Resources"))
    replay.expect(r"^runuser -u cy -- scancel 92$")
    results = await asyncio.gather(running.poll(), ended.poll(), starting.poll())
    assert results == [None, 1, 1]
    assert "reached the end of its walltime" in ended.last_stop_message
    assert "hub restarted while your server was starting" in starting.last_stop_message
    replay.done()


async def test_cancel_during_an_outage_is_retried_until_slurm_takes_it(replay, make_spawner):
    """If scancel cannot reach the controller, is it retried at each poll until accepted (no orphaned job)?"""
    spawner = make_spawner()
    spawner.load_state({"job_id": "70", "ready": True})
    replay.expect(squeue("70"), line("70", "RUNNING", node="node01"))
    assert await spawner.poll() is None
    replay.expect(r"^runuser -u ada -- scancel 70$", rc=1, stderr="scancel: error: " + UNREACHABLE)
    await spawner.stop()
    assert spawner.poller.pending_cancels == ["70"]
    spawner.clear_state()  # JupyterHub forgets the server; the poller still owes Slurm a cancel
    replay.expect(r"^runuser -u ada -- scancel 70$", rc=1, stderr="scancel: error: " + UNREACHABLE)
    await spawner.poller.refresh()
    replay.expect(r"^runuser -u ada -- scancel 70$")
    await spawner.poller.refresh()
    assert spawner.poller.pending_cancels == []
    replay.done()


async def test_cancel_owed_during_an_outage_survives_a_hub_restart(replay, make_spawner, tmp_path):
    """Is a cancel an outage held back kept on disk (0600), re-sent by the next hub process, then dropped?"""
    journal = tmp_path / "slurm-pending-cancels.json"
    spawner = make_spawner()
    spawner._poller = SlurmPoller(query_timeout=5, use_sacct=False, background=False, journal=str(journal))
    spawner.load_state({"job_id": "70", "ready": True})
    replay.expect(squeue("70"), line("70", "RUNNING", node="node01"))
    assert await spawner.poll() is None
    replay.expect(r"^runuser -u ada -- scancel 70$", rc=1, stderr="scancel: error: " + UNREACHABLE)
    await spawner.stop()
    assert json.loads(journal.read_text()) == {"70": "runuser -u ada -- scancel 70"}
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    # The hub restarts during the outage: a new process, a new poller, the same state directory.
    restarted = SlurmPoller(query_timeout=5, use_sacct=False, background=False, journal=str(journal))
    assert restarted.pending_cancels == ["70"]
    replay.expect(r"^runuser -u ada -- scancel 70$")
    await restarted.refresh()
    assert restarted.pending_cancels == [] and json.loads(journal.read_text()) == {}
    replay.done()


def test_a_tampered_or_damaged_cancel_journal_runs_nothing(tmp_path):
    """Does a journal entry that is not exactly 'scancel <its job id>', or a damaged file, get ignored?"""
    journal = tmp_path / "journal.json"
    journal.write_text(json.dumps({"71": "runuser -u ada -- scancel 71", "72": "rm -rf / 72",
                                   "73; id": "scancel 73; id", "74": "runuser -u bob -- scancel 75"}))
    assert SlurmPoller(background=False, journal=str(journal)).pending_cancels == ["71"]
    journal.write_text("{not json")
    assert SlurmPoller(background=False, journal=str(journal)).pending_cancels == []


async def test_one_query_for_many_servers_and_many_askers(replay):
    """Do 50 tracked jobs and 20 simultaneous askers cost a single squeue?"""
    poller = SlurmPoller(use_sacct=False, background=False)
    ids = [str(1000 + i) for i in range(50)]
    for jid in ids:
        poller.track(jid)
    replay.expect(squeue(*ids), "".join(line(jid, "RUNNING", node="node01") for jid in ids))
    await asyncio.gather(*(poller.refresh() for _ in range(20)))
    assert len(replay.ran) == 1 and poller.queries == 1
    assert all(poller.view(jid).phase is Phase.RUNNING for jid in ids)
    replay.done()


async def test_get_req_subvars_never_carry_user_options(make_spawner):
    """Are batchspawner's template variables only the vetted request, whatever user_options hold?"""
    spawner = make_spawner()
    spawner._apply_profile_options({"profile": "h100-1", "hours": 2})
    spawner.user_options = {"profile": "h100-1", "hours": 2, "options": "--uid=0", "prologue": "id"}
    subvars = spawner.get_req_subvars()
    assert subvars["partition"] == "gpu" and subvars["gres"] == "gpu:h100:1" and subvars["runtime"] == "02:00:00"
    assert subvars["options"] == "" and subvars["prologue"] == ""


@pytest.mark.timeout(20)  # a spinning start() never yields, so only a timeout can catch it
async def test_port_reported_during_an_outage_waits_for_the_controller(replay, make_spawner, listener):
    """If the port arrives while Slurm is unreachable, does start() wait (without spinning) until the node is known?"""
    spawner = make_spawner()
    spawner._apply_profile_options({"profile": "cpu"})
    replay.expect(r"mkdir").expect(r"sbatch --parsable$", "31\n")
    start = asyncio.ensure_future(spawner.start())
    await until(lambda: spawner.job_id == "31")
    replay.expect(squeue("31"), rc=1, stderr=UNREACHABLE)
    spawner.report_port(listener)
    await until(lambda: not replay.steps)
    await asyncio.sleep(0.2)
    assert not start.done() and len(replay.ran) == 3, "start() must not query in a loop while Slurm is down"
    replay.expect(squeue("31"), line("31", "RUNNING", node="node01"))
    await spawner.poller.refresh()
    assert await asyncio.wait_for(start, 5) == ("127.0.0.1", listener)
    replay.done()


def test_form_preselects_the_profile_of_the_users_group(make_spawner, monkeypatch):
    """Does a workshop member's spawn form check the workshop profile (and its default hours), not the first one?"""
    spawner = make_spawner("grace")
    spawner.user.groups = [SimpleNamespace(name="workshop")]

    async def no_availability(profiles):
        return {}  # sinfo is not what this test is about

    monkeypatch.setattr(spawner, "profile_availability", no_availability)
    form = asyncio.run(spawner._render_form())
    checked = re.findall(r'value="([\w-]+)"[^>]*\n?\s*data-max-hours="\d+" data-default-hours="(\d+)"\s*checked', form)
    workshop = next(p for p in spawner.load_profiles() if p.slug == "workshop")
    assert checked == [("workshop", str(workshop.default_hours))]
    assert re.search(rf'<option value="{workshop.default_hours}" selected>', form)


async def test_a_cancel_that_comes_with_a_poll_result_still_ends_the_wait():
    """Does a progress stream end when the hub cancels it just as a Slurm query finishes?

    JupyterHub cancels a spawn's progress generator the moment the server is ready; on Python
    3.11 ``asyncio.wait_for`` swallowed a cancel that arrived together with the poller's update,
    and the generator then waited for the next change of message for ever (the warm start of a
    Slurm workshop hung on one participant's stream).  Every ordering of "update" and "cancel"
    within a few loop steps is tried.
    """
    poller = SlurmPoller(background=False)
    for steps in range(6):
        waiter = asyncio.ensure_future(poller.wait_update(30))
        await asyncio.sleep(0)  # the waiter is now waiting on the update event
        poller._updated.set()  # a query finished ...
        for _ in range(steps):
            await asyncio.sleep(0)
        if waiter.done():
            continue  # the update won cleanly; nothing to cancel
        waiter.cancel()  # ... and the hub cancels the stream in the same moment
        with pytest.raises(asyncio.CancelledError):
            await waiter


def test_a_one_click_links_preselection_reaches_the_slurm_form(make_spawner, monkeypatch):
    """Does the Slurm spawner's form take a link's vetted profile and hours (academy.spawners.link_pages), with its note?"""
    spawner = make_spawner("lin")

    async def no_availability(profiles):
        return {}  # sinfo is not what this test is about

    monkeypatch.setattr(spawner, "profile_availability", no_availability)
    spawner.last_stop_message = "Your last server reached the end of its walltime."
    request = spawner._parse_request({"profile": "h100-1", "hours": "7"})
    form = asyncio.run(spawner._render_form(preselect=request, extra_note="Opened from a link."))
    checked = re.findall(r'value="([\w-]+)"[^>]*\n?\s*data-max-hours="\d+" data-default-hours="\d+"\s*checked', form)
    assert checked == ["h100-1"]
    assert re.search(r'<option value="7" selected>', form)
    assert "Opened from a link." in form and "end of its walltime" in form
