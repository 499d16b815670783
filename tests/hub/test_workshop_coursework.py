"""Course work from the workshop page against a real hub, real participants (Unix users), real nbgrader.

One module-scoped hub grades the tiny course (testbed/tiny_course.py): a trainer releases it, two
participants fetch and submit it as their own ``acad-`` accounts, and the trainer collects,
autogrades, returns feedback and downloads the export through the service.
"""
from __future__ import annotations

import csv
import io
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
import requests
from support.skip import need

from testbed import tiny_course
from testbed.hub import ACADEMY, REPO, _RUN
from support.hub import running_hub
from support.course import make_layout, run_academy, sandbox_available, shared_tiny_course
from support.workshop import make_trainer, post_form, service_url, sheet_credentials, track, unix_account, workshop_form, xsrf

pytestmark = [pytest.mark.hub, pytest.mark.grading]

SLUG = f"cw{_RUN}"
HOSTILE = "hostile-markup-here"


@pytest.fixture(scope="module")
def course_hub():
    need(sandbox_available() and shutil.which("runuser") is not None, "root with bubblewrap, prlimit, setpriv, useradd and runuser")
    shared = shared_tiny_course("academy-cw-")
    state = Path(tempfile.mkdtemp(prefix="academy-cw-state-"))  # 0700 root, as the course state must be
    course = {"course_dir": str(shared / "course"), "state_dir": str(state), "exchange_dir": str(shared / "exchange")}
    site = {"workshops": {"course": course, "formgrader": {"enabled": True}}}
    with running_hub("cw", site=site) as hub:
        hub.layout = make_layout(shared / "course", state, shared / "exchange")
        yield hub
    shutil.rmtree(shared, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)


def _as(user: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True, timeout=60)


def _post(session, hub, path: str, data: dict) -> requests.Response:
    token = xsrf(session, hub, f"w/{SLUG}")
    return session.post(service_url(hub, path), data={"_xsrf": token, **data}, timeout=120, allow_redirects=False)


def _wait(session, hub, timeout: float = 300) -> dict:
    """Follow the status line's API until the running action ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = session.get(service_url(hub, f"api/workshops/{SLUG}/coursework"), timeout=60).json()
        if view["status"]["state"] != "running":
            return view
        time.sleep(1)
    raise TimeoutError("course-work action still running" + hub.log_tail())


def _run_action(trainer, hub, action: str, **data) -> dict:
    r = _post(trainer.session, hub, f"w/{SLUG}/coursework/{action}", data)
    assert r.status_code == 303, r.text[-1500:]
    view = _wait(trainer.session, hub)
    assert view["status"]["action"] == action and view["status"]["state"] == "done", view["status"]
    return view


def _submit(hub, participant: str, answers: dict) -> None:
    """The participant fetches and submits as their own Unix account, as a terminal in their server would."""
    account = unix_account(participant)
    home = Path(account.pw_dir)
    layout = hub.layout
    where = ["course", "--course-dir", str(layout.course_dir), "--exchange-dir", str(layout.exchange_dir)]
    env = {"JUPYTERHUB_USER": participant}
    proc = run_academy(*where, "fetch", "t1", user=account.pw_name, cwd=str(home), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = tiny_course.make_submission(home / "t1" / "problems.ipynb", answers)
    nb.cells.append(nbformat.v4.new_markdown_cell(f'My notes <img src="x" onerror="alert(1)"> {HOSTILE}'))
    (home / "t1" / "problems.ipynb").write_text(nbformat.writes(nb))
    os.chown(home / "t1" / "problems.ipynb", account.pw_uid, account.pw_gid)
    proc = run_academy(*where, "submit", "t1", user=account.pw_name, cwd=str(home), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def graded(course_hub):
    """Workshop with two participants who submitted (one right, one wrong), a released t1, a stranger's submission."""
    hub = course_hub
    trainer = make_trainer(hub, "trcw")
    track(f"{SLUG}-01", f"{SLUG}-02")
    r = post_form(trainer.session, hub, "new", workshop_form(SLUG, count="2", assignments="t1"))
    assert r.status_code == 200, r.text[-1500:]
    creds = sheet_credentials(r.text)
    r = _post(trainer.session, hub, f"w/{SLUG}/release", {"kind": "assignment", "name": "t1"})
    assert r.status_code == 200 and "released 1 notebook" in r.text, r.text[-1500:]
    answers = {f"{SLUG}-01": tiny_course.SOLUTIONS, f"{SLUG}-02": tiny_course.WRONG}
    for name, ans in answers.items():
        _submit(hub, name, ans)
    # Someone outside the workshop has a collected submission and a gradebook entry: it must stay out of everything.
    from nbgrader.api import Gradebook
    from support.course import place_submission
    place_submission(hub.layout, "stranger", "t1", {"problems.ipynb": tiny_course.make_submission(
        hub.layout.step_dir("release", ".", "t1") / "problems.ipynb", tiny_course.SOLUTIONS)})
    with Gradebook(hub.layout.db_url) as gb:
        gb.update_or_create_student("stranger")
    return trainer, creds, answers


