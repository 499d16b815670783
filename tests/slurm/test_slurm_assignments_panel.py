"""nbgrader's Assignments panel API on a learner server that runs as a real Slurm job, over our exchange.

The exchange lies on the (here: one machine's) shared filesystem; the hub's ``course:`` section tells the
job's server only the exchange root and the course id. The test speaks to the server as the panel does
(nbgrader's ``assignment_list`` server extension: GET /assignments, POST /assignments/fetch|submit).
"""
from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil

import pytest
import requests
from nbgrader.api import Gradebook
from support.skip import need
from support.course import make_layout, run_academy, sandbox_available, shared_tiny_course
from support.slurm import job_of, make_learner, new_username, server_environ, slurm_site, spawn, start_hub, wait_no_server

from testbed import tiny_course
from testbed.hub import _RUN, shared_tmpdir

pytestmark = [pytest.mark.slurm, pytest.mark.grading]

COURSE = f"nbs{_RUN}"
A = tiny_course.ASSIGNMENT


@pytest.fixture(scope="module")
def panel_slurm_hub(slurm_cluster, tmp_path_factory):
    need(sandbox_available() and shutil.which("runuser") is not None, "root with bubblewrap, setpriv and runuser")
    shared = shared_tiny_course("academy-slurm-panel-")
    (shared / "course" / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n")
    exchange = shared_tmpdir("slurmexchange")  # every node sees it
    layout = make_layout(shared / "course", tmp_path_factory.mktemp("state"), exchange)
    site = slurm_site()
    site["course"] = {"exchange_dir": str(exchange), "courses": [{"id": COURSE, "directory": str(layout.course_dir)}]}
    hub = start_hub(site)
    try:
        yield hub, layout, ["course", "--course-dir", str(layout.course_dir), "--state-dir", str(layout.state_dir),
                            "--exchange-dir", str(exchange)]
    finally:
        hub.stop()
        shutil.rmtree(hub.workdir, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(exchange, ignore_errors=True)


def _academy(where, *args):
    proc = run_academy(*where, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_panel_lists_fetches_and_submits_from_a_slurm_job(panel_slurm_hub):
    """From a learner server running as a Slurm job, does the panel's API list the released assignment with its due
    date, fetch it into the learner's home and submit it, does the trainer's collect take it with the system's
    timestamp, and does the job's server know the exchange root and course id but not the course directory?"""
    hub, layout, where = panel_slurm_hub
    learner = make_learner(hub, new_username("nbs"))
    _academy(where, "setup", "--students", learner.name)
    due = dt.datetime(dt.date.today().year + 1, 3, 14, 12, 0)
    with Gradebook(layout.db_url, layout.course_id) as gb:
        gb.update_or_create_assignment(A, duedate=due)
    _academy(where, "release", A)
    spawn(hub, learner, {"profile": "cpu", "hours": 1}, timeout=180)
    try:
        env = server_environ(job_of(learner.name)["id"])
        assert env.get("ACADEMY_EXCHANGE_DIR") == str(layout.exchange_dir), env.get("ACADEMY_EXCHANGE_DIR")
        assert env.get("ACADEMY_COURSE_IDS") == COURSE
        assert "ACADEMY_COURSE_DIR" not in env and str(layout.course_dir) not in "\n".join(env.values())

        def panel(method, path, **params):
            r = requests.request(method, f"{hub.url}/user/{learner.name}/{path}", params=params, timeout=120,
                                 headers={"Authorization": f"token {learner.token}"})
            assert r.status_code == 200, f"{r.status_code} {r.text}"
            return r.json()

        listed = panel("GET", "assignments", course_id=COURSE)
        assert listed["success"], listed
        [released] = [a for a in listed["value"] if a["assignment_id"] == A]
        assert released["status"] == "released" and released["duedate"].startswith(f"{due.year}-03-14"), released

        fetched = panel("POST", "assignments/fetch", course_id=COURSE, assignment_id=A)
        assert fetched["success"] and any(a["status"] == "fetched" for a in fetched["value"]), fetched
        home = pwd.getpwnam(learner.name).pw_dir
        nb = f"{home}/{A}/{tiny_course.NOTEBOOK}.ipynb"
        assert pwd.getpwuid(os.stat(nb).st_uid).pw_name == learner.name

        submitted = panel("POST", "assignments/submit", course_id=COURSE, assignment_id=A)
        assert submitted["success"], submitted
        [history] = [a for a in submitted["value"] if a["status"] == "submitted" and a["assignment_id"] == A]
        assert len(history["submissions"]) == 1, history

        _academy(where, "collect", A)
        stamp = (layout.step_dir("submitted", learner.name, A) / "timestamp.txt").read_text().strip()
        assert stamp.startswith(str(dt.date.today().year)), stamp
        assert (layout.step_dir("submitted", learner.name, A) / f"{tiny_course.NOTEBOOK}.ipynb").is_file()
    finally:
        hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
        wait_no_server(hub, learner, 120)
