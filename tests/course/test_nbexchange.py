"""nbgrader's Assignments panel on our exchange, driven as the panel drives it, by real Unix learners.

Each learner call runs nbgrader's own panel back end (``AssignmentList`` of the assignment_list server
extension) as that learner, with the learner servers' ``JUPYTER_CONFIG_PATH`` (hub/singleuser), so
the nbgrader config a learner's JupyterLab loads picks our classes.  Two courses share one exchange:
``academy-p1`` is in both, ``academy-p2`` only in the first.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from support.skip import need

from academy.course.exchange import course_root

from testbed import tiny_course
from support.course import REPO, make_layout, run_academy, shared_tiny_course

LEARNERS = ("academy-p1", "academy-p2")
A = tiny_course.ASSIGNMENT

PANEL = """
import json, os, sys
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList
m = AssignmentList()
m.root_dir = os.getcwd()
action, args = sys.argv[1], sys.argv[2:]
if action == "courses":
    out = m.list_courses()
elif action == "list":
    out = m.list_assignments(course_id=args[0] if args else None)
else:
    out = getattr(m, {"fetch": "fetch_assignment", "submit": "submit_assignment",
                      "feedback": "fetch_feedback"}[action])(*args)
print("PANEL:" + json.dumps(out))
"""


def panel(user: str, action: str, *args: str, env: dict | None = None) -> dict:
    """One call of nbgrader's panel back end as ``user`` in their home; returns its JSON answer."""
    home = pwd.getpwnam(user).pw_dir
    base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
            "JUPYTER_CONFIG_PATH": str(REPO / "hub" / "singleuser"), **(env or {})}
    proc = subprocess.run([shutil.which("runuser"), "-u", user, "--", sys.executable, "-c", PANEL, action, *args], cwd=home,
                          env=base, capture_output=True, text=True, timeout=120)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PANEL:")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    return json.loads(lines[-1][len("PANEL:"):])


def _as(user: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True, timeout=60)


def _released(listing: dict, course: str) -> list[dict]:
    return [x for x in listing["value"] if x["course_id"] == course and x["status"] != "submitted"]


def _submitted(listing: dict, course: str) -> list[dict]:
    return [s for x in listing["value"] if x["course_id"] == course and x["status"] == "submitted"
            for s in x["submissions"]]


@pytest.fixture(scope="module")
def learners():
    need(os.geteuid() == 0 and shutil.which("runuser") is not None, "root and runuser (real Unix learners)")
    for name in LEARNERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        home = Path(pwd.getpwnam(name).pw_dir)
        for leftover in (home / A, home / ".local" / "share" / "jupyter" / "nbgrader_cache"):
            shutil.rmtree(leftover, ignore_errors=True)
    return LEARNERS


