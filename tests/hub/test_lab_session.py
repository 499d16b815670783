"""The learner's server knows its session (academy.lab): walltime, More time through the hub, help, terminal.

A real hub and proxy on the local backend; each request goes where the browser's would (the server's
``academy/api/...`` through the proxy) or where the server itself sends it (the hub API, with the
server's own token, read from the real server process as root).
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from testbed.hub import make_learner
from testbed.tiny_course import ASSIGNMENT, NOTEBOOK
from support.course import run_academy, shared_tiny_course
from support.hub import running_hub
from support.lab import terminal_run

pytestmark = pytest.mark.hub

PROFILES = """profiles:
  - slug: small
    display_name: Small · 1 core
    description: Two hours at most.
    cpus: 1
    memory: 1G
    hours: {default: 1, max: 2}
"""
HELP = "https://help.example.org/academy"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    profiles = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    profiles.write_text(PROFILES)
    site = {"profiles_file": str(profiles), "lab": {"help_url": HELP, "help_email": "help@example.org"}}
    with running_hub("lab", site=site) as h:
        yield h


def start(hub):
    who = make_learner(hub, "lab")
    before = time.time()
    r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "small", "hours": 1})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(who.name, who.token, timeout=240)  # a loaded 2-core CI machine starts servers slowly
    return who, before


def server(hub, who, method, path, **kwargs):
    return who.session.request(method, f"{hub.url}/user/{who.name}/{path}", timeout=60,
                               headers={"Authorization": f"token {who.token}"}, **kwargs)


def server_token(who) -> str:
    """The API token the hub gave the learner's server, read from that process (we are root)."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"jupyterhub-singleuser" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(kv.split("=", 1) for kv in (proc / "environ").read_bytes().decode().split("\0") if "=" in kv)
        except OSError:
            continue
        if env.get("JUPYTERHUB_USER") == who.name:
            return env["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no server process of {who.name}")


def test_session_says_when_the_chosen_hours_end_and_where_help_is(hub):
    """Does the learner's server report the end the hub set (start + 1 h), the profile's maximum and the help links?"""
    who, before = start(hub)
    session = server(hub, who, "GET", "academy/api/session").json()
    walltime = session["walltime"]
    assert walltime["source"] == "local" and walltime["hours"] == 1 and walltime["max_hours"] == 2
    assert before + 3600 - 5 <= walltime["end"] <= time.time() + 3600
    assert walltime["extendable"] is True
    assert session["help"] == {"url": HELP, "email": "help@example.org", "ask_trainer_url": ""}
    assert session["welcome"] == "ai-factory-academy/00_welcome.ipynb"
    assert session["curriculum"] == "ai-factory-academy"
    hub.api("DELETE", f"/users/{who.name}/server", who.token)


def test_more_time_moves_the_end_within_the_maximum_and_refuses_beyond(hub):
    """Does More time add an hour up to the profile's 2 h, and refuse a third with a message that says why?"""
    who, _ = start(hub)
    end = server(hub, who, "GET", "academy/api/session").json()["walltime"]["end"]
    r = server(hub, who, "POST", "academy/api/walltime/extend", json={"hours": 1})
    assert r.status_code == 200, r.text
    walltime = r.json()["walltime"]
    assert walltime["hours"] == 2 and abs(walltime["end"] - (end + 3600)) < 2
    assert server(hub, who, "GET", "academy/api/session").json()["walltime"]["end"] == walltime["end"]
    refused = server(hub, who, "POST", "academy/api/walltime/extend", json={"hours": 1})
    assert refused.status_code == 400
    assert "at most 2 h" in refused.json()["message"] and "no more time" in refused.json()["message"]
    assert server(hub, who, "GET", "academy/api/session").json()["walltime"]["end"] == walltime["end"]
    hub.api("DELETE", f"/users/{who.name}/server", who.token)


def test_a_student_cannot_talk_the_hub_into_more_time(hub):
    """Can a student skip the maximum, or extend with their own hub token, by calling the hub API directly?"""
    who, _ = start(hub)
    own = hub.api("POST", "/academy/walltime", who.token, json={"hours": 1})
    assert own.status_code == 403, "a personal hub token is not a server's token"
    token = server_token(who)
    for body in ({"hours": 5}, {"hours": 1, "exec_prefix": "touch /tmp/x"}, {"hours": True}, {"hours": "1"},
                 {"hours": -1}, [1]):
        r = hub.api("POST", "/academy/walltime", token, json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
    assert server(hub, who, "GET", "academy/api/session").json()["walltime"]["hours"] == 1
    assert hub.api("POST", "/academy/walltime", "not-a-token", json={"hours": 1}).status_code == 403
    hub.api("DELETE", f"/users/{who.name}/server", who.token)


def test_terminal_finds_the_learner_environment(hub):
    """Does a JupyterLab terminal (a login shell as the learner's own account, through the proxy) find academy,
    python, pip and jupyter of the learner environment, even after a ~/.bash_profile that resets PATH, does
    `academy course fetch` work there, and can pip never write into the shared environment?"""
    who, _ = start(hub)
    home = hub.state_dir / "homes" / who.name
    # What a learner's own login files may do; /etc/profile does the same on Debian.
    (home / ".bash_profile").write_text("export PATH=/usr/bin:/bin\n")
    shutil.chown(home / ".bash_profile", f"acad-{who.name}")
    # A released course with this learner's exchange folders, made as a trainer (root) would.
    shared = shared_tiny_course("academy-terminal-")
    where = ["course", "--course-dir", str(shared / "course"), "--exchange-dir", str(shared / "exchange")]
    for step in (["setup", "--students", who.name, "--account-prefix", "acad-"], ["release", ASSIGNMENT]):
        proc = run_academy(*where, "--state-dir", str(shared / "state"), *step)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    r = server(hub, who, "POST", "api/terminals")
    assert r.status_code == 200, r.text
    command = (f"cd ~ && academy {' '.join(where)} fetch {ASSIGNMENT} && ls {ASSIGNMENT}; "
               "id -un; for c in academy python pip jupyter; do echo \"$c=$(command -v $c)\"; done; pip --version; "
               "academy course --help | head -3; "
               "site=$(python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))'); "
               "test -w \"$site\" && echo \"shared=writable\" || echo \"shared=read-only\"; "
               "pip install --user --no-index six >/dev/null 2>&1; echo \"user-install=$?\"; echo DONE-$((6*7))")
    out = terminal_run(hub, who, r.json()["name"], command, "DONE-42")
    assert "DONE-42" in out, out
    env_bin = Path(sys.executable).parent
    assert f"acad-{who.name}" in out, out
    for tool in ("academy", "python", "pip", "jupyter"):
        assert f"{tool}={env_bin}/{tool}" in out, (tool, out)
    assert f"from {env_bin.parent}/lib/" in out, out  # pip --version: the shared environment's pip
    assert "usage: academy course" in out, out
    # The learner cannot write the shared environment; pip's --user is refused there (venv without a user
    # site), so learners install into their own environments (`academy env create`, README).
    assert "shared=read-only" in out and "user-install=1" in out, out
    assert f"fetched {ASSIGNMENT}" in out and (home / ASSIGNMENT / f"{NOTEBOOK}.ipynb").is_file(), out
    hub.api("DELETE", f"/users/{who.name}/server", who.token)
    shutil.rmtree(shared, ignore_errors=True)
