"""A written answer graded by hand in the Formgrader, through a real hub, by a real participant (Unix user).

The course holds the tiny course's ``w1`` (testbed/tiny_course.py): one manually graded markdown cell. A
trainer releases it to a one-participant workshop, the participant writes an answer and submits it as
their own ``acad-`` account, the trainer collects and autogrades through the workshop page, then scores the
answer in nbgrader's Formgrader (/services/formgrader/, behind the hub's login) and exports again.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
import requests
from support.skip import need

from testbed import tiny_course
from testbed.hub import _RUN
from support.hub import running_hub
from support.course import make_layout, run_academy, sandbox_available, shared_tiny_course
from support.workshop import make_trainer, post_form, service_url, sheet_credentials, track, unix_account, workshop_form, xsrf

pytestmark = [pytest.mark.hub, pytest.mark.grading]

SLUG = f"wa{_RUN}"
ANSWER = "Thousands of cores each take a slice of the matrix products at the same time"
ASSIGNMENT, NOTEBOOK = tiny_course.WRITTEN_ASSIGNMENT, tiny_course.WRITTEN_NOTEBOOK


@pytest.fixture(scope="module")
def essay_hub():
    need(sandbox_available() and shutil.which("runuser") is not None, "root with bubblewrap, prlimit, setpriv, useradd and runuser")
    shared = shared_tiny_course("academy-wa-")
    folder = tiny_course.write_written_source(shared / "course")
    for path in (folder, *folder.iterdir()):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    state = Path(tempfile.mkdtemp(prefix="academy-wa-state-"))  # 0700 root, as the course state must be
    course = {"course_dir": str(shared / "course"), "state_dir": str(state), "exchange_dir": str(shared / "exchange")}
    site = {"workshops": {"course": course, "formgrader": {"enabled": True}}}
    with running_hub("wa", site=site) as hub:
        hub.layout = make_layout(shared / "course", state, shared / "exchange")
        yield hub
    shutil.rmtree(shared, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)


def _post(session, hub, path: str, data: dict) -> requests.Response:
    token = xsrf(session, hub, f"w/{SLUG}")
    return session.post(service_url(hub, path), data={"_xsrf": token, **data}, timeout=120, allow_redirects=False)


def _run_action(trainer, hub, action: str, **data) -> dict:
    """Start one course-work action from the workshop page and follow its status line to the end."""
    r = _post(trainer.session, hub, f"w/{SLUG}/coursework/{action}", data)
    assert r.status_code == 303, r.text[-1500:]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        view = trainer.session.get(service_url(hub, f"api/workshops/{SLUG}/coursework"), timeout=60).json()
        if view["status"]["state"] != "running":
            assert view["status"]["action"] == action and view["status"]["state"] == "done", view["status"]
            return view
        time.sleep(1)
    raise TimeoutError("course-work action still running" + hub.log_tail())


def _formgrader(session, hub, path: str = "") -> requests.Response:
    return session.get(f"{hub.url}/services/formgrader/formgrader/{path}", timeout=120)


def _write_and_submit(hub, name: str) -> None:
    """The participant fetches w1, writes ANSWER into the answer cell and submits, as their own Unix account."""
    layout, account = hub.layout, unix_account(name)
    home, path = Path(account.pw_dir), Path(account.pw_dir) / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    where = ["course", "--course-dir", str(layout.course_dir), "--exchange-dir", str(layout.exchange_dir)]
    env = {"JUPYTERHUB_USER": name}
    proc = run_academy(*where, "fetch", ASSIGNMENT, user=account.pw_name, cwd=str(home), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == tiny_course.WRITTEN_ID)
    assert ANSWER not in cell.source and "model answer" not in cell.source, cell.source
    cell.source = ANSWER
    path.write_text(nbformat.writes(nb))
    os.chown(path, account.pw_uid, account.pw_gid)
    proc = run_academy(*where, "submit", ASSIGNMENT, user=account.pw_name, cwd=str(home), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_trainer_scores_a_written_answer_in_formgrader(essay_hub):
    """Does a participant's written answer reach the trainer in the Formgrader as they wrote it, does the trainer's hand score land in the gradebook and the re-run export, and is the participant refused (403) when they try to grade it?"""
    from nbgrader.api import Gradebook

    hub = essay_hub
    trainer = make_trainer(hub, "trwa")
    name = f"{SLUG}-01"
    track(name)
    r = post_form(trainer.session, hub, "new", workshop_form(SLUG, count="1", assignments=ASSIGNMENT))
    assert r.status_code == 200, r.text[-1500:]
    creds = sheet_credentials(r.text)
    r = _post(trainer.session, hub, f"w/{SLUG}/release", {"kind": "assignment", "name": ASSIGNMENT})
    assert r.status_code == 200 and "released 1 notebook" in r.text, r.text[-1500:]
    _write_and_submit(hub, name)
    _run_action(trainer, hub, "collect")
    _run_action(trainer, hub, "autograde", jobs="2")
    # The Formgrader, reached through the hub's login, shows the answer waiting for a hand grade.
    assert _formgrader(trainer.session, hub).status_code == 200
    subs = {s["student"]: s for s in _formgrader(trainer.session, hub, f"api/submitted_notebooks/{ASSIGNMENT}/{NOTEBOOK}").json()}
    assert subs[name]["needs_manual_grade"], subs[name]
    grades = _formgrader(trainer.session, hub, f"api/grades?submission_id={subs[name]['id']}").json()
    grade = next(g for g in grades if g["name"] == tiny_course.WRITTEN_ID)
    assert grade["needs_manual_grade"] and grade["auto_score"] is None and grade["max_score"] == tiny_course.WRITTEN_POINTS, grade
    view = _formgrader(trainer.session, hub, f"submissions/{subs[name]['id']}/")
    assert view.status_code == 200 and ANSWER in view.text, view.text[-1500:]
    xsrf_cookie = next(c.value for c in trainer.session.cookies if c.name == "_xsrf" and c.path.startswith("/services/formgrader"))
    grade_url = f"{hub.url}/services/formgrader/formgrader/api/grade/{grade['id']}"
    r = trainer.session.put(grade_url, json={"manual_score": 3}, headers={"X-XSRFToken": xsrf_cookie}, timeout=60)
    assert r.status_code == 200 and r.json()["manual_score"] == 3, r.text[-800:]
    with Gradebook(hub.layout.db_url) as gb:
        sub = gb.find_submission(ASSIGNMENT, name)
        mine = next(g for g in sub.notebooks[0].grades if g.name == tiny_course.WRITTEN_ID)
        assert mine.manual_score == 3 and not mine.needs_manual_grade and sub.score == 3, (mine.manual_score, sub.score)
    # The export, run again, carries the hand grade.
    _run_action(trainer, hub, "export")
    r = trainer.session.get(service_url(hub, f"w/{SLUG}/coursework/download/grades.csv"), timeout=60)
    assert r.status_code == 200, r.status_code
    assert {row["student_id"]: float(row["score"]) for row in csv.DictReader(io.StringIO(r.text))} == {name: 3.0}
    # The participant tries to grade themselves: through the hub's login with a forged XSRF pair, and with their API token.
    participant = hub.login(name, creds[name])
    token = hub.token_for(participant, name)  # before the Formgrader's own _xsrf cookie joins the hub's
    assert _formgrader(participant, hub).status_code == 403
    participant.cookies.set("_xsrf", "forged", path="/services/formgrader/")
    r = participant.put(grade_url, json={"manual_score": 4}, headers={"X-XSRFToken": "forged"}, timeout=60, allow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    r = requests.put(grade_url, json={"manual_score": 4}, headers={"Authorization": f"token {token}"}, timeout=60, allow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    with Gradebook(hub.layout.db_url) as gb:
        assert gb.find_submission(ASSIGNMENT, name).score == 3
