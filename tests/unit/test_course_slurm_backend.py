"""The course's ``--backend slurm`` without Slurm: its array script, and its commands replayed through the runner.

Every command goes through ``academy.slurm.commands.run_command``, as the spawner's do; here it is replaced
by a responder that answers by command and records what ran, so a refused or silent ``sbatch``, a controller
that stops answering mid-grading, and an interrupted grader (faults the healthy test cluster cannot produce
on cue) are replayed exactly.  The real array on the real cluster is tests/slurm/test_slurm_autograde.py.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from academy.course.grading.jobs import JobSpec, job_paths
from academy.course.grading.slurm import WORKER, SlurmBackend, run_array
from academy.slurm import batch, commands
from academy.slurm.commands import CommandResult
from academy.slurm.templates import ScriptError

REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
SQUEUE = r"^squeue --noheader --states=all --jobs=4242 '--format=%i\|%T'$"


@dataclass
class Slurm:
    """Answers per command: each pattern has a list of answers, the last one repeated; records what ran."""

    answers: list[tuple[str, list]] = field(default_factory=list)
    ran: list[tuple[str, float]] = field(default_factory=list)

    def on(self, pattern: str, *results) -> "Slurm":
        self.answers.append((pattern, list(results)))
        return self

    async def run_command(self, cmd, input=None, env=None, timeout=30):
        self.ran.append((cmd, timeout))
        for pattern, results in self.answers:
            if re.search(pattern, cmd):
                result = results.pop(0) if len(results) > 1 else results[0]
                if isinstance(result, BaseException):
                    raise result
                rc, out, err, timed_out = result
                return CommandResult(cmd, rc, out, err, timed_out)
        raise AssertionError(f"unexpected command: {cmd}")

    def commands(self) -> list[str]:
        return [cmd for cmd, _ in self.ran]


def ok(out: str = ""):
    return (0, out, "", False)


def fails(err: str, rc: int = 1):
    return (rc, "", err, False)


TIMED_OUT = (-9, "", "", True)


@pytest.fixture
def slurm(monkeypatch):
    s = Slurm()
    monkeypatch.setattr(commands, "run_command", s.run_command)
    return s


def backend(**traits) -> SlurmBackend:
    c = Config()
    c.SlurmBackend.poll_seconds = 0.001  # the replayed answers come at once; nothing to wait for
    for name, value in traits.items():
        setattr(c.SlurmBackend, name, value)
    return SlurmBackend(config=c)


def specs(run_dir: Path, students=("ann", "bob", "cy")) -> list[JobSpec]:
    made = []
    for student in students:
        (run_dir / student).mkdir(parents=True)
        made.append(JobSpec(student=student, assignment="t1", submitted_dir=f"/s/{student}",
                            job_dir=str(run_dir / student), snapshot_db="/d", config_file="/c"))
    return made


def graded(spec: JobSpec) -> None:
    Path(job_paths(spec.job_dir)["result"]).write_text("{}")


def test_the_array_script_comes_from_its_template_with_every_path_quoted(tmp_path):
    """Is the script rendered from spawner_config/autograde.sh.j2, one task per submission, with the run
    folder quoted wherever the shell or sbatch reads it?"""
    run_dir = str(tmp_path / "run dir $(id)")
    script = backend(extra_options=["--partition=grading"]).render(run_dir, tasks=3, parallel=2, deadline_s=61)
    assert SlurmBackend().script_template == str(REPO / "spawner_config" / "autograde.sh.j2")
    assert re.search(r"^#!/bin/bash\n#SBATCH --job-name=academy-autograde\n#SBATCH --array=0-2%2\n"
                     r"#SBATCH --time=2\n#SBATCH --cpus-per-task=1\n#SBATCH --mem=4096M\n", script)
    assert f"#SBATCH --output='{run_dir}/slurm-%A_%a.out'\n#SBATCH --chdir='{run_dir}'\n" in script
    assert "#SBATCH --partition=grading\nset -euo pipefail\n" in script
    assert script.endswith(f" -m {WORKER} '{run_dir}'/task-\"${{SLURM_ARRAY_TASK_ID}}\".json\n")
    assert importlib.util.find_spec(WORKER) is not None  # the module each task runs exists


def test_a_hostile_job_name_or_a_broken_template_is_refused_by_name(tmp_path):
    """Can a job name carry a second #SBATCH line into the script, and does a missing template name itself?"""
    with pytest.raises(TraitError, match="job_name"):
        backend(job_name="grading\n#SBATCH --uid=0")
    with pytest.raises(TraitError, match="unsafe option"):
        backend(extra_options=["--chdir=/ --uid=0"])
    missing = tmp_path / "nope.sh.j2"
    with pytest.raises(ScriptError, match="nope.sh.j2"):
        backend(script_template=str(missing)).render(str(tmp_path), 1, 1, 60)


def test_the_array_is_submitted_then_polled_until_every_task_has_ended(slurm, tmp_path):
    """Does grading submit with `sbatch --parsable` (no --wait), ask squeue until every array task has
    ended, and then yield one outcome per submission, finished where the task left its result?"""
    jobs = specs(tmp_path)
    graded(jobs[0])
    graded(jobs[2])
    slurm.on(r"^sbatch --parsable \S+/autograde\.sbatch$", ok("4242\n"))
    slurm.on(SQUEUE, ok("4242_0|RUNNING\n4242_[1-2%2]|PENDING\n"), ok("4242_0|COMPLETED\n4242_1|RUNNING\n"
                                                                      "4242_2|COMPLETING\n"),
             ok("4242_0|COMPLETED\n4242_1|FAILED\n4242_2|COMPLETED\n"))

    outcomes = list(run_array(jobs, str(tmp_path), jobs=2, deadline_s=60, backend=backend(command_timeout=7)))

    assert [(o.spec.student, o.exitcode) for o in outcomes] == [("ann", 0), ("bob", None), ("cy", 0)]
    assert [re.sub(r"\s.*", "", cmd) for cmd in slurm.commands()] == ["sbatch", "squeue", "squeue", "squeue"]
    assert {timeout for _, timeout in slurm.ran} == {7}
    script = (tmp_path / "autograde.sbatch").read_text()
    assert "#SBATCH --array=0-2%2" in script and (tmp_path / "task-2.json").exists()