def test_trainer_collects_autogrades_returns_feedback_and_downloads_the_export(course_hub, graded):
    """Do the page's Collect, Autograde (2 jobs), Feedback and Export grade exactly the two participants, and can the trainer download the results?"""
    hub, (trainer, creds, answers) = course_hub, graded
    page = trainer.session.get(service_url(hub, f"w/{SLUG}"), timeout=60).text
    for action in ("collect", "autograde", "feedback", "export"):
        assert f'id="cw-button-{action}"' in page
    view = _run_action(trainer, hub, "collect")
    assert sorted((r["participant"], r["status"]) for r in view["status"]["results"]) == [
        (f"{SLUG}-01", "collected"), (f"{SLUG}-02", "collected")]
    view = _run_action(trainer, hub, "autograde", jobs="2")
    assert view["status"]["done"] == view["status"]["total"] == 2
    from support.course import scores
    assert scores(hub.layout.db_url, "t1") == {n: tiny_course.expected_score(a) for n, a in answers.items()}
    assert not (hub.layout.reports_dir("t1") / "stranger.json").exists(), "a non-participant was graded"
    # The live dashboard's Assignments column says the same, read from the course's folders at its next refresh.
    def column():
        rows = trainer.session.get(service_url(hub, f"api/workshops/{SLUG}/dashboard"), timeout=60).json()["rows"]
        return {r["user"]: [(c["assignment"], c["stage"], c["score"]) for c in r["assignments"]] for r in rows}
    want = {n: [("t1", "graded", tiny_course.expected_score(a))] for n, a in answers.items()}
    deadline = time.monotonic() + 60
    while column() != want and time.monotonic() < deadline:
        time.sleep(1)
    assert column() == want
    _run_action(trainer, hub, "feedback")
    box = hub.layout.exchange_dir / hub.layout.course_id / "feedback"
    for name in answers:
        other = next(n for n in answers if n != name)
        mine = _as(unix_account(name).pw_name, "cat", str(box / name / "t1" / "problems.html"))
        assert mine.returncode == 0 and tiny_course.HIDDEN_LINE not in mine.stdout
        assert _as(unix_account(name).pw_name, "cat", str(box / other / "t1" / "problems.html")).returncode != 0
    assert not (box / "stranger").exists()
    view = _run_action(trainer, hub, "export")
    assert sorted(d["name"] for d in view["downloads"]) == sorted(["grades.csv", "tests.csv", f"{SLUG}-01.html", f"{SLUG}-02.html"])
    r = trainer.session.get(service_url(hub, f"w/{SLUG}/coursework/download/grades.csv"), timeout=60)
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["student_id"] for row in rows) == sorted(answers), "the export holds exactly the participants"
    assert {row["student_id"]: float(row["score"]) for row in rows} == {n: tiny_course.expected_score(a) for n, a in answers.items()}
    tests = list(csv.DictReader(io.StringIO(trainer.session.get(service_url(hub, f"w/{SLUG}/coursework/download/tests.csv"), timeout=60).text)))
    assert {row["student_id"] for row in tests} == set(answers) and len(tests) == 2 * len(tiny_course.TESTS)
    report = trainer.session.get(service_url(hub, f"w/{SLUG}/coursework/report/{SLUG}-01.html"), timeout=60)
    assert report.status_code == 200 and f"{tiny_course.MAX_SCORE:g} / {tiny_course.MAX_SCORE:g}" in report.text
    assert "sandbox" in report.headers["Content-Security-Policy"]
    stranger = trainer.session.get(service_url(hub, f"w/{SLUG}/coursework/report/stranger.html"), timeout=60)
    assert stranger.status_code == 404
    audit = hub.login("admin", hub.admin_password).get(service_url(hub, "audit.csv"), timeout=60).text
    for action in ("collect", "autograde", "feedback", "export", "download"):
        assert f"coursework.{action}" in audit
    assert creds[f"{SLUG}-01"] not in audit


