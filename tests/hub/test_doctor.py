"""`academy doctor`: a readable table, exit 0 when healthy, non-zero naming what is wrong."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from support.skip import need
from testbed.hub import REPO, free_port, shared_tmpdir
from support.hub import proxy_available, running_hub

pytestmark = pytest.mark.hub


def doctor(config, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "academy", "--config", str(config), "doctor", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )


def summary(proc) -> str:
    """doctor's verdict: the last line on stderr when a check failed, else the last line of the report."""
    return (proc.stderr if proc.returncode else proc.stdout).strip().splitlines()[-1]


@pytest.fixture
def work():
    path = shared_tmpdir("doctor")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write(work, port, **extra):
    cfg = {"hub": {"port": port, "state_dir": str(work / "state")}, **extra}
    path = work / "academy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_healthy_install_passes_every_check(work):
    """Does a sane local install pass, with each check named in the table?"""
    need(proxy_available(), "configurable-http-proxy (npm install)")
    proc = doctor(write(work, free_port()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("config", "port", "proxy", "state dir", "profiles", "curriculum", "user access"):
        assert name in proc.stdout
    assert "all checks passed" in proc.stdout


def test_busy_port_and_bad_profiles_fail_with_reasons(work):
    """Does doctor exit non-zero and say which checks failed and why?"""
    bad_profiles = work / "profiles.yaml"
    bad_profiles.write_text("profiles:\n  - slug: Bad Slug\n")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        proc = doctor(write(work, holder.getsockname()[1], profiles_file=str(bad_profiles)))
    assert proc.returncode == 1
    assert "already in use" in proc.stdout
    assert "profiles[0]" in proc.stdout
    assert "check(s) failed" in proc.stderr and "port" in summary(proc)


def test_invalid_config_is_reported_not_raised(work):
    """Is a broken config one failed check with the key path, not a traceback?"""
    path = work / "academy.yaml"
    path.write_text("hub:\n  port: eighty\n")
    proc = doctor(path)
    assert proc.returncode == 1
    assert "hub.port" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_slurm_backend_without_a_controller_fails_the_scheduler_check(work):
    """With backend slurm and no reachable controller, does doctor fail the Slurm check rather than pass?"""
    path = write(work, free_port(), backend="slurm")
    env_conf = work / "missing-slurm.conf"
    proc = subprocess.run(
        [sys.executable, "-m", "academy", "--config", str(path), "doctor"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "SLURM_CONF": str(env_conf)},
    )
    assert proc.returncode == 1, proc.stdout
    assert "slurm" in proc.stdout.lower()


def test_profiles_beyond_this_machines_memory_are_a_warning(work):
    """Does doctor warn (not fail) about a local profile asking more memory than the machine has, naming it?"""
    profiles = yaml.safe_load((REPO / "spawner_config" / "profiles.yaml").read_text())
    profiles["profiles"][0]["memory"] = "64T"
    path = work / "profiles.yaml"
    path.write_text(yaml.safe_dump(profiles))
    proc = doctor(write(work, free_port(), profiles_file=str(path)))
    row = next(line for line in proc.stdout.splitlines() if "profile memory" in line)
    assert "warn" in row and "capped" in row
    assert f"{profiles['profiles'][0]['slug']} (64T)" in proc.stdout
    assert "profile memory" not in summary(proc)


def test_port_option_checks_the_port_up_would_use(work):
    """Does `doctor --port N` check port N, as `up --port N` would bind it, instead of hub.port?"""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        free = free_port()
        config = write(work, busy)
        moved = doctor(config, "--port", str(free))
        pointed = doctor(write(work, free), "--port", str(busy))
    port_row = lambda proc: next(line for line in proc.stdout.splitlines() if " port " in f" {line} ")  # noqa: E731
    assert "already in use" not in moved.stdout and f":{free} is free" in port_row(moved)
    assert "already in use" in pointed.stdout and f"port {busy}" in pointed.stdout and pointed.returncode == 1


def test_the_running_hubs_own_port_is_not_a_problem_but_another_sites_is(work):
    """With this site's hub running, does doctor pass its port (ours), and fail another site's config on that port, naming the holder?"""
    wide = {**os.environ, "COLUMNS": "300"}  # one table row per check, so a row can be read whole
    port_row = lambda proc: next(line for line in proc.stdout.splitlines() if " port " in f" {line} ")  # noqa: E731
    with running_hub("doctor-up") as hub:
        ours = doctor(hub.config_path, env=wide)
        theirs = doctor(write(work, hub.port), env=wide)
        other_port = doctor(hub.config_path, "--port", str(free_port()), env=wide)
    assert "ok" in port_row(ours) and f"127.0.0.1:{hub.port} is this site's running hub" in port_row(ours)
    assert "port" not in summary(ours), ours.stdout
    assert "FAIL" in port_row(theirs) and "already in use by pid" in port_row(theirs)
    assert "not by this site's hub" in port_row(theirs) and theirs.returncode == 1
    assert "is free" in port_row(other_port)
