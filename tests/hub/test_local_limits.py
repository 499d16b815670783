"""The local backend holds each learner to the profile's memory and cores (cgroups), as Slurm does on a node.

A real hub and proxy, a learner's real server and kernel, and a real memory bomb run through the
Jupyter websocket protocol: the kernel is stopped at the profile's limit while the server, the hub and
everyone else carry on.
"""
from __future__ import annotations

import asyncio
import pwd
import time
from pathlib import Path

import pytest

from support.process import exited
from support.skip import need
from academy.spawners.local import cgroups
from testbed.hub import make_learner
from support.hub import running_hub
from support.lab import kernel_messages

pytestmark = pytest.mark.hub

PROFILES = """profiles:
  - slug: small
    display_name: Small · 1 core, 512 MB
    description: A profile small enough to hit its limits on purpose.
    cpus: 1
    memory: 512M
    hours: {default: 1, max: 2}
  - slug: huge
    display_name: Huge · 1 core, 64 TB
    description: More memory than any test machine has.
    cpus: 1
    memory: 64T
    hours: {default: 1, max: 2}
  - slug: wide
    display_name: Wide · 256 cores, 512 MB
    description: More cores than any test machine has.
    cpus: 256
    memory: 512M
    hours: {default: 1, max: 2}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    need(cgroups.version() is not None, "root with writable memory and cpu cgroups")
    profiles = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    profiles.write_text(PROFILES)
    with running_hub("limits", site={"profiles_file": str(profiles)}) as h:
        yield h


@pytest.fixture(scope="module")
def learner(hub):
    who = make_learner(hub)
    r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "small"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(who.name, who.token)
    yield who
    hub.api("DELETE", f"/users/{who.name}/server", who.token)


def group_of(pid: int) -> dict[str, str]:
    """controller -> cgroup path of a process, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") or [""]:
            out[controller] = path
    return out


def in_group(pid: int, account: str) -> bool:
    groups = group_of(pid)
    return groups.get("" if cgroups.version() == "v2" else "memory") == f"/academy/{account}"


def limits_of(account: str) -> tuple[int, int]:
    """(memory limit in bytes, CPU quota per 100 ms period in µs) as the kernel holds them."""
    dirs = cgroups.UserGroup(account).dirs
    if cgroups.version() == "v2":
        quota = (dirs[0] / "cpu.max").read_text().split()[0]
        return int((dirs[0] / "memory.max").read_text()), int(quota)
    return int((dirs[0] / "memory.limit_in_bytes").read_text()), int((dirs[1] / "cpu.cfs_quota_us").read_text())


def times_limit_hit(account: str) -> int:
    group = cgroups.UserGroup(account).dirs[0]
    if cgroups.version() == "v2":
        events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
        return int(events["max"]) + int(events["oom_kill"])
    return int((group / "memory.failcnt").read_text())


def server_pid(account: str) -> int:
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"jupyterhub-singleuser" in (proc / "cmdline").read_bytes() \
                    and proc.stat().st_uid == pwd.getpwnam(account).pw_uid:
                return int(proc.name)
        except OSError:
            continue
    raise AssertionError(f"no server process of {account}")


def test_server_and_its_kernels_run_inside_the_profiles_limits(hub, learner):
    """Are the learner's server and the kernels it starts in a cgroup with the profile's memory and cores?"""
    account = f"acad-{learner.name}"
    pid = server_pid(account)
    groups = group_of(pid)
    expected = f"/academy/{account}"
    assert (groups[""] == expected) if cgroups.version() == "v2" else (groups["memory"] == groups["cpu"] == expected), groups
    assert limits_of(account) == (512 * 1024**2, 100_000)
    environ = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
    assert environ["MEM_LIMIT"] == str(512 * 1024**2) and float(environ["CPU_LIMIT"]) == 1.0
    r = learner.session.post(f"{hub.url}/user/{learner.name}/api/kernels", json={"name": "python3"},
                             headers={"Authorization": f"token {learner.token}"}, timeout=60)
    assert r.status_code == 201, r.text
    kernel_id = r.json()["id"]
    replies = asyncio.run(kernel_messages(hub, learner, kernel_id, "import os; print(os.getpid())"))
    kernel_pid = int(next(m for m in replies if m["msg_type"] == "stream")["content"]["text"])
    assert in_group(kernel_pid, account)


def test_a_running_server_weighs_as_much_as_any_other(hub, learner):
    """Once the server answers, is its start-time CPU boost over (the kernel's default weight again)?"""
    cpu = cgroups.UserGroup(f"acad-{learner.name}").dirs[-1]
    weight = (cpu / "cpu.weight") if cgroups.version() == "v2" else (cpu / "cpu.shares")
    deadline = time.monotonic() + 60  # the reset follows the hub's own first answer from the server
    while int(weight.read_text()) != (cgroups.V2_WEIGHT if cgroups.version() == "v2" else cgroups.V1_SHARES):
        assert time.monotonic() < deadline, f"{weight} is still {weight.read_text().strip()}"
        time.sleep(0.5)