def test_a_job_slurm_no_longer_knows_has_ended_but_an_odd_answer_has_not(slurm, tmp_path):
    """Is an answer squeue cannot parse waited through, and is "Invalid job id" (purged) taken as the end?"""
    jobs = specs(tmp_path, ["ann"])
    graded(jobs[0])
    slurm.on(r"^sbatch ", ok("4242;cluster\n"))
    slurm.on(SQUEUE, ok("something else entirely\n"), fails("slurm_load_jobs error: Invalid job id specified"))

    outcomes = list(run_array(jobs, str(tmp_path), jobs=1, deadline_s=60, backend=backend()))

    assert [o.exitcode for o in outcomes] == [0]
    assert len(slurm.commands()) == 3


@pytest.mark.parametrize("answer, message", [
    (fails("sbatch: error: Batch job submission failed: Invalid partition name specified"),
     r"^sbatch failed: sbatch: error: Batch job submission failed: Invalid partition name specified$"),
    (TIMED_OUT, r"^sbatch did not answer within 60 s \(is the Slurm controller up\?\); the job may or may not"),
    (ok("Submitted batch job 12; touch /tmp/x\n"), r"sbatch answered 'Submitted batch job 12; touch /tmp/x', not a job id"),
])
def test_a_failed_or_silent_sbatch_ends_the_grading_with_its_reason(slurm, tmp_path, answer, message):
    """Does a refused, timed-out or unparseable sbatch raise at once with the reason, and ask nothing more?"""
    slurm.on(r"^sbatch --parsable ", answer)
    with pytest.raises(batch.BatchError, match=message):
        list(run_array(specs(tmp_path, ["ann"]), str(tmp_path), jobs=1, deadline_s=60, backend=backend()))
    assert len(slurm.commands()) == 1


@pytest.mark.parametrize("scancel, said", [
    (ok(), "job 4242 was cancelled"),
    (fails("scancel: error: " + UNREACHABLE), "run 'scancel 4242' once Slurm answers"),
])
def test_a_controller_that_stops_answering_ends_the_wait_and_cancels_the_array(slurm, tmp_path, scancel, said):
    """When the controller stops answering mid-grading, does the wait end (no hang) with an error that says
    so, after one scancel of the array, telling the trainer what to do when that fails too?"""
    slurm.on(r"^sbatch ", ok("4242\n"))
    slurm.on(SQUEUE, ok("4242_0|RUNNING\n"), fails(UNREACHABLE), TIMED_OUT)
    slurm.on(r"^scancel 4242$", scancel)

    with pytest.raises(batch.BatchError) as caught:
        list(run_array(specs(tmp_path, ["ann"]), str(tmp_path), jobs=1, deadline_s=60,
                       backend=backend(outage_seconds=0.0005)))

    assert re.match(r"Slurm has not answered about job 4242 for \d+ s \(limit 0.0005 s; last answer: ", str(caught.value))
    assert str(caught.value).endswith(said)
    ran = slurm.commands()
    assert ran[0].startswith("sbatch") and ran[-1] == "scancel 4242" and ran.count("scancel 4242") == 1


def test_an_array_past_its_deadline_is_cancelled(slurm, tmp_path):
    """Does an array still running after wait_hours end the grading with an error and a scancel?"""
    slurm.on(r"^sbatch ", ok("4242\n"))
    slurm.on(SQUEUE, ok("4242_0|RUNNING\n"))
    slurm.on(r"^scancel 4242$", ok())
    with pytest.raises(batch.BatchError, match=r"^job 4242 has not ended after .* s; job 4242 was cancelled$"):
        list(run_array(specs(tmp_path, ["ann"]), str(tmp_path), jobs=1, deadline_s=60,
                       backend=backend(wait_hours=1e-7)))
    assert slurm.commands()[-1] == "scancel 4242"


async def test_an_interrupted_grader_cancels_its_array(slurm):
    """When the grader is stopped while it waits (SIGTERM becomes SystemExit), is the array cancelled
    before the exit goes on, so no task runs on a run folder that is about to be removed?"""
    slurm.on(r"^sbatch ", ok("4242\n"))
    slurm.on(SQUEUE, ok("4242_0|RUNNING\n"), SystemExit(143))
    slurm.on(r"^scancel 4242$", ok())
    with pytest.raises(SystemExit):
        await batch.run_to_end(["sbatch", "--parsable", "/x/a.sbatch"],
                               batch.WaitLimits(deadline_s=60, outage_s=60, poll_s=0.001))
    assert slurm.commands()[-1] == "scancel 4242"


def test_no_bare_subprocess_reaches_slurm_from_the_course():
    """Does the course backend reach Slurm only through the shared runner (no subprocess, no shell)?"""
    import academy.course.grading.slurm as course_slurm
    source = Path(course_slurm.__file__).read_text()
    assert "subprocess" not in source and "batch.run_to_end" in source