def test_participant_and_other_trainer_get_403_on_course_work(course_hub, graded):
    """Does a participant, and the trainer of another workshop, get 403 on every course-work page, API and download?"""
    hub, (trainer, creds, _) = course_hub, graded
    participant = hub.login(f"{SLUG}-01", creds[f"{SLUG}-01"])
    token = hub.token_for(participant, f"{SLUG}-01")
    other = make_trainer(hub, "trcwx")
    assert post_form(other.session, hub, "new", workshop_form(f"{SLUG}x", count="0")).status_code in (200, 302)
    other_token = xsrf(other.session, hub, f"w/{SLUG}x")
    gets = [f"w/{SLUG}", f"api/workshops/{SLUG}/coursework", f"w/{SLUG}/coursework/download/grades.csv",
            f"w/{SLUG}/coursework/download/tests.csv", f"w/{SLUG}/coursework/report/{SLUG}-01.html"]
    for path in gets:
        assert participant.get(service_url(hub, path), timeout=60).status_code == 403, path
        assert other.session.get(service_url(hub, path), timeout=60).status_code == 403, path
    # A participant cannot load a page for a token, so they forge a matching cookie and form value.
    participant.cookies.set("_xsrf", "forged", path="/services/academy/")
    for action in ("collect", "autograde", "feedback", "export"):
        path = f"w/{SLUG}/coursework/{action}"
        r = participant.post(service_url(hub, path), data={"jobs": "2", "_xsrf": "forged"}, timeout=60, allow_redirects=False)
        assert r.status_code == 403, path
        r = other.session.post(service_url(hub, path), data={"jobs": "2", "_xsrf": other_token}, timeout=60, allow_redirects=False)
        assert r.status_code == 403, path
    # The API with a participant's token, as a script would use it.
    r = requests.get(service_url(hub, f"api/workshops/{SLUG}/coursework"), headers={"Authorization": f"token {token}"}, timeout=60)
    assert r.status_code == 403


def test_participants_cannot_read_gradebook_sources_or_export_on_disk(course_hub, graded):
    """As their own Unix account, can a participant read the gradebook, the instructor notebooks, or the export files?"""
    hub, (trainer, _, _) = course_hub, graded
    _run_action(trainer, hub, "export")
    user = unix_account(f"{SLUG}-01").pw_name
    layout = hub.layout
    export = hub.state_dir / "workshops" / SLUG / "coursework" / "export"
    assert (export / "grades.csv").is_file()
    for path in (layout.db_url[len("sqlite:///"):], layout.source_dir / "t1" / "problems.ipynb",
                 export / "grades.csv", export / "reports" / f"{SLUG}-01.html", layout.root / "autograded"):
        probe = _as(user, "cat", str(path)) if not str(path).endswith("autograded") else _as(user, "ls", str(path))
        assert probe.returncode != 0, f"{user} could read {path}"
    assert _as(user, "ls", str(export.parent)).returncode != 0


def test_bad_course_work_requests_get_clear_messages(course_hub, graded):
    """Do an assignment outside the workshop, a silly job count and a POST without XSRF change nothing and say why?"""
    hub, (trainer, _, _) = course_hub, graded
    r = _post(trainer.session, hub, f"w/{SLUG}/coursework/collect", {"assignment": "a1_numpy_foundations"})
    assert r.status_code == 400 and "is not an assignment of" in r.text
    r = _post(trainer.session, hub, f"w/{SLUG}/coursework/autograde", {"jobs": "0"})
    assert r.status_code == 400 and 'data-field="jobs"' in r.text
    r = _post(trainer.session, hub, f"w/{SLUG}/coursework/autograde", {"jobs": "2; rm -rf /"})
    assert r.status_code == 400
    r = trainer.session.post(service_url(hub, f"w/{SLUG}/coursework/collect"), data={}, timeout=60)
    assert r.status_code == 403
    view = trainer.session.get(service_url(hub, f"api/workshops/{SLUG}/coursework"), timeout=60).json()
    assert view["status"]["state"] != "running"


