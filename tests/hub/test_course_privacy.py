"""Course sources and grading state closed to learners on a running site (real hub and proxy, real `acad-`
learner accounts, real nbgrader), with the course configured only through the site config's ``course:``.

One module-scoped hub runs two courses: the tiny course in its own folder outside the checkout and the
built-in demonstration course (the checkout's ``course/``).  `academy up` closes both courses' sources;
a learner's server is told only the exchange root and the course ids; the learner fetches and submits
from those alone (the course directory is closed to them); the trainer grades with `academy --config`.
Then the learner tries to read everything the course keeps private.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from support.skip import need

from testbed import tiny_course
from testbed.hub import REPO, make_learner
from support.course import run_academy, sandbox_available, shared_tiny_course
from support.hub import running_hub
from support.workshop import unix_account

pytestmark = [pytest.mark.hub, pytest.mark.grading]


@pytest.fixture(scope="module")
def private_site():
    need(sandbox_available() and shutil.which("runuser") is not None, "root with bubblewrap, prlimit, setpriv, useradd and runuser")
    shared = shared_tiny_course("academy-priv-")
    os.chmod(shared / "course" / "source", 0o755)  # as a trainer might leave it: `academy up` must close it
    course = {"exchange_dir": str(shared / "exchange"), "limits": {"cell_timeout": 20, "jobs": 1},
              "courses": [{"id": "tiny", "directory": str(shared / "course")},
                          {"id": "ai-factory-101", "directory": str(REPO / "course")}]}
    with running_hub("priv", site={"course": course}) as hub:
        hub.shared = shared
        yield hub
    shutil.rmtree(shared, ignore_errors=True)


def _server_env(account: str, timeout: float = 30) -> dict[str, str]:
    """The environment of the learner's running single-user server, read from /proc as root."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = subprocess.run(["pgrep", "-u", account], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                raw = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
            if "JUPYTERHUB_API_TOKEN" in env:
                return env
        time.sleep(0.5)
    raise AssertionError(f"no server process of {account}")


@pytest.fixture(scope="module")
def private_graded(private_site):
    """A learner with a running server submits t1 using only what the hub told the server; the trainer grades it."""
    hub = private_site
    learner = make_learner(hub, "priv")
    r = hub.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(learner.name, learner.token)
    account = unix_account(learner.name)
    env = _server_env(account.pw_name)
    trainer = ["--config", str(hub.config_path), "course", "--course", "tiny"]
    proc = run_academy(*trainer, "setup", "--students", learner.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_academy(*trainer, "release", "t1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    os.chmod(hub.shared / "course", 0o700)  # the learner's commands must not need the course directory at all
    home = Path(account.pw_dir)
    evil = home / "evil"  # the learner's own "course", offered to the commands
    evil.mkdir()
    (evil / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'tiny'\n")
    learner_env = {k: env[k] for k in ("ACADEMY_EXCHANGE_DIR", "ACADEMY_COURSE_IDS", "JUPYTERHUB_USER")}
    learner_env["ACADEMY_COURSE_DIR"] = str(evil)
    student = ["course", "--course", "tiny", "--course-dir", str(evil)]
    proc = run_academy(*student, "fetch", "t1", user=account.pw_name, cwd=str(home), env=learner_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = tiny_course.make_submission(home / "t1" / "problems.ipynb", tiny_course.SOLUTIONS)
    (home / "t1" / "problems.ipynb").write_text(nbformat.writes(nb))
    os.chown(home / "t1" / "problems.ipynb", account.pw_uid, account.pw_gid)
    proc = run_academy(*student, "submit", "t1", user=account.pw_name, cwd=str(home), env=learner_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in (["collect", "t1"], ["autograde", "t1"], ["feedback", "t1"], ["export"]):
        proc = run_academy(*trainer, *step)
        assert proc.returncode == 0, step + [proc.stdout + proc.stderr]
    return hub, learner, account, env


def _as(account, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", account.pw_name, "--", *argv], capture_output=True, text=True, timeout=120)


def test_learner_servers_are_told_the_exchange_and_course_ids_only(private_graded):
    """Does the learner's running server get ACADEMY_EXCHANGE_DIR and ACADEMY_COURSE_IDS, and nothing naming a course dir or gradebook?"""
    hub, _, _, env = private_graded
    assert env["ACADEMY_EXCHANGE_DIR"] == str(hub.shared / "exchange")
    assert env["ACADEMY_COURSE_IDS"] == "tiny,ai-factory-101"
    leaks = {k: v for k, v in env.items() if str(hub.shared / "course") in v or "courses/" in v
             or "gradebook" in v.lower() or k in ("ACADEMY_COURSE_DIR", "ACADEMY_STATE_DIR", "ACADEMY_GRADEBOOK_URL")}
    assert leaks == {}


def test_the_learners_submission_was_graded_against_the_real_hidden_tests(private_graded):
    """Did the submission made with only the server's variables (and a planted course dir) score full marks from the real course?"""
    hub, learner, _, _ = private_graded
    with open(hub.state_dir / "courses" / "tiny" / "export" / "grades.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["student_id"] == learner.name and r["assignment"] == "t1"]
    assert len(rows) == 1 and float(rows[0]["score"]) == tiny_course.expected_score(tiny_course.SOLUTIONS), rows


def test_a_learner_cannot_read_any_course_source_or_grading_state(private_graded):
    """Can a learner account read source notebooks (site course and the checkout's built-in one), the gradebook,
    autograded or feedback files, or the export? (Every attempt must be denied.)"""
    hub, learner, account, _ = private_graded
    state = hub.state_dir / "courses" / "tiny"
    secrets = {
        "site course source": hub.shared / "course" / "source" / "t1" / "problems.ipynb",
        "site course folder (closed by this test: students never need it)": hub.shared / "course" / "nbgrader_config.py",
        "built-in course source": REPO / "course" / "source" / sorted(os.listdir(REPO / "course" / "source"))[0],
        "gradebook": state / "gradebook.db",
        "autograded": state / "course" / "autograded" / learner.name / "t1" / "problems.ipynb",
        "feedback in the state": state / "course" / "feedback" / learner.name / "t1" / "problems.html",
        "export": state / "export" / "grades.csv",
        "generated nbgrader config": state / "course" / "nbgrader_config.py",
    }
    for what, path in secrets.items():
        assert path.exists(), what  # as root: it is there, so a denial below is a real one
        target = ["/usr/bin/cat", str(path)] if path.is_file() else ["/usr/bin/ls", str(path)]
        proc = _as(account, *target)
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, (what, proc.stdout[:200])
    for folder in (state, REPO / "course" / "source", hub.shared / "course" / "source"):
        proc = _as(account, "/usr/bin/ls", str(folder))
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, folder


def test_a_learner_running_trainer_steps_is_refused_without_a_traceback(private_graded):
    """Does a learner running `academy course autograde/export` (even with their own --course-dir) get a clear refusal?"""
    hub, learner, account, env = private_graded
    home = Path(account.pw_dir)
    learner_env = {k: env[k] for k in ("ACADEMY_EXCHANGE_DIR", "ACADEMY_COURSE_IDS", "JUPYTERHUB_USER")}
    for argv in (["--config", str(hub.config_path), "course", "--course", "tiny", "autograde", "t1"],
                 ["--config", str(hub.config_path), "course", "--course-dir", str(home / "evil"), "export"]):
        proc = run_academy(*argv, user=account.pw_name, cwd=str(home), env=learner_env)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-800:]
        assert proc.stderr.startswith("academy course"), proc.stderr[-800:]
