"""The Launcher's "New project" in Chromium: a learner picks a template, names the folder, gets its notebook open.

The whole chain a learner uses: the Academy lab extension's Launcher card and dialogs, the learner
server's ``academy/api/projects`` (the same name check as ``academy project new``) and the home.
"""
from __future__ import annotations

import json

import pytest

from support.hub import running_hub
from testbed.hub import make_learner
from support.pages import logged_in_page, start_lab
from test_browser import browser, shot  # noqa: F401 (the module's Chromium fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def hub():
    with running_hub("projectsbrowser") as h:
        yield h


def _new_project(page, template_title: str, name: str) -> None:
    page.keyboard.press("Control+Shift+L")
    # Each Launcher keeps its cards; the one just opened is the visible one.
    card = page.locator(".jp-LauncherCard:visible", has_text="New project").first
    card.wait_for(timeout=60_000)
    card.click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option(label=template_title)
    dialog.locator(".jp-mod-accept").click()
    dialog.locator("input").wait_for()
    dialog.locator("input").fill(name)
    dialog.locator(".jp-mod-accept").click()


def test_new_project_from_the_launcher_opens_its_notebook_and_a_bad_name_is_explained(hub, browser):  # noqa: F811
    """Does "New project" in the Launcher refuse "../escape" with the server's reason, then create ~/churn from the
    tabular template and open churn/project.ipynb, and does a template link open New project with its template?"""
    learner = make_learner(hub, "projb")
    page = logged_in_page(browser, hub, learner)
    start_lab(page, hub, learner)
    page.locator(".lm-TabBar-tabLabel", has_text="00_welcome.ipynb").first.wait_for(timeout=120_000)

    home = hub.state_dir / "homes" / learner.name
    _new_project(page, "Tabular model", "../escape")
    page.get_by_text("No project created").first.wait_for(timeout=30_000)
    page.get_by_text("a name, not a path").first.wait_for(timeout=5_000)
    shot(page, "projects-01-bad-name")
    assert not (home.parent / "escape").exists() and not (home / "escape").exists()

    _new_project(page, "Tabular model", "churn")
    page.locator(".lm-TabBar-tabLabel", has_text="project.ipynb").first.wait_for(timeout=60_000)
    page.locator(".jp-RenderedMarkdown h1:visible", has_text="Tabular model").first.wait_for(timeout=60_000)
    shot(page, "projects-02-created")
    assert (home / "churn" / "train.py").is_file() and (home / "churn" / "job.sh").is_file()
    # A forged request riding on the learner's cookies (what another site's page could send) lacks the
    # XSRF token JupyterLab adds: refused, nothing created.
    forged = page.request.post(f"{hub.url}/user/{learner.name}/academy/api/projects",
                               data=json.dumps({"template": "batch-job", "name": "forged"}),
                               headers={"Content-Type": "application/json"})
    assert forged.status == 403, (forged.status, forged.text())
    assert not (home / "forged").exists()
    # The same cookies do authenticate: a GET passes, and the POST passes once it carries the XSRF token,
    # so the refusal above was the XSRF check, not a missing login.
    assert page.request.get(f"{hub.url}/user/{learner.name}/academy/api/projects").status == 200
    xsrf = next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf" and learner.name in c.get("path", ""))
    with_token = page.request.post(f"{hub.url}/user/{learner.name}/academy/api/projects",
                                   data=json.dumps({"template": "batch-job", "name": "with-token"}),
                                   headers={"Content-Type": "application/json", "X-XSRFToken": xsrf})
    assert with_token.status == 201, (with_token.status, with_token.text())

    # A one-click template link (`academy link --template`) lands on lab?academy-template=SLUG: New project
    # opens with that template chosen, and the learner still names the folder.
    page.goto(f"{hub.url}/user/{learner.name}/lab?academy-template=batch-job")
    dialog = page.locator(".jp-Dialog", has_text="New project: Batch job skeleton")
    dialog.locator("input").fill("linked")
    dialog.locator(".jp-mod-accept").click()
    page.locator(".lm-TabBar-tabLabel", has_text="project.ipynb").first.wait_for(timeout=60_000)
    assert (home / "linked" / "job.sh").is_file()
    assert "academy-template" not in page.url, page.url  # taken out of the address bar: a reload asks nothing
    page.goto(f"{hub.url}/user/{learner.name}/lab?academy-template=no-such-template")
    page.get_by_text("that this site does not have").first.wait_for(timeout=60_000)
    page.close()