def test_cli_runs_the_same_course_work(course_hub, graded):
    """Does `academy workshop export` write the same export, and does a wrong assignment exit 2 with a message?"""
    hub = course_hub
    base = [*ACADEMY, "--config", str(hub.config_path), "workshop"]
    ok = subprocess.run([*base, "export", SLUG], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{SLUG}-01: exported" in ok.stdout
    bad = subprocess.run([*base, "collect", SLUG, "--assignment", "nope"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "is not an assignment of" in bad.stderr


def test_final_grading_runs_every_step_and_can_run_again(course_hub, graded):
    """Does final_grading (what teardown calls) collect, grade, return feedback and export, and give the same result when run twice?"""
    from academy.siteconfig import load_config
    from academy.workshop import actions, coursework
    from support.course import scores

    hub, (_, _, answers) = course_hub, graded
    ctx = actions.make_context(load_config(str(hub.config_path)))
    expected = {n: tiny_course.expected_score(a) for n, a in answers.items()}
    for _ in range(2):
        results = coursework.final_grading(ctx, "admin", SLUG)
        assert {(r.participant, r.status) for r in results} >= {(n, s) for n in answers for s in ("collected", "graded", "returned", "exported")}
        assert scores(hub.layout.db_url, "t1") == expected
        status = coursework.read_status(ctx, SLUG)
        assert status.action == "final-grading" and status.state == "done"
    rows = list(csv.DictReader(open(coursework.export_dir(ctx, SLUG) / "grades.csv", newline="")))
    assert sorted(r["student_id"] for r in rows) == sorted(answers)
    assert "stranger" not in scores(hub.layout.db_url, "t1")


def _formgrader(session, hub, path: str = "") -> requests.Response:
    return session.get(f"{hub.url}/services/formgrader/formgrader/{path}", timeout=120)


def test_trainer_grades_in_formgrader_and_participants_cannot_reach_it(course_hub, graded):
    """Does "Open Formgrader" take the trainer (through the hub's login) to nbgrader's Formgrader, run as the course owner and seeing our gradebook, where a manual grade lands; and does a participant get 403?"""
    from nbgrader.api import Gradebook

    hub, (trainer, creds, answers) = course_hub, graded
    _run_action(trainer, hub, "collect")
    _run_action(trainer, hub, "autograde", jobs="2")
    page = trainer.session.get(service_url(hub, f"w/{SLUG}"), timeout=60).text
    assert 'id="cw-formgrader" href="/services/formgrader/formgrader"' in page
    r = _formgrader(trainer.session, hub)
    assert r.status_code == 200 and "Manage Assignments" in r.text, (r.status_code, r.url, r.text[-800:])
    servers = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if any(a.endswith(b"jupyterhub-singleuser") for a in args) and any(str(hub.layout.root).encode() in a for a in args):
                servers.append(pwd.getpwuid(proc.stat().st_uid).pw_name)
        except (OSError, KeyError):
            continue
    assert servers == ["academy-course"], servers  # one Formgrader, as the course owner, not root
    # It sees our gradebook: both participants' submissions of t1.
    subs = _formgrader(trainer.session, hub, "api/submitted_notebooks/t1/problems").json()
    by_student = {s["student"]: s for s in subs}
    assert set(answers) <= set(by_student)
    wrong = f"{SLUG}-02"
    grades = _formgrader(trainer.session, hub, f"api/grades?submission_id={by_student[wrong]['id']}").json()
    grade = next(g for g in grades if g["name"] == "test_mean")
    xsrf_cookie = next(c.value for c in trainer.session.cookies if c.name == "_xsrf" and c.path.startswith("/services/formgrader"))
    r = trainer.session.put(f"{hub.url}/services/formgrader/formgrader/api/grade/{grade['id']}", timeout=60,
                            json={"manual_score": 3}, headers={"X-XSRFToken": xsrf_cookie})
    assert r.status_code == 200, r.text[-800:]
    with Gradebook(hub.layout.db_url) as gb:
        sub = gb.find_submission("t1", wrong)
        mean = next(g for g in sub.notebooks[0].grades if g.name == "test_mean")
        assert mean.manual_score == 3 and sub.score == tiny_course.expected_score(answers[wrong]) - mean.auto_score + 3
    # A grading desk, nothing more: the course owner's server runs no code and writes no files for the trainer.
    base = f"{hub.url}/services/formgrader"
    headers = {"X-XSRFToken": xsrf_cookie}
    refused = [trainer.session.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers, timeout=60),
               trainer.session.post(f"{base}/api/sessions", json={"path": "x.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
                                    headers=headers, timeout=60),
               trainer.session.post(f"{base}/formgrader/api/submission/t1/{wrong}/autograde", headers=headers, timeout=60),
               trainer.session.post(f"{base}/formgrader/api/assignment/t1/release", headers=headers, timeout=60)]
    for r in refused:
        assert r.status_code == 403 and "not in the Formgrader" in r.text, (r.request.url, r.status_code, r.text[:300])
    r = trainer.session.put(f"{base}/api/contents/nbgrader_config.py", headers=headers, timeout=60,
                            json={"type": "file", "format": "text", "content": "import os; os.system('id')"})
    assert r.status_code == 403 and "read-only" in r.text, (r.status_code, r.text[:300])
    r = trainer.session.post(f"{base}/api/contents/autograded", headers=headers, timeout=60, json={"copy_from": "submitted"})
    assert r.status_code == 403 and "read-only" in r.text, (r.status_code, r.text[:300])
    assert "os.system" not in (hub.layout.root / "nbgrader_config.py").read_text()
    # The student's own HTML reaches the trainer's page sanitised (it is shown in the hub's origin).
    view = _formgrader(trainer.session, hub, f"submissions/{by_student[wrong]['id']}/")
    assert view.status_code == 200 and HOSTILE in view.text, view.text[-1500:]
    assert not re.search(r"<img[^>]*onerror", view.text), "the student's markup reached the trainer's page as HTML"
    # nbgrader's own view of our exchange: t1 is released, not a draft.
    listed = {a["name"]: a for a in _formgrader(trainer.session, hub, "api/assignments").json()}
    assert listed["t1"]["status"] == "released", listed
    participant = hub.login(f"{SLUG}-01", creds[f"{SLUG}-01"])
    r = _formgrader(participant, hub)
    assert r.status_code == 403, (r.status_code, r.url)
    r = _formgrader(participant, hub, "api/submitted_notebooks/t1/problems")
    assert r.status_code == 403 or "Manage Assignments" not in r.text and r.url.startswith(f"{hub.url}/hub/"), r.status_code


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium through Playwright (the same launch as tests/browser)."""
    need(os.access("/usr/bin/chromium", os.X_OK), "Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.mark.browser
def test_trainer_uses_the_course_work_buttons_in_chromium(course_hub, graded, chromium):
    """In Chromium, do Collect, Autograde (jobs field) and Export run from the workshop page, the status line follow each to "done", and the download links appear?"""
    hub, (trainer, _, _) = course_hub, graded
    page = chromium.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{hub.url}/hub/login?next=/services/academy/w/{SLUG}")
    page.fill("input[name=username]", trainer.name)
    page.fill("input[name=password]", trainer.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/services/academy/w/{SLUG}*")
    page.select_option("#cw-assignment", "t1")
    for action in ("collect", "autograde", "export"):
        if action == "autograde":
            page.fill("#cw-jobs", "2")
        page.click(f"#cw-button-{action}")
        # The page comes back with the run under way (or already over) and reloads itself when it ends.
        page.wait_for_function(f"""() => {{ const s = document.getElementById('cw-status');
            return s && s.dataset.state === 'done' && s.textContent.includes('{action}'); }}""")
        if action == "autograde":
            assert "autograde: 2 graded" in page.inner_text("#cw-status")
    links = page.locator("#cw-downloads a").all_inner_texts()
    assert "grades.csv" in links and f"{SLUG}-01.html" in links
    page.screenshot(path=str(REPO / "test-output" / "workshop-coursework.png"), full_page=True)
