"""Does each project template's job.sh run as a real Slurm job, submitted by a real Unix user from the project they created?"""
from __future__ import annotations

import json
import pwd
import time
from pathlib import Path

import pytest

from academy.project.templates import list_templates
from support.slurm import PYTHON_ENV, new_username, slurm, unix_user
from testbed.slurm_cluster import Cluster

# The figure each template's train.py writes into its result, and what a smoke run must reach.
RESULT_KEYS = {"transformer-finetune": "accuracy", "image-classifier": "accuracy", "tabular-model": "test_auc",
               "batch-job": "steps"}
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "PREEMPTED"}


def _as(user: str, home: Path, *argv: str, cwd: Path) -> tuple[int, str, str]:
    """Run a command as the user, with only the environment a login would give (plus the test cluster's SLURM_CONF)."""
    import subprocess

    env = ["env", "-i", f"HOME={home}", f"USER={user}", "PATH=/usr/local/bin:/usr/bin:/bin",
           f"SLURM_CONF={Cluster().conf}"]
    proc = subprocess.run(["runuser", "-u", user, "--", *env, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _state(job_id: str) -> str:
    out = slurm("scontrol", "show", "job", job_id, "--oneliner").stdout
    field = next((w for w in out.split() if w.startswith("JobState=")), "JobState=GONE")
    return field.split("=", 1)[1]


@pytest.mark.timeout(600)
def test_every_template_batch_script_completes_as_a_real_slurm_job(slurm_cluster):
    """Does `sbatch job.sh --smoke` in a project the user created from each template end COMPLETED, with its result written by the job, as the user?"""
    user = unix_user(new_username("prj"))
    home = Path(pwd.getpwnam(user).pw_dir)
    python = str(PYTHON_ENV / "bin" / "python")
    jobs: dict[str, str] = {}
    for template in list_templates():
        rc, out, err = _as(user, home, python, "-m", "academy", "project", "new", template.slug, f"p-{template.slug}", cwd=home)
        assert rc == 0, err
        project = home / f"p-{template.slug}"
        assert project.stat().st_uid == pwd.getpwnam(user).pw_uid
        # Site specifics come from the submitter, as the template's README tells a user: the test
        # cluster's partition and a small slice of its two cores; PYTHON picks the Academy's environment.
        rc, out, err = _as(user, home, f"PYTHON={python}", "sbatch", "--parsable", "--partition=cpu", "--cpus-per-task=1",
                           "--mem=1500M", "--time=10", "job.sh", "--smoke", cwd=project)
        assert rc == 0, f"{template.slug}: sbatch failed: {err}"
        jobs[template.slug] = out.strip().split(";")[0]
    assert set(RESULT_KEYS) <= set(jobs)

    deadline, states = time.monotonic() + 480, {}
    while time.monotonic() < deadline:
        states = {slug: _state(job) for slug, job in jobs.items()}
        if all(s in FINAL for s in states.values()):
            break
        time.sleep(2)
    for slug, job in jobs.items():
        project = home / f"p-{slug}"
        log = project / f"slurm-{job}.out"
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        assert states[slug] == "COMPLETED", f"{slug}: job {job} ended {states[slug]}\n{text[-3000:]}"
        assert f"job {job} on " in text  # the log is the job's own, written in the submit folder
        result = project / "results" / f"job-{job}.json"
        assert result.stat().st_uid == pwd.getpwnam(user).pw_uid
        figures = json.loads(result.read_text())
        key = RESULT_KEYS.get(slug)
        if key is not None:
            assert key in figures, (slug, figures)
    batch = json.loads((home / "p-batch-job" / "results" / f"job-{jobs['batch-job']}.json").read_text())
    assert batch["steps"] == 200 and batch["loss_last"] < batch["loss_first"]
    assert json.loads((home / "p-tabular-model" / "results" / f"job-{jobs['tabular-model']}.json").read_text())["test_auc"] > 0.6
