"""Where a session runs, seen from a learner's real server: resources, GPU-aware culling, own environments.

A real hub and proxy, real learner Unix accounts (the local backend as root, in cgroups), real
kernels over the Jupyter protocol and the real culler service.  GPU figures in the culling tests come
from a stand-in NVML source (tests/support/gpus.py), because this machine has no GPU and GPU
utilisation cannot be produced without one; it is switched on per learner through their own Jupyter
config, never by production code.  PyPI (or the configured index) must be reachable for the env test.
"""
from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support.skip import need
from academy.spawners.local import cgroups
from testbed.hub import REPO, make_learner
from support.hub import running_hub
from support.lab import kernel_messages, kernel_output

pytestmark = pytest.mark.hub

PROFILES = """profiles:
  - slug: cpu
    display_name: CPU · 1 core, 512 MB
    description: No GPU; long idle time so it is never culled during these tests.
    cpus: 1
    memory: 512M
    hours: {default: 1, max: 2}
    idle_seconds: 3600
  - slug: gpu
    display_name: GPU (stand-in) · 1 core, 512 MB
    description: One GPU, culled after 60 idle seconds.
    cpus: 1
    memory: 512M
    gpus: {type: h100, count: 1}
    hours: {default: 1, max: 2}
    idle_seconds: 60
"""
IDLE, WARN_BEFORE = 60, 40
PACKAGE = "cowsay"  # tiny, pure Python, not in the shared environment


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    need(cgroups.version() is not None, "root with writable memory and cpu cgroups")
    profiles = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    profiles.write_text(PROFILES)
    profiles.parent.chmod(0o755)
    # Learner servers import the stand-in GPU source from tests/ (PYTHONPATH is passed to servers).
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(REPO / "tests") + (os.pathsep + old if old else "")
    try:
        site = {"profiles_file": str(profiles), "local": {"start_timeout": 300},
                "culler": {"enabled": True, "timeout": 3600, "every": 1, "warn_before": WARN_BEFORE}}
        with running_hub("session", site=site) as h:
            yield h
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def server_api(hub, who, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{hub.url}/user/{who.name}/{path}",
                            headers={"Authorization": f"token {who.token}"}, timeout=60, **kwargs)


def spawn(hub, *learners, profile: str, attempts: int = 3) -> None:
    """Start each server; a start the hub gave up on (its 60 s answer timeout, on an overloaded test
    machine) is retried, as a learner would press Start again."""
    for who in learners:
        for attempt in range(attempts):
            r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": profile})
            assert r.status_code in (201, 202), r.text
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                server = hub.api("GET", f"/users/{who.name}", who.token).json()["servers"].get("")
                if not server or server.get("ready"):
                    break
                time.sleep(0.5)
            if server and server.get("ready"):
                break
        else:
            raise AssertionError(f"server of {who.name} did not start in {attempts} attempts" + hub.log_tail())


def stop(hub, *learners) -> None:
    for who in learners:
        hub.api("DELETE", f"/users/{who.name}/server", who.token)
    deadline = time.monotonic() + 90
    for who in learners:
        while time.monotonic() < deadline and hub.api("GET", f"/users/{who.name}", who.token).json()["servers"]:
            time.sleep(0.5)


def home_of(hub, who) -> Path:
    return hub.state_dir / "homes" / who.name


def use_standin_gpu(hub, who, utilization: float) -> None:
    """Before the first spawn: point this learner's server at the stand-in GPU source and set its reading.

    Their own ~/.jupyter config (which Jupyter reads) names the stand-in; the spawner makes the
    account and takes ownership of the home when the server starts, leaving these files readable.
    """
    home = home_of(hub, who)
    (home / ".jupyter").mkdir(parents=True, exist_ok=True)
    for d in (home.parent, home, home / ".jupyter"):
        d.chmod(0o755)
    (home / ".jupyter" / "jupyter_server_config.json").write_text(json.dumps({"AcademyLabTools": {
        "gpu_source_class": "support.gpus.StandInGpus", "gpu_sample_seconds": 0.5}}))
    (home / ".standin-gpus.json").write_text(json.dumps([{
        "name": "Stand-in H100", "uuid": "GPU-standin", "utilization_percent": utilization,
        "memory_used_bytes": 1 << 30, "memory_total_bytes": 80 << 30, "energy_millijoules": 1000.0}]))


