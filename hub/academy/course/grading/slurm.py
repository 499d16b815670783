"""The Slurm backend: grade submissions as one job array, one worker task per submission.

The parent writes each :class:`~academy.course.grading.jobs.JobSpec` to ``task-<i>.json`` in the run folder
(private, on the shared filesystem), renders an array script whose task ``i`` runs
``python -m academy.course.grading.worker task-<i>.json``, submits it with ``sbatch --wait`` and then merges
each task's ``result.json`` exactly as the local backend does.  The worker itself runs as the account
that submitted the job (it holds a gradebook snapshot with the hidden tests, which the student's uid
must not be able to read); each task's kernel drops to the STUDENT'S OWN uid inside the sandbox
(``SandboxKernelManager.sandbox_user`` is set per task), so cluster accounting, quotas and limits
apply to the student.  No user input reaches the script: ids are validated, paths are quoted.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Iterator

import jinja2
from traitlets import Integer, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from academy.course.grading.pool import JobOutcome
from academy.course.grading.jobs import JobSpec, job_paths

SCRIPT = jinja2.Template("""#!/bin/bash
#SBATCH --job-name={{ job_name }}
#SBATCH --array=0-{{ last }}%{{ parallel }}
#SBATCH --time={{ minutes }}
#SBATCH --cpus-per-task=1
#SBATCH --mem={{ memory_mb }}M
#SBATCH --output={{ log_pattern }}
{%- for line in extra %}
#SBATCH {{ line }}
{%- endfor %}
set -euo pipefail
exec {{ python }} -m academy.course.grading.worker {{ run_dir }}/task-"${SLURM_ARRAY_TASK_ID}".json
""")

_SAFE_OPTION = r"^--[a-z][a-z-]*(=[A-Za-z0-9_.,:@%/+-]+)?$"


class SlurmBackend(Configurable):
    """How autograde jobs are submitted to Slurm."""

    job_name = Unicode("academy-autograde", help="Slurm job name of the grading array.").tag(config=True)
    memory_mb = Integer(4096, help="Memory per array task in MiB (the kernel's own limit is lower).").tag(
        config=True)
    extra_options = List(
        Unicode(), help="Extra #SBATCH options such as --partition=grading or --account=course; validated."
    ).tag(config=True)
    python = Unicode(sys.executable, help="Python (with academy installed) on the compute nodes.").tag(config=True)

    @validate("extra_options")
    def _check_options(self, proposal):
        import re
        for option in proposal["value"]:
            if not re.match(_SAFE_OPTION, option):
                raise TraitError(f"SlurmBackend.extra_options: refusing unsafe option {option!r}")
        return proposal["value"]

    @validate("memory_mb")
    def _positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError("SlurmBackend.memory_mb must be positive")
        return proposal["value"]

    def render(self, run_dir: str, tasks: int, parallel: int, deadline_s: float) -> str:
        if tasks < 1 or parallel < 1:
            raise ValueError("a job array needs at least one task and --jobs >= 1")
        return SCRIPT.render(
            job_name=self.job_name, last=tasks - 1, parallel=parallel,
            minutes=max(1, int(-(-deadline_s // 60))), memory_mb=self.memory_mb,
            log_pattern=shlex.quote(os.path.join(run_dir, "slurm-%A_%a.out")), extra=self.extra_options,
            python=shlex.quote(self.python), run_dir=shlex.quote(run_dir),
        )

    def sbatch_argv(self, script_path: str) -> list[str]:
        return ["sbatch", "--parsable", "--wait", script_path]


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
    proc = subprocess.run(backend.sbatch_argv(script), capture_output=True, text=True)
    if proc.returncode != 0 and not proc.stdout.strip():
        raise RuntimeError(f"sbatch failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    for spec in specs:
        done = os.path.exists(job_paths(spec.job_dir)["result"])
        yield JobOutcome(spec=spec, exitcode=0 if done else None, timed_out=False, seconds=0.0)
