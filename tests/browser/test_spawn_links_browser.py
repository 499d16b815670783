"""One-click links (``/hub/spawn?opt-profile=..&opt-hours=..&next=..``) on the real hub, proxy, server and Chromium.

One hub and two spawns for the module: the link's own start (CPU), then a restart on the GPU slice
from the choice page. The local backend starts the GPU-slice profile without a GPU (its form says so).
"""
from __future__ import annotations

import html
import re
from urllib.parse import urlencode

import pytest

from testbed.hub import make_learner
from support.hub import running_hub
from test_browser import browser, shot  # noqa: F401 (the module's Chromium fixture)

pytestmark = pytest.mark.browser

NOTEBOOK = "ai-factory-academy/01_python_numpy.ipynb"


def link(profile: str, hours, next_url: str = f"/hub/user-redirect/lab/tree/{NOTEBOOK}", **extra) -> str:
    query = {"opt-profile": profile, "opt-hours": hours, **extra}
    if next_url:
        query["next"] = next_url
    return "/hub/spawn?" + urlencode(query, doseq=True)


@pytest.fixture(scope="module")
def hub():
    with running_hub("links") as h:
        yield h


def servers(hub, learner) -> dict:
    return hub.api("GET", f"/users/{learner.name}", learner.token).json().get("servers", {})


def form_action(html: str) -> str:
    return re.search(r'<form[^>]*action="([^"]*)"', html).group(1).replace("&amp;", "&")


@pytest.mark.parametrize("query, words", [
    (link("gpu-9000", 2), "unknown profile 'gpu-9000'"),
    (link("cpu", 99), "allows 1 to 8 hours, not 99"),
    (link("cpu", "2;reboot"), "hours: must be a whole number"),
    (link("cpu$(touch /tmp/x)", 2), "unknown profile"),
    (link(["cpu", "h100-1"], 2), "opt-profile: given 2 times"),
    (link("cpu", 2, **{"opt-partition": "gpu"}), "unknown option(s): partition"),
    (link("cpu", 2, cmd="id"), "unknown option(s): cmd"),
    (link("h100-4", 2), "is limited to the groups"),
])
def test_a_crafted_link_shows_the_forms_error_and_starts_nothing(hub, query, words):
    """Does a link with a crafted option get the spawn form back with the form's clear error (HTTP 400), nothing started?"""
    learner = getattr(hub, "_crafted_learner", None) or make_learner(hub, "lnkbad")
    hub._crafted_learner = learner
    r = learner.session.get(f"{hub.url}{query}", timeout=60)
    assert r.status_code == 400, (r.status_code, r.text[-500:])
    assert words in html.unescape(r.text), r.text[-2000:]
    assert 'name="profile"' in r.text  # the form itself, to choose again
    assert servers(hub, learner) == {}, "a crafted link started a server"


@pytest.mark.parametrize("target", [
    "https://evil.example/phish", "//evil.example/x", "/user/someone-else/lab/tree/x.ipynb",
    "/user/{me}/../someone-else/lab", "/hub/admin",
])
def test_an_off_site_or_other_users_next_is_dropped(hub, target):
    """Is a next off the site, on another learner's server or outside the learner's own server dropped from the form?"""
    learner = getattr(hub, "_crafted_learner", None) or make_learner(hub, "lnkbad")
    hub._crafted_learner = learner
    r = learner.session.get(f"{hub.url}{link('cpu', 1, target.format(me=learner.name))}", timeout=60)
    assert r.status_code == 200, r.text[-500:]
    action = form_action(r.text)
    assert "next=" not in action and "evil" not in action and "someone-else" not in action, action
    assert "was not on your own server" in r.text
    assert servers(hub, learner) == {}, "a GET started a server"


def test_a_link_to_the_own_spawn_url_or_with_bare_keys_only_preselects(hub):
    """Does /hub/spawn/<own name>?opt-... (and JupyterHub's older bare keys) also show the form preselected, not start?"""
    learner = getattr(hub, "_crafted_learner", None) or make_learner(hub, "lnkbad")
    hub._crafted_learner = learner
    for url in (f"/hub/spawn/{learner.name}?opt-profile=h100-1&opt-hours=5", "/hub/spawn?profile=h100-1&hours=5"):
        r = learner.session.get(f"{hub.url}{url}", timeout=60)
        assert r.status_code == 200 and re.search(r'id="profile-h100-1" value="h100-1"[^>]*checked', r.text), r.text[-1500:]
        assert re.search(r'<option value="5"\s+selected', r.text)
        assert servers(hub, learner) == {}, f"GET {url} started a server"


