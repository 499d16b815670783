"""Shared by the browser tests: a Chromium page logged in through the hub's real form, and a JupyterLab started from the spawn form."""
from __future__ import annotations


def logged_in_page(browser, hub, who, width: int = 1600, height: int = 900):
    """A new page of ``browser``, logged in as ``who`` through the real login form, on the hub's home."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(120_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", who.name)
    page.fill("input[name=password]", who.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/hub/home")
    return page


def start_lab(page, hub, who, profile: str = "cpu", hours: str | None = None) -> None:
    """Start ``who``'s server from the spawn form (``profile``, ``hours`` if given) and wait for JupyterLab."""
    page.goto(f"{hub.url}/hub/spawn")
    page.check(f"#profile-{profile}")
    if hours is not None:
        page.select_option("#academy-hours", hours)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/user/{who.name}/lab**", timeout=240_000)
