"""Fixtures for the real-Slurm suite (marker ``slurm``).

- ``slurm_cluster`` (session): the one-node cluster of testbed/slurm_cluster.py, started or reused,
  with ``SLURM_CONF`` exported for the hub and the workshop reservation in place; stopped at the
  end only if this session started it.
- ``slurm_hub`` (module): a hub with the slurm backend, testbed/slurm_profiles.yaml and 1 s polling.
- ``learner``: a fresh hub account that is also a real Unix user (made in batches; removed at the end).

On failure the hub log and the end of slurmctld's log are printed.
"""
from __future__ import annotations

import os
import shutil

import pytest

from support.skip import need
from testbed.slurm_cluster import Cluster, controller_up, ensure_reservation, start, stop
from support.slurm import LearnerPool, check_python_env_usable, new_username, slurm_site, start_hub, unix_user
from testbed.accounts import remove_users


def _slurm_installed() -> bool:
    return all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in ("slurmctld", "slurmd", "munged", "sbatch"))


@pytest.fixture(scope="session")
def slurm_cluster():
    need(_slurm_installed(), "Slurm and munge (apt-get install slurm-wlm munge)")
    need(os.geteuid() == 0, "root (the Slurm suite creates Unix users and runs jobs as them)")
    cluster = Cluster()
    was_up = cluster.conf.exists() and controller_up(cluster)
    start(cluster)
    os.environ["SLURM_CONF"] = str(cluster.conf)
    ensure_reservation(cluster)
    check_python_env_usable(unix_user(new_username("probe")))
    yield cluster
    remove_users()
    if not was_up:
        stop(cluster)


@pytest.fixture(scope="module")
def slurm_hub(slurm_cluster, request):
    workshop = [new_username("ws")]
    hub = start_hub(slurm_site(groups={"workshop": workshop}))
    hub.workshop_members = workshop
    hub.pool = LearnerPool(hub)
    yield hub
    hub.stop()
    shutil.rmtree(hub.workdir, ignore_errors=True)


@pytest.fixture
def learner(slurm_hub):
    return slurm_hub.pool.take()


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed:
        return
    for name in ("slurm_hub", "restart_hub"):
        if name in request.fixturenames:
            hub = request.getfixturevalue(name)
            print(hub.log_tail(150))
    log = Cluster().log("slurmctld")
    if log.exists():
        print("--- slurmctld.log ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