def test_a_link_opens_the_preselected_form_then_the_notebook_and_the_choice_page_when_running(hub, browser):  # noqa: F811
    """Does a valid link (opened before logging in) land on the form preselected (no start on GET), open the notebook
    after one click; and
    while that server runs, does a same-profile link go straight to the notebook, another profile's link get the
    choice page, whose "open anyway" keeps the server and whose "stop and restart" restarts it on the link's profile?"""
    learner = make_learner(hub, "lnk")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    # Not logged in yet, as from a link in an e-mail: the login page first, then the link's form.
    page.goto(f"{hub.url}{link('cpu', 3)}")
    page.wait_for_url("**/hub/login**")
    page.fill("input[name=username]", learner.name)
    page.fill("input[name=password]", learner.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/hub/spawn?opt-profile=cpu**")
    assert page.locator("#profile-cpu").is_checked()
    assert page.locator("#academy-hours").input_value() == "3"
    assert "Opened from a link" in page.inner_text(".academy-spawn-form")
    shot(page, "link-01-preselected-form")
    assert servers(hub, learner) == {}, "the link's GET started a server"
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/user/{learner.name}/lab/tree/{NOTEBOOK}", timeout=240_000)
    page.locator(".lm-TabBar-tabLabel", has_text="01_python_numpy.ipynb").first.wait_for(timeout=120_000)
    shot(page, "link-02-notebook")
    server = servers(hub, learner)[""]
    assert server["user_options"] == {"profile": "cpu", "hours": 3}

    # Same profile while running: straight to next, no page in between.
    r = learner.session.get(f"{hub.url}{link('cpu', 2)}", allow_redirects=False, timeout=60)
    assert r.status_code == 302 and r.headers["Location"] == f"/user/{learner.name}/lab/tree/{NOTEBOOK}"

    # Another profile: the choice page; "open anyway" keeps the running server.
    page.goto(f"{hub.url}{link('mig-slice', 2)}")
    choice = page.locator(".academy-link-choice")
    assert "CPU only" in choice.inner_text() and "GPU slice" in choice.inner_text()
    shot(page, "link-03-choice")
    page.click("#academy-open-anyway")
    page.wait_for_url(f"**/user/{learner.name}/lab/tree/{NOTEBOOK}")
    assert servers(hub, learner)[""]["user_options"]["profile"] == "cpu"

    # The restart is a POST with the hub's XSRF token: without it, refused and nothing stopped.
    r = learner.session.post(f"{hub.url}/hub/spawn", data={"academy-restart": "1", "profile": "mig-slice", "hours": "2"},
                             timeout=60)
    assert r.status_code == 403
    # A crafted restart (hours past the profile's maximum) is refused before anything stops.
    page.goto(f"{hub.url}{link('mig-slice', 2)}")
    page.evaluate("document.querySelector('input[name=hours]').value = '99'")
    with page.expect_navigation() as refused:
        page.click("#academy-restart")
    assert refused.value.status == 400
    assert "allows 1 to 8 hours, not 99" in page.inner_text("body")
    assert servers(hub, learner)[""]["user_options"]["profile"] == "cpu", "a refused restart stopped the server"

    page.goto(f"{hub.url}{link('mig-slice', 2)}")
    page.click("#academy-restart")
    page.wait_for_url(f"**/user/{learner.name}/lab/tree/{NOTEBOOK}", timeout=240_000)
    page.locator(".lm-TabBar-tabLabel", has_text="01_python_numpy.ipynb").first.wait_for(timeout=120_000)
    shot(page, "link-04-restarted")
    server = hub.wait_ready(learner.name, learner.token)
    assert server["user_options"] == {"profile": "mig-slice", "hours": 2}
    page.close()


def test_the_workshop_page_makes_links_that_the_hub_accepts(hub):
    """Does the trainer's workshop page make a link for its lesson that opens a learner's form preselected on the
    lesson, and refuse a profile outside the workshop or hours past the profile's maximum?"""
    from support.workshop import make_trainer, post_form, service_url, workshop_form

    trainer = make_trainer(hub, "lnktr")
    r = post_form(trainer.session, hub, "new", workshop_form("linkws", lessons="01_python_numpy", count="0"))
    assert r.status_code == 200 and "/w/linkws" in r.url, r.text[-1500:]
    builder = service_url(hub, "w/linkws/link")
    r = trainer.session.get(builder, params={"item": "lesson:01_python_numpy", "profile": "cpu", "hours": "2"}, timeout=60)
    assert r.status_code == 200, r.text[-1500:]
    made = re.search(r'id="link-made" readonly value="([^"]+)"', r.text).group(1).replace("&amp;", "&")
    assert made.startswith(f"{hub.url}/hub/spawn?opt-profile=cpu&opt-hours=2&next=")
    for params, words in [({"profile": "h100-1", "hours": "2"}, "choose one of this workshop&#39;s profiles: cpu"),
                          ({"profile": "cpu", "hours": "99"}, "allows 1 to 8 hours, not 99")]:
        r = trainer.session.get(builder, params={"item": "lesson:01_python_numpy", **params}, timeout=60)
        assert r.status_code == 400 and words in r.text, r.text[-1500:]

    learner = make_learner(hub, "lnkws")
    r = learner.session.get(builder, params={"item": "lesson:01_python_numpy", "profile": "cpu", "hours": "2"}, timeout=60)
    assert r.status_code == 403  # not a trainer of this workshop
    r = learner.session.get(made, timeout=60)
    assert r.status_code == 200 and re.search(r'id="profile-cpu" value="cpu"[^>]*checked', r.text), r.text[-1500:]
    assert form_action(r.text).startswith(
        f"/hub/spawn?next=%2Fuser%2F{learner.name}%2Flab%2Ftree%2Fai-factory-academy%2F01_python_numpy.ipynb&")
    assert servers(hub, learner) == {}
