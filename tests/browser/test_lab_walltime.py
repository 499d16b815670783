"""The local backend keeps the spawn form's promise, seen in Chromium: the countdown, the Academy landing, the end.

Time is sped up by the test-only setting ``local.walltime_hour_seconds`` (one "hour" lasts 100 seconds
here); everything else is the real hub, proxy, server and Debian's Chromium.
"""
from __future__ import annotations

import re
import time

import pytest
import requests

from testbed.hub import make_learner
from support.hub import running_hub
from support.pages import logged_in_page, start_lab
from test_browser import browser, shot  # noqa: F401 (the module's Chromium fixture)

pytestmark = pytest.mark.browser

HOUR = 100
HELP = "https://help.example.org/academy"
LEFT_RE = re.compile(r"(\d+):(\d\d):(\d\d) left")


@pytest.fixture(scope="module")
def hub():
    site = {"local": {"walltime_hour_seconds": HOUR}, "lab": {"help_url": HELP, "help_email": "help@example.org"}}
    with running_hub("labwall", site=site) as h:
        yield h


def test_chosen_hours_end_the_server_and_the_countdown_agrees(hub, browser):  # noqa: F811
    """Does JupyterLab open the welcome notebook with Academy help, count down to the hub's end for the chosen
    1 "hour", and does the hub stop the server then and say why on its page?"""
    learner = make_learner(hub, "labwall")
    page = logged_in_page(browser, hub, learner, width=1400)
    start_lab(page, hub, learner, hours="1")

    # First start: the welcome notebook, not a bare Launcher.
    page.locator(".lm-TabBar-tabLabel", has_text="00_welcome.ipynb").first.wait_for(timeout=120_000)
    countdown = page.locator(".academy-walltime")
    countdown.wait_for()
    shot(page, "lab-walltime-01-welcome")
    session = requests.get(f"{hub.url}/user/{learner.name}/academy/api/session",
                           headers={"Authorization": f"token {learner.token}"}, timeout=30).json()
    end = session["walltime"]["end"]
    h, m, s = map(int, LEFT_RE.search(countdown.inner_text()).groups())
    shown = h * 3600 + m * 60 + s
    assert 0 < shown <= HOUR
    assert abs(shown - (end - session["now"])) <= 10, (shown, end - session["now"])

    page.locator(".lm-MenuBar-itemLabel", has_text="Help").click()
    # The menu opens on the next frame: wait for it to show rather than look once.
    page.locator(".lm-Menu-itemLabel", has_text="AI Factory help").wait_for(state="visible", timeout=10_000)
    page.locator(".lm-Menu-itemLabel", has_text="help@example.org").wait_for(state="visible", timeout=10_000)
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+L")  # a new Launcher: the Academy section is there
    page.locator(".jp-Launcher-sectionTitle", has_text="AI Factory Academy").first.wait_for(timeout=30_000)
    shot(page, "lab-walltime-02-launcher")

    deadline = time.monotonic() + HOUR + 120
    while hub.api("GET", f"/users/{learner.name}", learner.token).json().get("servers"):
        assert time.monotonic() < deadline, "the hub did not stop the server at the end of its hours" + hub.log_tail()
        time.sleep(1)
    assert time.time() >= end - 1, "the server was stopped before its end"
    page.goto(f"{hub.url}/hub/user/{learner.name}/lab")
    message = page.locator(".alert-warning").first
    message.wait_for(timeout=60_000)
    shot(page, "lab-walltime-03-ended")
    assert "end of its walltime" in message.inner_text() and "were saved" in message.inner_text()
    page.close()