def new_kernel(hub, who, name: str = "python3") -> str:
    r = server_api(hub, who, "POST", "api/kernels", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_resources_show_the_cgroups_limit_and_use_and_no_gpu_on_a_cpu_profile(hub):
    """Does academy/api/resources report the profile's cgroup memory limit and use, its cores, and 'no GPU'?"""
    who = make_learner(hub)
    spawn(hub, who, profile="cpu")
    try:
        r = server_api(hub, who, "GET", "academy/api/resources")
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["memory"]["limit_bytes"] == 512 * 1024**2
        assert data["cpu"]["limit_cores"] == 1.0
        assert data["gpus"] == [] and data["gpu_note"] == "no GPU in this profile"
        group = cgroups.UserGroup(f"acad-{who.name}").dirs[0]
        usage_file = "memory.current" if cgroups.version() == "v2" else "memory.usage_in_bytes"
        kernel_cgroup_use = int((group / usage_file).read_text())
        # The figure is the cgroup's own count (what the OOM killer compares), read moments apart.
        assert 0 < data["memory"]["used_bytes"] < 512 * 1024**2
        assert abs(data["memory"]["used_bytes"] - kernel_cgroup_use) < 64 * 1024**2
        # jupyter-resource-usage (the status bar) shows the same limit.
        metrics = server_api(hub, who, "GET", "api/metrics/v1").json()
        assert metrics["limits"]["memory"]["rss"] == 512 * 1024**2
        # Without the learner's token (or with another learner's) nothing is shown.
        other = make_learner(hub, prefix="other")
        assert requests.get(f"{hub.url}/user/{who.name}/academy/api/resources", timeout=30,
                            allow_redirects=False).status_code in (302, 403)
        stranger = requests.get(f"{hub.url}/user/{who.name}/academy/api/resources", timeout=30, allow_redirects=False,
                                headers={"Authorization": f"token {other.token}"})
        assert stranger.status_code in (302, 403, 404)
    finally:
        stop(hub, who)


@pytest.mark.timeout(1800)  # three servers one after the other, then 60 s of idling, on a slow machine
def test_culler_frees_idle_gpu_keeps_busy_kernel_and_busy_gpu_and_warns_first(hub):
    """With idle time 60 s: is an idle kernel on an idle GPU culled after a warning, while a busy kernel and a
    GPU-busy server with no browser open are kept?"""
    idle, busy_kernel, busy_gpu = (make_learner(hub, prefix=p) for p in ("idle", "kbusy", "gbusy"))
    for who, util in ((idle, 0), (busy_kernel, 0), (busy_gpu, 90)):
        use_standin_gpu(hub, who, util)
    # One after the other (a loaded machine starts servers slowly); the idle one last, so the test is
    # watching it when its warning comes.
    try:
        spawn(hub, busy_gpu, profile="gpu")
        gpus = server_api(hub, busy_gpu, "GET", "academy/api/resources").json()["gpus"]
        assert gpus[0]["utilization_percent"] == 90 and gpus[0]["name"] == "Stand-in H100"
        spawn(hub, busy_kernel, profile="gpu")
        kid = new_kernel(hub, busy_kernel)
        asyncio.run(kernel_messages(hub, busy_kernel, kid, "import time; time.sleep(900)", until="started"))
        spawn(hub, idle, profile="gpu")
        new_kernel(hub, idle)

        warning, deadline = None, time.monotonic() + 120
        while time.monotonic() < deadline and warning is None:
            notices = server_api(hub, idle, "GET", "academy/api/notices").json()["notices"]
            warning = next((n for n in notices if n["level"] == "warning"), None)
            time.sleep(0.5)
        assert warning is not None, "the learner was never warned"
        assert "stopped" in warning["message"] and "Run a cell" in warning["message"]

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and hub.api("GET", f"/users/{idle.name}", idle.token).json()["servers"]:
            time.sleep(1)
        assert not hub.api("GET", f"/users/{idle.name}", idle.token).json()["servers"], "idle server not culled"
        # The kept ones have been idle (by browser and hub) for longer than the idle time by now.
        time.sleep(IDLE / 2)
        for who in (busy_kernel, busy_gpu):
            servers = hub.api("GET", f"/users/{who.name}", who.token).json()["servers"]
            assert servers.get("", {}).get("ready"), f"{who.name} was culled although busy"
        assert f"Culling {idle.name}/" in hub.log_path.read_text()
        for who in (busy_kernel, busy_gpu):
            assert f"Culling {who.name}/" not in hub.log_path.read_text()
    finally:
        stop(hub, idle, busy_kernel, busy_gpu)


def as_learner(hub, who, *argv: str) -> subprocess.CompletedProcess:
    """Run a command as the learner's own Unix account in their home, as their terminal would."""
    home = home_of(hub, who)
    env = {"HOME": str(home), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "USER": f"acad-{who.name}"}
    if os.environ.get("PIP_INDEX_URL"):
        env["PIP_INDEX_URL"] = os.environ["PIP_INDEX_URL"]
    return subprocess.run([shutil.which("runuser") or "/usr/sbin/runuser", "-u", f"acad-{who.name}", "--", *argv], env=env, cwd=home,
                          capture_output=True, text=True, timeout=600)


def test_academy_env_create_then_pip_install_then_a_notebook_on_its_kernel_imports_it(hub):
    """As a real learner account: does `academy env create myenv`, pip install inside it, and a kernel on it work?"""
    who = make_learner(hub)
    spawn(hub, who, profile="cpu")
    try:
        created = as_learner(hub, who, str(Path(sys.executable).parent / "academy"), "env", "create", "myenv")
        assert created.returncode == 0, created.stdout + created.stderr
        python = home_of(hub, who) / ".academy" / "envs" / "myenv" / "bin" / "python"
        installed = as_learner(hub, who, str(python), "-m", "pip", "install", "--disable-pip-version-check", PACKAGE)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        specs = server_api(hub, who, "GET", "api/kernelspecs").json()["kernelspecs"]
        assert "academy-myenv" in specs
        kid = new_kernel(hub, who, "academy-myenv")
        out = kernel_output(hub, who, kid, f"import {PACKAGE}, os, sys; print(sys.prefix); print(os.getuid())")
        prefix, uid = out.split()
        assert prefix == str(home_of(hub, who) / ".academy" / "envs" / "myenv")
        assert int(uid) == pwd.getpwnam(f"acad-{who.name}").pw_uid
        # The shared environment itself is untouched: the package exists only in the learner's env.
        assert subprocess.run([sys.executable, "-c", f"import {PACKAGE}"], capture_output=True).returncode != 0
        listed = server_api(hub, who, "GET", "academy/api/envs").json()["envs"]
        assert [e["name"] for e in listed] == ["myenv"] and any(p.startswith(f"{PACKAGE}==") for p in listed[0]["packages"])
    finally:
        stop(hub, who)


def test_env_api_creates_lists_and_removes_and_refuses_hostile_input(hub):
    """Does the extension's envs API make an env in the background, list it, remove it, and refuse bad names/specs?"""
    who = make_learner(hub)
    spawn(hub, who, profile="cpu")
    try:
        for body, field in (({"name": "../../etc", "packages": []}, "name"),
                            ({"name": "ok", "packages": ["--index-url=http://evil/simple"]}, "packages"),
                            ({"name": "ok", "packages": ["x @ http://evil/x.whl"]}, "packages"),
                            ({"name": "ok", "packages": "rich; id"}, "packages")):
            r = server_api(hub, who, "POST", "academy/api/envs", json=body)
            assert r.status_code == 400 and field in r.json()["message"], r.text
        assert server_api(hub, who, "DELETE", "academy/api/envs/..%2f..%2fetc").status_code in (400, 404)
        r = server_api(hub, who, "POST", "academy/api/envs", json={"name": "viaapi", "packages": []})
        assert r.status_code == 202 and r.json() == {"name": "viaapi", "status": "creating"}
        deadline, status = time.monotonic() + 120, "creating"
        while time.monotonic() < deadline and status == "creating":
            envs = server_api(hub, who, "GET", "academy/api/envs").json()["envs"]
            status = next(e["status"] for e in envs if e["name"] == "viaapi")
            time.sleep(0.5)
        assert status == "ready"
        env_dir = home_of(hub, who) / ".academy" / "envs" / "viaapi"
        assert env_dir.stat().st_uid == pwd.getpwnam(f"acad-{who.name}").pw_uid, "env not owned by the learner"
        assert server_api(hub, who, "DELETE", "academy/api/envs/viaapi").status_code == 204
        assert not env_dir.exists()
        assert server_api(hub, who, "GET", "academy/api/envs").json()["envs"] == []
    finally:
        stop(hub, who)
