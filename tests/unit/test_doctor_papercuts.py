"""Profiles the machine cannot honour, who holds the hub's port, and Slurm's PrivateData: the pure parts of doctor.

The port tests use real listening sockets in real child processes (the ``academy doctor`` command line
against a running hub is in tests/hub/test_doctor.py); the Slurm tests feed captured ``scontrol show
config`` text (the real cluster's answer is checked in tests/slurm/test_slurm_doctor_privacy.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from support.skip import need
from academy.doctor_checks import check_port, check_profile_cores
from academy.port_holder import holder
from academy.siteconfig import build_config
from academy.spawners.local import cgroups
from academy.spawners.slurm.doctor import check_private_data, config_value

GiB = 1024**3
SMALL = cgroups.Machine(memory_bytes=23 * GiB, cpus=2)


# -- profiles beyond the machine ------------------------------------------------------------------
def test_a_profile_beyond_the_machine_says_what_it_asks_and_what_it_gets():
    """Does a 128 GiB profile on a 23 GiB machine read "128 GiB asked, this machine has 23 GiB: capped"?"""
    assert cgroups.shortfall("128G", 2, SMALL) == "128 GiB asked, this machine has 23 GiB: capped"
    assert cgroups.shortfall("16G", 16, SMALL) == "16 cores asked, this machine has 2: capped"
    both = cgroups.shortfall("512G", 64, SMALL)
    assert both == "512 GiB asked, this machine has 23 GiB: capped; 64 cores asked, this machine has 2: capped"


def test_sizes_are_never_rounded_up_past_what_the_machine_has():
    """Is 23.96 GiB shown as 23.9 GiB (not 24, which a 24G profile would then seem to fit), and whole GiB without decimals?"""
    assert cgroups.gib(int(23.96 * GiB)) == "23.9 GiB"
    assert cgroups.gib(128 * GiB) == "128 GiB" and cgroups.gib(GiB // 2) == "0.5 GiB"
    assert cgroups.shortfall("24G", 1, cgroups.Machine(int(23.96 * GiB), 2)) == "24 GiB asked, this machine has 23.9 GiB: capped"


def test_a_profile_that_fits_gets_no_note():
    """Is a profile within the machine's memory and cores left without a note, even at exactly its size?"""
    assert cgroups.shortfall("16G", 2, SMALL) is None
    assert cgroups.shortfall("23G", 2, SMALL) is None


def test_cores_are_capped_like_memory():
    """Are cores capped at the machine's, memory too, and a fitting profile left alone?"""
    assert cgroups.capped(cgroups.Limits(128 * GiB, 16.0), 23 * GiB, 2) == cgroups.Limits(23 * GiB, 2.0)
    assert cgroups.capped(cgroups.Limits(GiB, 1.5), 23 * GiB, 2) == cgroups.Limits(GiB, 1.5)
    assert cgroups.capped(cgroups.Limits(GiB, 64.0), 23 * GiB) == cgroups.Limits(GiB, 64.0)  # no cores given


def profiles_cfg(tmp_path: Path, backend: str, cpus: int) -> dict:
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump({"profiles": [
        {"slug": "small", "display_name": "Small", "description": "fits", "cpus": 1, "memory": "1G",
         "hours": {"default": 1, "max": 2}},
        {"slug": "wide", "display_name": "Wide", "description": "many cores", "cpus": cpus, "memory": "1G",
         "hours": {"default": 1, "max": 2}},
    ]}))
    return build_config({"backend": backend, "profiles_file": str(path)})


def test_doctor_warns_about_profiles_with_more_cores_than_the_machine(tmp_path):
    """Does doctor warn (not fail) on the local backend about a profile asking more cores than this machine has?"""
    too_many = cgroups.machine_cpus() + 1
    check = check_profile_cores(profiles_cfg(tmp_path, "local", too_many))
    assert check.ok and check.warning
    assert f"wide ({too_many})" in check.detail and "small" not in check.detail
    assert f"this machine has {cgroups.machine_cpus()} cores" in check.detail


def test_doctor_is_quiet_about_cores_that_fit_or_that_slurm_allocates(tmp_path):
    """Is there no warning when every profile fits, nor on the Slurm backend (the nodes' cores count there)?"""
    fits = check_profile_cores(profiles_cfg(tmp_path, "local", cgroups.machine_cpus()))
    assert fits.ok and not fits.warning
    slurm = check_profile_cores(profiles_cfg(tmp_path, "slurm", 256))
    assert slurm.ok and not slurm.warning


def test_the_local_form_notes_under_each_profile_what_the_machine_cannot_give(tmp_path):
    """Does the local spawner's form put the note under the profile that asks too much, and none under one that fits?"""
    need(cgroups.machine_cpus() < 256, "fewer than 256 cores (the schema's most for a profile)")
    import asyncio
    import re
    from types import SimpleNamespace

    from academy.spawners.local.spawner import AcademyLocalSpawner

    cfg = profiles_cfg(tmp_path, "local", 256)
    user = SimpleNamespace(name="ann", groups=[], admin=False, url="/user/ann/", server=None)
    spawner = AcademyLocalSpawner(user=user, profiles_file=cfg["profiles_file"], homes_dir=str(tmp_path / "homes"))
    form = asyncio.run(spawner._render_form())
    blocks = dict(re.findall(r'id="profile-([\w-]+)"(.*?)</label>', form, re.S))
    assert f"256 cores asked, this machine has {cgroups.machine_cpus()}: capped" in blocks["wide"]
    assert "academy-profile-note" not in blocks["small"]


