"""Own environments inside a Slurm job: created, filled from the index and used as a kernel, all within the job.

A real job on the one-node Slurm runs the learner's server as their own Unix user; the commands run
in a notebook cell there (as a learner's terminal would), so `academy env` and pip run inside the job.
PyPI (or $PIP_INDEX_URL) must be reachable.
"""
from __future__ import annotations


import pytest

from support.lab import kernel_output
from support.slurm import spawn

pytestmark = pytest.mark.slurm
PACKAGE = "cowsay"  # tiny, pure Python, not in the shared environment


def kernel(hub, who, name: str) -> str:
    r = who.session.post(f"{hub.url}/user/{who.name}/api/kernels", json={"name": name},
                         headers={"Authorization": f"token {who.token}"}, timeout=120)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_env_create_pip_install_and_kernel_inside_a_slurm_job(slurm_hub, learner):
    """In a Slurm job: does `academy env create myenv`, pip install into it, and a kernel on it importing the package work?"""
    spawn(slurm_hub, learner, {"profile": "cpu"}, timeout=180)
    try:
        setup = kernel(slurm_hub, learner, "python3")
        code = (
            "import os, subprocess, sys\n"
            "academy = os.path.join(os.path.dirname(sys.executable), 'academy')\n"
            "r = subprocess.run([academy, 'env', 'create', 'myenv'], capture_output=True, text=True)\n"
            "assert r.returncode == 0, r.stdout + r.stderr\n"
            "py = os.path.expanduser('~/.academy/envs/myenv/bin/python')\n"
            f"r = subprocess.run([py, '-m', 'pip', 'install', '--disable-pip-version-check', '{PACKAGE}'],"
            " capture_output=True, text=True)\n"
            "assert r.returncode == 0, r.stdout + r.stderr\n"
            "print(os.environ['SLURM_JOB_ID'])\n"
        )
        job_id = kernel_output(slurm_hub, learner, setup, code, timeout=600).strip()
        assert job_id.isdigit()
        own = kernel(slurm_hub, learner, "academy-myenv")
        out = kernel_output(slurm_hub, learner, own,
                            f"import {PACKAGE}, os, sys, pwd\n"
                            "print(os.environ.get('SLURM_JOB_ID'), pwd.getpwuid(os.getuid()).pw_name, sys.prefix)",
                            timeout=600)
        job, user, prefix = out.split()
        assert job == job_id and user == learner.name
        assert prefix.endswith("/.academy/envs/myenv")
        envs = learner.session.get(f"{slurm_hub.url}/user/{learner.name}/academy/api/envs",
                                   headers={"Authorization": f"token {learner.token}"}, timeout=60).json()["envs"]
        assert [e["name"] for e in envs] == ["myenv"]
    finally:
        slurm_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