def test_a_memory_bomb_stops_at_the_profile_limit_and_nothing_else_suffers(hub, learner):
    """Does allocating 2 GB under a 512 MB profile end the kernel alone, with the server and hub fine?"""
    account = f"acad-{learner.name}"
    r = learner.session.post(f"{hub.url}/user/{learner.name}/api/kernels", json={"name": "python3"},
                             headers={"Authorization": f"token {learner.token}"}, timeout=60)
    assert r.status_code == 201, r.text
    replies = asyncio.run(kernel_messages(hub, learner, r.json()["id"], "x = b'a' * (2 * 1024**3)\nprint('survived')"))
    printed = "".join(m["content"].get("text", "") for m in replies if m["msg_type"] == "stream")
    assert "survived" not in printed
    assert times_limit_hit(account) > 0, "the limit was never reached"
    status = learner.session.get(f"{hub.url}/user/{learner.name}/api/status",
                                 headers={"Authorization": f"token {learner.token}"}, timeout=30)
    assert status.status_code == 200, "the learner's server went down with the kernel"
    assert hub.api("GET", f"/users/{learner.name}", learner.token).json()["servers"][""]["ready"]


def test_stopping_the_server_ends_what_it_left_running(hub):
    """When a learner's server stops, does a background process they started stop with it (as at a job's end)?"""
    other = make_learner(hub, prefix="bg")
    r = hub.api("POST", f"/users/{other.name}/server", other.token, json={"profile": "small"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(other.name, other.token)
    account = f"acad-{other.name}"
    r = other.session.post(f"{hub.url}/user/{other.name}/api/kernels", json={"name": "python3"},
                           headers={"Authorization": f"token {other.token}"}, timeout=60)
    code = ("import subprocess\np = subprocess.Popen(['sleep', '600'], start_new_session=True)\nprint(p.pid)")
    replies = asyncio.run(kernel_messages(hub, other, r.json()["id"], code))
    stray = int(next(m for m in replies if m["msg_type"] == "stream")["content"]["text"])
    assert in_group(stray, account)
    r = hub.api("DELETE", f"/users/{other.name}/server", other.token)
    assert r.status_code in (202, 204)
    deadline = time.monotonic() + 10
    while not exited(stray) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert exited(stray), "a background process outlived its learner's server"
    assert not any(d.exists() for d in cgroups.UserGroup(account).dirs)


def test_memory_beyond_the_machine_is_capped_at_what_it_has(hub):
    """Does a profile asking more memory than the machine has get the machine's memory as its limit, as the form says?"""
    who = make_learner(hub, "huge")
    machine = cgroups.machine_memory()
    form = who.session.get(f"{hub.url}/hub/spawn", timeout=30).text
    assert f"This machine has {cgroups.gib(machine)} of memory: a profile asking for more gets {cgroups.gib(machine)}" in form
    r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "huge"})
    assert r.status_code in (201, 202), r.text
    try:
        hub.wait_ready(who.name, who.token)
        assert limits_of(f"acad-{who.name}")[0] == machine
    finally:
        hub.api("DELETE", f"/users/{who.name}/server", who.token)


def profile_block(form: str, slug: str) -> str:
    """The form's text for one profile: from its radio button to the end of its label."""
    start = form.index(f'id="profile-{slug}"')
    return form[start:form.index("</label>", start)]


def test_the_form_says_under_each_profile_what_this_machine_cannot_give(hub):
    """Does the form say under the 64T and 256-core profiles what they ask, what the machine has, and that it is capped?"""
    need(cgroups.machine_cpus() < 256, "fewer than 256 cores (the schema's most for a profile)")
    who = make_learner(hub, "form")
    form = who.session.get(f"{hub.url}/hub/spawn", timeout=30).text
    machine = cgroups.this_machine()
    huge, wide = profile_block(form, "huge"), profile_block(form, "wide")
    assert f"{cgroups.gib(64 * 1024**4)} asked, this machine has {cgroups.gib(machine.memory_bytes)}: capped" in huge
    assert f"256 cores asked, this machine has {machine.cpus}: capped" in wide
    assert "cores asked" not in huge and "GiB asked" not in wide
    assert "academy-profile-note" not in profile_block(form, "small")


def test_cores_beyond_the_machine_are_capped_at_what_it_has(hub):
    """Does a 256-core profile get this machine's cores as its CPU quota and CPU_LIMIT, as the form says?"""
    need(cgroups.machine_cpus() < 256, "fewer than 256 cores (the schema's most for a profile)")
    who = make_learner(hub, "wide")
    r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "wide"})
    assert r.status_code in (201, 202), r.text
    try:
        hub.wait_ready(who.name, who.token)
        account = f"acad-{who.name}"
        assert limits_of(account)[1] == cgroups.machine_cpus() * cgroups.CPU_PERIOD_US
        environ = dict(e.split("=", 1) for e in Path(f"/proc/{server_pid(account)}/environ").read_text().split("\0") if "=" in e)
        assert float(environ["CPU_LIMIT"]) == cgroups.machine_cpus()
    finally:
        hub.api("DELETE", f"/users/{who.name}/server", who.token)