# -- who holds the hub's port ---------------------------------------------------------------------
LISTEN = ("import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
          "print(s.getsockname()[1], flush=True); time.sleep(60)")


@pytest.fixture
def listener(tmp_path):
    """Start a process listening on a free port in a given working directory; yields a starter."""
    procs = []

    def start(cwd: Path) -> tuple[int, subprocess.Popen]:
        cwd.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", LISTEN], cwd=cwd, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return int(proc.stdout.readline()), proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_the_listener_is_named_with_its_pid_and_working_directory(listener, tmp_path):
    """Does holder() find the process listening on a port, with its command and working directory?"""
    port, proc = listener(tmp_path / "somewhere")
    found = holder(port)
    assert found is not None and found.pid == proc.pid
    assert "socket" in found.command
    assert found.works_in(tmp_path / "somewhere") and not found.works_in(tmp_path)


def test_a_free_port_has_no_holder(listener, tmp_path):
    """Is a port nobody listens on reported as held by no one?"""
    port, proc = listener(tmp_path)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while holder(port) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder(port) is None


def hub_cfg(state: Path, port: int) -> dict:
    return build_config({"hub": {"ip": "127.0.0.1", "port": port, "state_dir": str(state)}})


def test_the_sites_own_running_hub_is_not_a_port_problem(listener, tmp_path):
    """With this site's hub (working in its state dir) on the port, does doctor pass the port check and say why?"""
    state = tmp_path / "state"
    port, proc = listener(state)
    check = check_port(hub_cfg(state, port))
    assert check.ok, check.detail
    assert "this site's running hub" in check.detail and f"pid {proc.pid}" in check.detail


def test_another_program_on_the_port_fails_and_is_named(listener, tmp_path):
    """With something else on the port (another site's hub, any program), does doctor fail and name it?"""
    port, proc = listener(tmp_path / "other-site" / "state")
    check = check_port(hub_cfg(tmp_path / "state", port))
    assert not check.ok
    assert "already in use" in check.detail and f"pid {proc.pid}" in check.detail
    assert "not by this site's hub" in check.detail


# -- Slurm PrivateData ----------------------------------------------------------------------------
OPEN_CLUSTER = """Configuration data as of 2026-12-02T08:00:00
AccountingStorageType   = accounting_storage/none
PrivateData             = none
ProctrackType           = proctrack/linuxproc
SlurmUser               = root(0)
"""
PRIVATE_CLUSTER = OPEN_CLUSTER.replace("= none", "= jobs,usage,users").replace("root(0)", "slurm(64030)")


def test_scontrol_config_values_are_read_by_key():
    """Are `scontrol show config` values found by key, whatever the padding, and None when absent?"""
    assert config_value(PRIVATE_CLUSTER, "PrivateData") == "jobs,usage,users"
    assert config_value(PRIVATE_CLUSTER, "slurmuser") == "slurm(64030)"
    assert config_value(OPEN_CLUSTER, "MissingKey") is None


def test_a_cluster_that_shows_every_job_to_everyone_is_a_warning():
    """Without PrivateData=jobs, does doctor warn and name the setting to add?"""
    check = check_private_data(OPEN_CLUSTER, "root")
    assert check.ok and check.warning
    assert "PrivateData=none" in check.detail and "PrivateData=jobs,usage,users" in check.detail


@pytest.mark.parametrize("hub_user", ["root", "slurm"])
def test_private_jobs_with_a_hub_that_still_sees_them_pass(hub_user):
    """With PrivateData=jobs and the hub as root or SlurmUser (who see all jobs), is the check a plain ok?"""
    check = check_private_data(PRIVATE_CLUSTER, hub_user)
    assert check.ok and not check.warning and "own jobs" in check.detail


def test_private_jobs_hidden_from_the_hubs_own_user_are_a_warning():
    """With PrivateData=jobs and the hub as an ordinary user, does doctor warn that the hub cannot follow the jobs?"""
    check = check_private_data(PRIVATE_CLUSTER, "academy")
    assert check.warning and "academy" in check.detail and "root or slurm" in check.detail


def test_an_unreadable_config_is_a_warning_not_a_pass():
    """When `scontrol show config` does not answer, is PrivateData reported unknown rather than fine?"""
    check = check_private_data(None, "root")
    assert check.warning and "unknown" in check.detail


def test_the_test_process_is_not_mistaken_for_the_hub(tmp_path):
    """Is a port held by this very test process (working elsewhere) never taken for this site's hub?"""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        check = check_port(hub_cfg(tmp_path / "state", s.getsockname()[1]))
    assert not check.ok and f"pid {os.getpid()}" in check.detail
