"""Bad input to `academy up`: one clear line, a non-zero exit, nothing started, no state touched."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from support.skip import need
from testbed.hub import free_port, shared_tmpdir

pytestmark = pytest.mark.hub


def snapshot(path):
    """Every file below ``path`` with its content hash and mode, to prove nothing changed."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(path))] = (st.st_mode, hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None)
    return out


@pytest.fixture
def site(tmp_path):
    """An existing installation: a state dir with a 'database' that must survive every refusal."""
    work = shared_tmpdir("refuse")
    state = work / "state"
    state.mkdir(mode=0o700)
    (state / "jupyterhub.sqlite").write_bytes(b"precious users")
    os.chmod(state / "jupyterhub.sqlite", 0o600)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def run_up(config_path, user=None):
    cmd = [sys.executable, "-m", "academy", "--config", str(config_path), "up", "--start-timeout", "20"]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/")


def write(work, text):
    path = work / "academy.yaml"
    path.write_text(text)
    path.chmod(0o644)
    return path


def valid(work, port):
    return yaml.safe_dump({"hub": {"port": port, "state_dir": str(work / "state")}, "culler": {"enabled": False}})


def assert_refused(proc, work, before, needle):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("academy up: "), proc.stderr
    assert needle in lines[0], lines[0]
    assert snapshot(work / "state") == before, "a refused start modified existing state"
    assert not (work / "state" / "jupyterhub.pid").exists()


def test_malformed_yaml_is_refused(site):
    """Does a YAML syntax error stop the start with its line number?"""
    before = snapshot(site / "state")
    proc = run_up(write(site, "hub:\n  port: [8000\n"))
    assert_refused(proc, site, before, "malformed YAML (line")


def test_unknown_key_is_refused_with_its_path(site):
    """Does a misspelled key name itself (hub.prot) instead of being ignored?"""
    before = snapshot(site / "state")
    proc = run_up(write(site, valid(site, free_port()) + "\n" + "extra_key: 1\n"))
    assert_refused(proc, site, before, "extra_key: unknown key")
    proc = run_up(write(site, yaml.safe_dump({"hub": {"prot": 8000, "state_dir": str(site / "state")}})))
    assert_refused(proc, site, before, "hub.prot: unknown key")


def test_port_in_use_is_refused(site):
    """Does a port held by another program stop the start before anything is written?"""
    before = snapshot(site / "state")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = run_up(write(site, valid(site, port)))
    assert_refused(proc, site, before, f"port {port} on 127.0.0.1 is already in use")


def test_unwritable_state_dir_is_refused(site):
    """Does an admin without write access to the state dir get one clear line and an untouched state?"""
    need(os.geteuid() == 0, "root, to run the check as the unprivileged account 'nobody'")
    os.chmod(site / "state", 0o755)  # readable so the check gets that far, but root-owned
    os.chmod(site / "state" / "jupyterhub.sqlite", 0o644)
    before = snapshot(site / "state")
    proc = run_up(write(site, valid(site, free_port())), user="nobody")
    assert_refused(proc, site, before, "is not writable by this user")


def test_sso_without_its_secret_is_refused(site):
    """Does an OIDC site whose client-secret variable is unset refuse to start, naming the variable?"""
    before = snapshot(site / "state")
    cfg = yaml.safe_load(valid(site, free_port()))
    cfg["auth"] = {"type": "oidc", "oidc": {
        "client_id": "x", "client_secret_env": "ACADEMY_SECRET_THAT_IS_NOT_SET",
        "authorize_url": "https://idp.example.org/a", "token_url": "https://idp.example.org/t",
        "userdata_url": "https://idp.example.org/u"}}
    proc = run_up(write(site, yaml.safe_dump(cfg)))
    assert_refused(proc, site, before, "ACADEMY_SECRET_THAT_IS_NOT_SET is not set")


def test_slurm_without_a_fixed_hub_port_is_refused(site):
    """Is a Slurm site with hub_port 0 refused, since running jobs could not find a restarted hub?"""
    before = snapshot(site / "state")
    cfg = yaml.safe_load(valid(site, free_port()))
    cfg["backend"] = "slurm"
    proc = run_up(write(site, yaml.safe_dump(cfg)))
    assert_refused(proc, site, before, "hub.hub_port: the slurm backend needs a fixed port")


def test_a_course_learners_could_change_or_a_missing_course_is_refused(site):
    """Does `academy up` refuse a course directory other users can write (planted hidden tests), a course
    directory that does not exist, and a course id with path characters, each naming what is wrong?"""
    before = snapshot(site / "state")
    course = site / "course"
    (course / "source").mkdir(parents=True)
    os.chmod(course, 0o777)
    cfg = yaml.safe_load(valid(site, free_port()))
    cfg["course"] = {"courses": [{"id": "c1", "directory": str(course)}]}
    assert_refused(run_up(write(site, yaml.safe_dump(cfg))), site, before, f"the course directory {course} is writable by other users")
    cfg["course"] = {"courses": [{"id": "c1", "directory": str(site / "nowhere")}]}
    assert_refused(run_up(write(site, yaml.safe_dump(cfg))), site, before, "course.courses[0].directory:")
    cfg["course"] = {"courses": [{"id": "../c1", "directory": str(course)}]}
    assert_refused(run_up(write(site, yaml.safe_dump(cfg))), site, before, "course.courses[0].id")
