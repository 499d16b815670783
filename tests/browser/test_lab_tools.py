"""The learner's JupyterLab with both halves of the session tools, seen in Chromium.

The server side (``academy.labtools``: resources, notices) and the front end (the Academy lab
extension) were built apart; this checks them together, as a learner sees them: the status bar's
resources item on a CPU profile, a notice posted to the server shown as a notification, and the
"More time" button clicked within and beyond the profile's maximum.
"""
from __future__ import annotations

import pytest
import requests

from testbed.hub import make_learner
from support.hub import running_hub
from support.pages import logged_in_page, start_lab
from test_browser import browser, shot  # noqa: F401 (the module's Chromium fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def hub():
    with running_hub("labtools") as h:
        yield h


def test_resources_notices_and_more_time_in_the_browser(hub, browser):  # noqa: F811
    """Does a learner on the CPU profile see memory/CPU and "no GPU" in the status bar, get a posted notice
    as a notification, and get one more hour from the More time button, but no more than the profile's maximum?"""
    learner = make_learner(hub, "labtools")
    page = logged_in_page(browser, hub, learner)
    start_lab(page, hub, learner, hours="7")  # the CPU profile allows at most 8

    resources = page.locator(".academy-resources")
    resources.wait_for(state="visible", timeout=120_000)
    text = resources.inner_text()
    assert "Mem" in text and "CPU" in text and "no GPU" in text, text

    server = f"{hub.url}/user/{learner.name}"
    auth = {"Authorization": f"token {learner.token}"}
    posted = requests.post(f"{server}/academy/api/notices", headers=auth, timeout=30,
                           json={"level": "warning", "message": "Break until 11:00 (browser test)"})
    assert posted.status_code in (200, 201), posted.text
    # The front end asks for notices every 30 s; a generous wait, since speed is not what is tested here.
    page.get_by_text("Break until 11:00 (browser test)").first.wait_for(timeout=90_000)
    shot(page, "lab-tools-01-resources-notice")

    def hours() -> int:
        return requests.get(f"{server}/academy/api/session", headers=auth, timeout=30).json()["walltime"]["hours"]

    assert hours() == 7
    page.locator(".academy-walltime").click()
    page.get_by_role("button", name="Add 1 hour").click()
    page.get_by_text("One more hour was added").first.wait_for(timeout=60_000)
    assert hours() == 8
    page.locator(".academy-walltime").click()
    page.get_by_text("the most its profile allows").first.wait_for(timeout=60_000)
    shot(page, "lab-tools-02-more-time-refused")
    assert hours() == 8
    page.close()
