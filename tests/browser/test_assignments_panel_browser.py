"""nbgrader's own Assignments panel in a learner's JupyterLab, on our exchange, seen in Chromium.

A real hub (local backend: hub user ``name`` runs as ``acad-name``) and a course under the learner
servers' default exchange root (/srv/academy/exchange, with a course id of this run only): the learner
sees the due date our lab extension adds to the row, fetches, validates and submits from the panel, is asked before re-submitting, sees the system's
submission time in the history; the trainer (root, ``academy course``) collects, autogrades and
returns feedback; Fetch Feedback puts the HTML in the learner's home.
"""
from __future__ import annotations

import datetime as dt
import pwd
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from support.skip import need

from academy.course.nbexchange_trainer import publish_due_date
from testbed import tiny_course
from testbed.hub import _RUN, make_learner
from support.course import make_layout, run_academy, sandbox_available, shared_tiny_course
from support.hub import running_hub
from support.pages import logged_in_page, start_lab
from test_browser import browser, shot  # noqa: F401 (the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.grading]

ROOT = Path("/srv/academy/exchange")  # the site default of course.exchange_dir
COURSE = f"nbx{_RUN}"
A = tiny_course.ASSIGNMENT


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    need(sandbox_available() and shutil.which("runuser") is not None, "root with bubblewrap, setpriv and runuser")
    shared = shared_tiny_course("academy-panel-")
    (shared / "course" / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\nc.Execute.timeout = 10\n")
    layout = make_layout(shared / "course", tmp_path_factory.mktemp("state"), ROOT)
    where = ["course", "--course-dir", str(layout.course_dir), "--state-dir", str(layout.state_dir),
             "--exchange-dir", str(ROOT)]
    yield layout, where
    shutil.rmtree(ROOT / COURSE, ignore_errors=True)
    shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(course):
    layout, _ = course
    # The hub tells learner servers this course (ACADEMY_COURSE_IDS) and the exchange root, as a site would.
    site = {"course": {"exchange_dir": str(ROOT), "courses": [{"id": COURSE, "directory": str(layout.course_dir)}]}}
    with running_hub("panel", site) as h:
        yield h


def _academy(where, *args):
    proc = run_academy(*where, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_learner_fetches_validates_submits_and_fetches_feedback_in_the_panel(hub, course, browser):  # noqa: F811
    """In nbgrader's Assignments panel: is the released assignment listed, do Fetch, Validate and Submit work, is
    a re-submission asked first, does the history show the system's time, and after the trainer grades, does
    Fetch Feedback put the feedback HTML in the learner's home?"""
    layout, where = course
    learner = make_learner(hub, "panel")
    page = logged_in_page(browser, hub, learner, height=1000)
    start_lab(page, hub, learner)

    # The trainer adds the (now existing) acad- account to the course, sets a due date and releases t1.
    _academy(where, "setup", "--students", learner.name, "--account-prefix", "acad-")
    due = dt.datetime(dt.date.today().year + 1, 3, 14, 12, 0)  # a future one: Submit is not held as late
    with Gradebook(layout.db_url, layout.course_id) as gb:
        gb.update_or_create_assignment(A, duedate=due)
    _academy(where, "release", A)
    account = pwd.getpwnam(f"acad-{learner.name}")
    home = Path(account.pw_dir)

    page.locator(".lm-MenuBar-itemLabel:text-is('Nbgrader')").click()
    page.locator(".lm-Menu-itemLabel:text-is('Assignment List')").click()
    released = page.locator("#released_assignments_list .list_item", has_text=A)
    released.wait_for()
    assert COURSE in page.locator("#course_list_default").inner_text()
    # Our lab extension's addition: the due date, in the browser's local time, not past due.
    badge = released.locator(".academy-due")
    badge.wait_for()
    said = badge.inner_text()
    assert said.strip().startswith("due ") and str(due.year) in said and "past due" not in said, said
    assert "academy-due-past" not in (badge.get_attribute("class") or "")
    shot(page, "panel-01-released")
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list .list_item", has_text=A).first
    fetched.wait_for()
    assert (home / A / f"{tiny_course.NOTEBOOK}.ipynb").is_file()
    assert str(due.year) in fetched.locator(".academy-due").inner_text()
    # The trainer moves the due date into the past (as release would publish it): the row says past due.
    for when in (dt.datetime(2001, 1, 1), due):
        with Gradebook(layout.db_url, layout.course_id) as gb:
            gb.update_or_create_assignment(A, duedate=when)
        publish_due_date(layout, A)
        if when.year == 2001:
            page.locator("#refresh_assignments_list").click()
            past = page.locator("#fetched_assignments_list .list_item", has_text=A).first.locator(".academy-due-past")
            past.wait_for()
            assert "2001" in past.inner_text() and "past due" in past.inner_text()
    page.locator("#refresh_assignments_list").click()
    page.locator("#fetched_assignments_list .list_item .academy-due:not(.academy-due-past)", has_text=str(due.year)).wait_for()

    # The learner's answers (typing them cell by cell is not what this test is about).
    nb_path = home / A / f"{tiny_course.NOTEBOOK}.ipynb"
    nbformat.write(tiny_course.make_submission(nb_path, tiny_course.SOLUTIONS), nb_path)
    shutil.chown(nb_path, account.pw_uid, account.pw_gid)
    page.locator("#refresh_assignments_list").click()
    fetched = page.locator("#fetched_assignments_list .list_item", has_text=A).first
    fetched.locator(".assignment-notebooks-link").click()
    page.get_by_role("button", name="Validate").first.click()
    page.get_by_text("Success! Your notebook passes all the tests.").wait_for()
    shot(page, "panel-02-validated")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()

    fetched.get_by_role("button", name="Submit").click()
    history = page.locator("#submitted_assignments_list .nested_list_item")
    history.first.wait_for()
    first_time = history.first.inner_text()
    assert "UTC" in first_time and first_time.startswith("20"), first_time
    page.locator("#fetched_assignments_list .list_item", has_text=A).first.get_by_role("button", name="Submit").click()
    page.get_by_text("already submitted").wait_for()
    shot(page, "panel-03-resubmit-asked")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.locator("#fetched_assignments_list .list_item", has_text=A).first.get_by_role("button", name="Submit").click()
    page.wait_for_function("document.querySelectorAll('#submitted_assignments_list .nested_list_item').length == 2")

    _academy(where, "collect", A)
    _academy(where, "autograde", A, "--jobs", "1")
    _academy(where, "feedback", A)
    graded = (layout.step_dir("submitted", learner.name, A) / "timestamp.txt").read_text()
    page.locator("#refresh_assignments_list").click()
    page.get_by_text("(feedback available to fetch)").wait_for()
    page.locator("#submitted_assignments_list .list_item", has_text=A).first.get_by_role(
        "button", name="Fetch Feedback").click()
    page.get_by_text("(view feedback)").wait_for()
    html = home / A / "feedback" / graded / f"{tiny_course.NOTEBOOK}.html"
    assert html.is_file() and html.stat().st_uid == account.pw_uid
    page.get_by_text("(view feedback)").click()
    page.locator(".jp-DirListing-item", has_text=f"{tiny_course.NOTEBOOK}.html").wait_for()
    shot(page, "panel-04-feedback")
    page.close()
