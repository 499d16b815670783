"""Shared by the Ask-a-trainer tests (hub and browser): the token the hub gave a learner's server, and browser logins."""
from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from academy.labtools.servicelink import Answer, HubShares, ServerIdentity


def server_token(who) -> str:
    """The API token the hub gave the learner's server, read from that process's environment (we are root)."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"jupyterhub-singleuser" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(kv.split("=", 1) for kv in (proc / "environ").read_bytes().decode().split("\0") if "=" in kv)
        except OSError:
            continue
        if env.get("JUPYTERHUB_USER") == who.name:
            return env["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no server process of {who.name}")


def server_identity(hub, who) -> ServerIdentity:
    """The learner's server as its own extension sees it, but with the proxy's address for the hub API."""
    return ServerIdentity(user=who.name, server_name="", prefix=f"/user/{who.name}/", hub_api=f"{hub.url}/hub/api",
                          service_url=f"{hub.url}/services/academy/", token=server_token(who))


def share_with_group(hub, who, group: str) -> Answer:
    """The learner's server shares itself with ``group`` (production client, server token), from any thread:
    Playwright's sync API may hold this thread's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, HubShares(server_identity(hub, who)).share_with_group(group)).result()


def log_in(context, hub, who, next_path: str = "/hub/home"):
    """A page of ``context`` logged in as ``who`` through the real form, at ``next_path``."""
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{hub.url}/hub/login?next={next_path}")
    page.fill("input[name=username]", who.name)
    page.fill("input[name=password]", who.password)
    page.click("input[type=submit], button[type=submit]")
    return page


def authorize_if_asked(page) -> None:
    """JupyterHub asks a user to confirm once before it lets them into a server shared with them."""
    if "oauth2/authorize" in page.url:
        page.click("input[type=submit], button[type=submit]")