@pytest.fixture(scope="module")
def courses(tmp_path_factory, learners, grader_account):
    """Course 'tiny' (both learners) and 'tiny2' (p1 only, due date passed), released into one exchange."""
    shared = shared_tiny_course("academy-nbexchange-test-")
    second = shared / "course2"
    shutil.copytree(shared / "course", second)
    (second / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'tiny2'\n")
    layouts = {}
    for course_dir, members in ((shared / "course", learners), (second, learners[:1])):
        layout = make_layout(course_dir, tmp_path_factory.mktemp("state"), shared / "exchange")
        where = ["course", "--course-dir", str(course_dir), "--exchange-dir", str(layout.exchange_dir),
                 "--state-dir", str(layout.state_dir)]
        proc = run_academy(*where, "setup", "--students", ",".join(members))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        if layout.course_id == "tiny2":
            from nbgrader.api import Gradebook
            with Gradebook(layout.db_url, layout.course_id) as gb:
                gb.update_or_create_assignment(A, duedate=dt.datetime(2001, 1, 1))
        proc = run_academy(*where, "release", A)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        layouts[layout.course_id] = (layout, where)
    yield layouts
    shutil.rmtree(shared, ignore_errors=True)


def _env(layouts) -> dict:
    return {"ACADEMY_EXCHANGE_DIR": str(layouts["tiny"][0].exchange_dir)}


@pytest.mark.grading
def test_panel_lists_the_courses_a_learner_is_in(courses, learners):
    """Does each learner see exactly their own courses, with the released assignment and its due date?"""
    env = _env(courses)
    assert panel(learners[0], "courses", env=env) == {"success": True, "value": ["tiny", "tiny2"]}
    assert panel(learners[1], "courses", env=env) == {"success": True, "value": ["tiny"]}
    only = dict(env, ACADEMY_COURSE_IDS="tiny")
    assert panel(learners[0], "courses", env=only)["value"] == ["tiny"]
    listing = panel(learners[0], "list", "tiny2", env=env)
    [released] = _released(listing, "tiny2")
    assert released["status"] == "released" and released["assignment_id"] == A
    assert released["duedate"].startswith("2001-01-01")
    # nbgrader's handler turns every list error into "exchange does not exist": an empty list is clearer
    assert panel(learners[1], "list", "tiny2", env=env) == {"success": True, "value": []}
    assert panel(learners[1], "list", "no-such-course", env=env) == {"success": True, "value": []}


@pytest.mark.grading
def test_fetch_submit_history_and_feedback_through_the_panel(courses, learners):
    """Fetch, submit (a forged timestamp.txt and a symlink planted), re-submit only after a second press, the
    system's times in the history; after collect, autograde and feedback, does Fetch Feedback put the
    HTML in the home for the submission that was graded?"""
    env, me = _env(courses), learners[0]
    home = Path(pwd.getpwnam(me).pw_dir)
    answer = panel(me, "fetch", "tiny", A, env=env)
    assert answer["success"], answer
    assert _released(panel(me, "list", "tiny", env=env), "tiny")[0]["status"] == "fetched"
    nb = tiny_course.make_submission(home / A / f"{tiny_course.NOTEBOOK}.ipynb", tiny_course.SOLUTIONS)
    work = home / A
    nbformat.write(nb, work / f"{tiny_course.NOTEBOOK}.ipynb")
    forged = _as(me, "sh", "-c", f"echo '2000-01-01 00:00:00.000000 UTC' > {work}/timestamp.txt && "
                                 f"ln -s /etc/hostname {work}/linked.txt")
    assert forged.returncode == 0, forged.stderr
    before = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    first = panel(me, "submit", "tiny", A, env=env)
    assert first["success"], first
    inbound = course_root(courses["tiny"][0]) / "inbound" / me / A
    assert not (inbound / "linked.txt").exists() and not (inbound / "linked.txt").is_symlink()
    again = panel(me, "submit", "tiny", A, env=env)
    said = " ".join(again["value"].split())  # the reason is wrapped onto short lines for the panel's box
    assert again["success"] is False and "You already submitted t1 at" in said and "Submit again" in said, said
    reason = again["value"].rsplit("ExchangeError: ", 1)[1]  # after the traceback the panel shows
    assert reason.strip().startswith("You already submitted") and max(map(len, reason.splitlines())) <= 90, reason
    assert len(_submitted(panel(me, "list", "tiny", env=env), "tiny")) == 1
    confirmed = panel(me, "submit", "tiny", A, env=env)
    assert confirmed["success"], confirmed
    history = _submitted(panel(me, "list", "tiny", env=env), "tiny")
    assert len(history) == 2
    after = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert all(before <= s["timestamp"] <= after + " UTC" for s in history), (before, history, after)
    layout, where = courses["tiny"]
    for step in (["collect", A], ["autograde", A, "--jobs", "1"], ["feedback", A]):
        proc = run_academy(*where, *step)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    graded = (layout.step_dir("submitted", me, A) / "timestamp.txt").read_text()
    assert graded == history[-1]["timestamp"]  # collect (root) saw the time the panel showed
    waiting = _submitted(panel(me, "list", "tiny", env=env), "tiny")
    assert [s["has_exchange_feedback"] for s in waiting] == [False, True]
    fetched = panel(me, "feedback", "tiny", A, env=env)
    assert fetched["success"], fetched
    html = home / A / "feedback" / graded / f"{tiny_course.NOTEBOOK}.html"
    assert html.is_file() and html.stat().st_uid == pwd.getpwnam(me).pw_uid
    assert tiny_course.HIDDEN_LINE not in html.read_text()
    latest = _submitted(panel(me, "list", "tiny", env=env), "tiny")[-1]
    assert latest["has_local_feedback"] and latest["local_feedback_path"] == f"{A}/feedback/{graded}"


@pytest.mark.grading
def test_late_submission_needs_a_second_press(courses, learners):
    """After the due date, does the first Submit say it is late and only the second one submit?"""
    env, me = _env(courses), learners[0]
    home = Path(pwd.getpwnam(me).pw_dir)
    shutil.rmtree(home / A, ignore_errors=True)
    assert panel(me, "fetch", "tiny2", A, env=env)["success"]
    first = panel(me, "submit", "tiny2", A, env=env)
    said = " ".join(first["value"].split())
    assert first["success"] is False and "The due date of t1 was 2001-01-01" in said and "will be late" in said, said
    assert not (course_root(courses["tiny2"][0]) / "inbound" / me / A).exists()
    assert panel(me, "submit", "tiny2", A, env=env)["success"]
    assert (course_root(courses["tiny2"][0]) / "inbound" / me / A).is_dir()


@pytest.mark.grading
def test_hostile_learner_gets_nothing_of_another(courses, learners):
    """Can a learner reach another's submission or feedback, or leave their box, by claiming another name,
    sending a course or assignment id with path characters, or using a course they are not in?"""
    env, thief, victim = _env(courses), learners[1], learners[0]
    home = Path(pwd.getpwnam(thief).pw_dir)
    posing = dict(env, JUPYTERHUB_USER=victim)
    assert panel(thief, "courses", env=posing)["value"] == []
    stolen = panel(thief, "feedback", "tiny", A, env=posing)
    assert stolen["success"] is False and "belongs to another account" in stolen["value"], stolen["value"][-300:]
    assert not (home / A / "feedback").exists()
    for course, assignment in (("../tiny", A), ("tiny/../tiny2", A), ("tiny", "../inbound"),
                               ("tiny", f"{A}/../../tiny2/outbound/{A}"), ("tiny", ".hidden")):
        answer = panel(thief, "fetch", course, assignment, env=env)
        assert answer["success"] is False and "invalid" in answer["value"], (course, assignment, answer)
    assert panel(thief, "fetch", "tiny2", A, env=env)["success"] is False
    not_released = panel(thief, "submit", "tiny", "t9", env=env)
    assert not_released["success"] is False
    listed = panel(thief, "list", "tiny", env=env)
    assert _submitted(listed, "tiny") == []  # p1's submissions are not in p2's history
    inbound = course_root(courses["tiny"][0]) / "inbound"
    assert _as(thief, "ls", str(inbound / victim)).returncode != 0
    assert _as(thief, "ls", str(course_root(courses["tiny"][0]) / "feedback" / victim)).returncode != 0


@pytest.mark.grading
def test_cli_runs_the_same_classes(courses, learners):
    """Do `academy course fetch / submit / fetch-feedback` work through the same classes, ask which course when
    the learner is in several, and show up in the panel's history?"""
    env, me = _env(courses), learners[1]
    home = Path(pwd.getpwnam(me).pw_dir)
    shutil.rmtree(home / A, ignore_errors=True)
    both = dict(env, ACADEMY_COURSE_IDS="tiny,tiny2")
    proc = run_academy("course", "fetch", A, user=me, cwd=str(home), env=both)
    assert proc.returncode == 2 and "--course" in proc.stderr, proc.stdout + proc.stderr
    one = dict(env, ACADEMY_COURSE_IDS="tiny")
    proc = run_academy("course", "fetch", A, user=me, cwd=str(home), env=one)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_academy("course", "submit", A, user=me, cwd=str(home), env=one)
    assert proc.returncode == 0 and "submitted t1 at 20" in proc.stdout, proc.stdout + proc.stderr
    assert len(_submitted(panel(me, "list", "tiny", env=one), "tiny")) == 1
    proc = run_academy("course", "fetch-feedback", A, user=me, cwd=str(home), env=one)
    assert proc.returncode == 2 and "No feedback" in proc.stderr, proc.stdout + proc.stderr


@pytest.mark.grading
def test_stock_nbgrader_collect_uses_our_exchange(courses, learners):
    """Does stock `nbgrader collect` in the course root (as root) collect with the system's time, like ours?"""
    layout, _ = courses["tiny2"]
    target = layout.step_dir("submitted", learners[0], A)
    shutil.rmtree(target, ignore_errors=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "collect", A], cwd=layout.root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stamp = (target / "timestamp.txt").read_text()
    assert stamp.startswith(dt.datetime.now(dt.timezone.utc).strftime("%Y-")) and (target / "problems.ipynb").is_file()
    assert json.loads((layout.root / "receipts" / A / f"{learners[0]}.json").read_text())["submitted_at"]
