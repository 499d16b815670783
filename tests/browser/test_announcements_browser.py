"""A trainer's announcement in the participant's browser: on the hub home page and as a JupyterLab notification.

Both halves together, as a learner sees them: the service stores it, the hub's home page lists it,
and the Academy lab extension (through its server's ``academy/api/announcements`` proxy) shows it
once as a notification, as text: the script in it never runs.
"""
from __future__ import annotations

import pytest

from testbed.hub import _RUN, make_learner
from support.hub import running_hub
from support.workshop import make_trainer, post_form, service_url, workshop_form, xsrf
from support.pages import logged_in_page
from test_browser import browser, shot  # noqa: F401 (the module's Chromium fixture)

pytestmark = pytest.mark.browser

BEFORE = "Welcome: we start at 09:30 (browser test)"
DURING = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>Break until 11:00 (browser test)'


@pytest.fixture(scope="module")
def hub():
    with running_hub("announce") as h:
        yield h


def _announce(hub, trainer, slug: str, text: str) -> None:
    token = xsrf(trainer.session, hub, f"w/{slug}")
    r = trainer.session.post(service_url(hub, f"w/{slug}/announce"), data={"_xsrf": token, "text": text}, timeout=60)
    assert r.status_code == 200, r.text[-1000:]


def test_an_announcement_appears_in_the_participants_jupyterlab(hub, browser):  # noqa: F811
    """Does a participant see an earlier announcement on the hub home page and in JupyterLab, and one posted while
    JupyterLab is open as a new notification, as plain text with its script never run?"""
    trainer = make_trainer(hub, "brann")
    learner = make_learner(hub, "brlearn")
    slug = f"bra{_RUN}"
    assert post_form(trainer.session, hub, "new", workshop_form(slug, count="0", usernames=learner.name)).status_code == 200
    _announce(hub, trainer, slug, BEFORE)

    page = logged_in_page(browser, hub, learner, width=1500)
    page.locator("#academy-announcements").get_by_text(BEFORE).wait_for()
    shot(page, "announcements-01-hub-home")

    page.goto(f"{hub.url}/hub/spawn")
    page.check("#profile-cpu")
    page.select_option("#academy-hours", "1")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/user/{learner.name}/lab**", timeout=240_000)
    page.wait_for_selector(".jp-LauncherCard, .jp-DirListing", timeout=120_000)
    # The extension asks every 20 s; the waits are generous, since speed is not what is tested here.
    page.get_by_text(BEFORE).first.wait_for(timeout=90_000)

    _announce(hub, trainer, slug, DURING)
    page.get_by_text("Break until 11:00 (browser test)").first.wait_for(timeout=90_000)
    shot(page, "announcements-02-jupyterlab-notification")
    toast = page.get_by_text("Break until 11:00 (browser test)").first.inner_text()
    assert '<script>window.pwned=2</script>' in toast and '<img src=x onerror="window.pwned=1">' in toast
    assert page.evaluate("window.pwned") is None
    # Each is shown once: both ids are remembered for this user, so a reload does not show them again.
    seen = page.evaluate(f"window.localStorage.getItem('academy-lab:announcements-seen:{learner.name}')")
    assert seen is not None and len(seen.strip("[]").split(",")) == 2, seen

    page.goto(f"{hub.url}/hub/home")
    assert page.evaluate("window.pwned") is None
    assert "Break until 11:00 (browser test)" in page.locator("#academy-announcements").inner_text()
    page.close()
    learner.session.delete(f"{hub.url}/hub/api/users/{learner.name}/server",
                           headers={"Authorization": f"token {learner.token}"}, timeout=60)
