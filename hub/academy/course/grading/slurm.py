"""The Slurm backend: grade submissions as one job array, one worker task per submission.

The parent writes each :class:`~academy.course.grading.jobs.JobSpec` to ``task-<i>.json`` in the run folder
(private, on the shared filesystem), renders ``spawner_config/autograde.sh.j2`` into an array script whose
task ``i`` runs ``python -m academy.course.grading.worker task-<i>.json``, submits it and waits for the array's
end through :mod:`academy.slurm.batch` (the shell-free runner, with timeouts: a dead controller ends the
grading with an error and a cancelled array, never a hang), then merges each task's ``result.json``
exactly as the local backend does.  The worker itself runs as the account
that submitted the job (it holds a gradebook snapshot with the hidden tests, which the student's uid
must not be able to read); each task's kernel drops to the STUDENT'S OWN uid inside the sandbox
(``SandboxKernelManager.sandbox_user`` is set per task), so cluster accounting, quotas and limits
apply to the student.  No user input reaches the script: ids are validated, paths are quoted.
"""
from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from typing import Iterator

from traitlets import Float, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from academy.slurm import batch
from academy.slurm.templates import render_template

from academy.course.grading.pool import JobOutcome
from academy.course.grading.jobs import JobSpec, job_paths

_SAFE_OPTION = r"^--[a-z][a-z-]*(=[A-Za-z0-9_.,:@%/+-]+)?$"
_JOB_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
# The worker sits beside this module; the script names it by this module's own package.
WORKER = __name__.rsplit(".", 1)[0] + ".worker"


@dataclass(frozen=True)
class ArrayScript:
    """Everything ``autograde.sh.j2`` may use: checked names and options, computed numbers, paths."""

    job_name: str
    last: int
    parallel: int
    minutes: int
    memory_mb: int
    log_pattern: str
    extra: list[str]
    python: str
    worker: str
    run_dir: str


class SlurmBackend(Configurable):
    """How autograde jobs are submitted to Slurm."""

    job_name = Unicode("academy-autograde", help="Slurm job name of the grading array.").tag(config=True)
    memory_mb = Integer(4096, help="Memory per array task in MiB (the kernel's own limit is lower).").tag(
        config=True)
    extra_options = List(
        Unicode(), help="Extra #SBATCH options such as --partition=grading or --account=course; validated."
    ).tag(config=True)
    python = Unicode(sys.executable, help="Python (with academy installed) on the compute nodes.").tag(config=True)
    script_template = Unicode(help="The array script's Jinja2 template (default spawner_config/autograde.sh.j2).").tag(
        config=True)
    wait_hours = Float(24.0, help="Give up on the array (and scancel it) when it has not ended after this many "
                                  "hours, time in Slurm's queue included.").tag(config=True)
    outage_seconds = Float(600.0, help="Give up (and scancel the array) when the Slurm controller has not "
                                       "answered for this many seconds.").tag(config=True)
    poll_seconds = Float(5.0, help="How often squeue is asked whether the array has ended.").tag(config=True)
    command_timeout = Float(60.0, help="Timeout in seconds of each sbatch, squeue and scancel.").tag(config=True)

    @default("script_template")
    def _default_template(self):
        from academy.probes import PROJECT_ROOT
        return str(PROJECT_ROOT / "spawner_config" / "autograde.sh.j2")

    @validate("job_name")
    def _check_job_name(self, proposal):
        if not re.match(_JOB_NAME, proposal["value"]):
            raise TraitError(f"SlurmBackend.job_name: {proposal['value'][:80]!r} has characters Slurm or the "
                             "shell would misread")
        return proposal["value"]

    @validate("extra_options")
    def _check_options(self, proposal):
        for option in proposal["value"]:
            if not re.match(_SAFE_OPTION, option):
                raise TraitError(f"SlurmBackend.extra_options: refusing unsafe option {option!r}")
        return proposal["value"]

    @validate("memory_mb", "wait_hours", "outage_seconds", "poll_seconds", "command_timeout")
    def _positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError(f"SlurmBackend.{proposal['trait'].name} must be positive")
        return proposal["value"]

    def render(self, run_dir: str, tasks: int, parallel: int, deadline_s: float) -> str:
        if tasks < 1 or parallel < 1:
            raise ValueError("a job array needs at least one task and --jobs >= 1")
        return render_template(self.script_template, ctx=ArrayScript(
            job_name=self.job_name, last=tasks - 1, parallel=parallel,
            minutes=max(1, int(-(-deadline_s // 60))), memory_mb=self.memory_mb,
            log_pattern=os.path.join(run_dir, "slurm-%A_%a.out"), extra=list(self.extra_options),
            python=self.python, worker=WORKER, run_dir=run_dir,
        ))

    def sbatch_argv(self, script_path: str) -> list[str]:
        return ["sbatch", "--parsable", script_path]

    def wait_limits(self) -> batch.WaitLimits:
        return batch.WaitLimits(deadline_s=self.wait_hours * 3600, outage_s=self.outage_seconds,
                                poll_s=self.poll_seconds, command_timeout_s=self.command_timeout)


def write_tasks(specs: list[JobSpec], run_dir: str) -> None:
    for index, spec in enumerate(specs):
        spec.dump(os.path.join(run_dir, f"task-{index}.json"))


def run_array(specs: list[JobSpec], run_dir: str, jobs: int, deadline_s: float,
              backend: SlurmBackend | None = None) -> Iterator[JobOutcome]:
    """Submit all specs as one array, wait for it, then yield one outcome per task."""
    backend = backend or SlurmBackend()
    write_tasks(specs, run_dir)
    script = os.path.join(run_dir, "autograde.sbatch")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(backend.render(run_dir, len(specs), jobs, deadline_s))
    asyncio.run(batch.run_to_end(backend.sbatch_argv(script), backend.wait_limits()))
    for spec in specs:
        done = os.path.exists(job_paths(spec.job_dir)["result"])
        yield JobOutcome(spec=spec, exitcode=0 if done else None, timed_out=False, seconds=0.0)
