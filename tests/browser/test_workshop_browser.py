"""A trainer in Debian's Chromium creates a workshop; the account sheet shows passwords once; the admin page lists them."""
from __future__ import annotations

import pytest
import requests

from testbed.hub import _RUN
from support.hub import running_hub
from test_browser import CHROMIUM, CHROMIUM_ARGS, browser, shot  # noqa: F401 (fixture)
from support.workshop import admin_token, make_trainer, service_url, track

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def hub():
    with running_hub("wsbrowser") as h:
        yield h


def test_trainer_creates_workshop_in_the_browser(hub, browser):  # noqa: F811
    """Can a trainer fill in the form in Chromium, see each password once on a print-ready sheet, and find the participants in the admin page and group?"""
    trainer = make_trainer(hub, "brt")
    slug = f"brw{_RUN}"
    track(f"{slug}-01", f"{slug}-02", f"{slug}-03")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(f"{hub.url}/hub/login?next=/services/academy/")
    page.fill("input[name=username]", trainer.name)
    page.fill("input[name=password]", trainer.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/services/academy/")
    page.click("#new-workshop")
    page.fill("#slug", slug)
    page.fill("#title", "Deep learning, day one")
    page.fill("#start", "2030-05-04T09:00")
    page.fill("#end", "2030-05-04T08:00")  # first a mistake: ends before it starts
    page.check("#profile-cpu")
    page.fill("#count", "3")
    page.click("#create")
    page.wait_for_selector("#problems")
    assert "the end must be after the start" in page.inner_text("#problems")
    shot(page, "workshop-01-bad-end")
    assert page.input_value("#slug") == slug  # what was typed is kept
    page.fill("#end", "2030-05-04T17:00")
    page.click("#create")
    page.wait_for_selector(".slip")
    shot(page, "workshop-02-sheet")
    slips = page.locator(".slip")
    assert slips.count() == 3
    passwords = [slips.nth(i).locator(".password").inner_text() for i in range(3)]
    assert all(len(p) == 16 for p in passwords)
    assert "data:text/csv" in page.get_attribute("#csv", "href")
    # The sheet cannot be fetched again: the workshop page lists names only.
    page.goto(service_url(hub, f"w/{slug}"))
    assert all(p not in page.content() for p in passwords)
    assert page.locator("#participants .username").all_inner_texts() == [f"{slug}-01", f"{slug}-02", f"{slug}-03"]

    admin = browser.new_page(viewport={"width": 1300, "height": 900})
    admin.set_default_timeout(60_000)
    admin.goto(f"{hub.url}/hub/login")
    admin.fill("input[name=username]", "admin")
    admin.fill("input[name=password]", hub.admin_password)
    admin.click("input[type=submit], button[type=submit]")
    admin.wait_for_url("**/hub/home")
    admin.goto(f"{hub.url}/hub/admin")
    admin.wait_for_selector(f"text={slug}-01")
    shot(admin, "workshop-03-admin-page")
    members = hub.api("GET", f"/groups/{slug}", admin_token(hub)).json()["users"]
    assert sorted(members) == [f"{slug}-01", f"{slug}-02", f"{slug}-03"]


def test_trainer_warm_starts_and_tears_down_in_the_browser(hub, browser):  # noqa: F811
    """In Chromium, does "Warm start now" show the participant's progress until running without a reload, and does
    "Tear down…" ask for confirmation, then show the report: server stopped, home archived, login disabled?"""
    from support.workshop import post_form, sheet_credentials, workshop_form

    trainer = make_trainer(hub, "brl")
    slug = f"brl{_RUN}"
    track(f"{slug}-01")
    creds = sheet_credentials(post_form(trainer.session, hub, "new", workshop_form(slug, count="1")).text)
    token = admin_token(hub)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{hub.url}/hub/login?next=/services/academy/w/{slug}")
    page.fill("input[name=username]", trainer.name)
    page.fill("input[name=password]", trainer.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/services/academy/w/{slug}")
    assert "no Slurm reservation is needed" in page.inner_text("#warm-summary")
    page.click("#warm-now")
    # The section refreshes itself (a small script); no reload here.
    page.wait_for_selector(f'#warm tr[data-user="{slug}-01"][data-state="running"]')
    shot(page, "workshop-04-warm-started")
    assert hub.api("GET", f"/users/{slug}-01", token).json()["servers"][""]["ready"]

    page.click("#teardown-button")
    page.wait_for_selector("#teardown-form")
    shot(page, "workshop-05-teardown-confirm")
    page.fill("#confirm", slug)
    page.click("#teardown-confirm")
    page.wait_for_selector("#torn-down")
    shot(page, "workshop-06-torn-down")
    steps = page.inner_text(f'#teardown-steps tr[data-user="{slug}-01"]')
    assert "block, unshare, stop, archive" in steps
    assert page.is_disabled("#purge-button") and "retention" in page.inner_text("#purge-when")
    assert not hub.api("GET", f"/users/{slug}-01", token).json()["servers"]
    assert (hub.state_dir / "workshops" / slug / "archives" / f"{slug}-01.tar.gz").exists()
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    r = s.post(f"{hub.url}/hub/login", data={"username": f"{slug}-01", "password": creds[f"{slug}-01"],
                                             "_xsrf": s.cookies.get("_xsrf", "")}, timeout=30, allow_redirects=False)
    assert r.status_code == 403
