"""A real learner in Debian's Chromium (Playwright, no browser download): log in, pick a profile, run a cell."""
from __future__ import annotations

import os

import pytest
import requests

from support.skip import need
from testbed.hub import REPO, make_learner
from support.hub import running_hub

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "test-output" / "browser"
# Chromium's background services would try the (closed) network and slow every start.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    need(os.access(CHROMIUM, os.X_OK), "Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def hub():
    with running_hub("browser") as h:
        yield h


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_learner_logs_in_picks_profile_and_runs_a_cell(hub, browser):
    """Can a learner log in, pick the CPU profile, land in JupyterLab, open a notebook and run a cell?"""
    learner = make_learner(hub, "browser")
    # A notebook of the learner's own, created through the server's API once it runs.
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(90_000)
    page.goto(f"{hub.url}/hub/login")
    shot(page, "01-login")
    page.fill("input[name=username]", learner.name)
    page.fill("input[name=password]", learner.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/hub/home")
    page.goto(f"{hub.url}/hub/spawn")
    page.wait_for_selector("#profile-cpu")
    shot(page, "02-profile-picker")
    page.check("#profile-cpu")
    page.select_option("#academy-hours", "1")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/user/{learner.name}/lab**", timeout=120_000)
    page.wait_for_selector(".jp-LauncherCard, .jp-DirListing", timeout=120_000)
    shot(page, "03-jupyterlab")

    r = requests.put(
        f"{hub.url}/user/{learner.name}/api/contents/first-steps.ipynb",
        headers={"Authorization": f"token {learner.token}"},
        json={"type": "notebook", "format": "json", "content": {
            "cells": [{"cell_type": "code", "metadata": {}, "source": "print('answer', 6 * 7)",
                       "outputs": [], "execution_count": None}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    page.goto(f"{hub.url}/user/{learner.name}/lab/tree/first-steps.ipynb")
    # The welcome notebook (opened on first start) is open too, in a tab JupyterLab may hide without
    # display:none (so ":visible" can still match it): find the cell by its own text.
    cell = page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell", has_text="6 * 7").first
    try:
        cell.wait_for()
        # The status bar says "Idle" once the kernel is up; running earlier only queues the cell.
        page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=180_000)
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        output = page.locator(".jp-OutputArea-output", has_text="answer 42")
        output.wait_for(timeout=180_000)
    finally:
        shot(page, "04-cell-ran")
    assert "answer 42" in output.first.inner_text()
    assert page.locator("text=Create Assignment").count() == 0, "learners must not see nbgrader's instructor panels"
    page.close()
    hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
