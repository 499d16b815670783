"""Stopping and restarting `academy up` keeps users and their work."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import requests

from support.skip import need
from testbed.hub import HubProcess, make_learner, shared_tmpdir
from support.hub import proxy_available
from testbed.accounts import remove_accounts

pytestmark = pytest.mark.hub


def put_file(hub, learner, path, content):
    r = requests.put(
        f"{hub.url}/user/{learner.name}/api/contents/{path}",
        headers={"Authorization": f"token {learner.token}"},
        json={"type": "file", "format": "text", "content": content},
        timeout=30,
    )
    assert r.status_code in (200, 201), r.text


def get_file(hub, learner, path):
    r = requests.get(
        f"{hub.url}/user/{learner.name}/api/contents/{path}",
        headers={"Authorization": f"token {learner.token}"}, timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["content"]


def test_ctrl_c_stops_servers_and_restart_keeps_users_and_files():
    """Does Ctrl-C stop the hub and every server, and does the next `academy up` keep accounts and work?"""
    need(proxy_available(), "configurable-http-proxy (npm install)")
    workdir = shared_tmpdir("restart")
    first = HubProcess(workdir).start()
    try:
        assert first.admin_password, "first start must print the admin password once"
        learner = make_learner(first)
        first.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu"})
        first.wait_ready(learner.name, learner.token)
        put_file(first, learner, "my-notes.txt", "week 1: broadcasting finally clicked")
        lesson = "ai-factory-academy/" + sorted(
            p.name for p in (first.state_dir / "homes" / learner.name / "ai-factory-academy").glob("*.ipynb")
        )[0]
        r = requests.put(
            f"{first.url}/user/{learner.name}/api/contents/{lesson}",
            headers={"Authorization": f"token {learner.token}"},
            json={"type": "notebook", "format": "json", "content": {
                "cells": [{"cell_type": "markdown", "metadata": {}, "source": "my own answer"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}},
            timeout=30,
        )
        assert r.status_code == 200, r.text
    finally:
        rc = first.stop()
    assert rc == 0, "".join(first.output)
    if os.geteuid() == 0:
        left = subprocess.run(["pgrep", "-u", f"acad-{learner.name}"], capture_output=True, text=True)
        assert left.stdout.strip() == "", "a server outlived the hub"

    second = HubProcess(workdir, port=first.port).start()
    try:
        assert second.admin_password is None, "the admin password must only be shown on the first start"
        session = second.login(learner.name, learner.password)
        learner.session, learner.token = session, second.token_for(session, learner.name)
        second.api("POST", f"/users/{learner.name}/server", learner.token, json={"profile": "cpu"})
        second.wait_ready(learner.name, learner.token)
        assert get_file(second, learner, "my-notes.txt") == "week 1: broadcasting finally clicked"
        nb = get_file(second, learner, lesson)
        assert nb["cells"][0]["source"] == "my own answer", "re-delivering the curriculum overwrote the learner's edit"
        second.api("DELETE", f"/users/{learner.name}/server", learner.token)
    finally:
        assert second.stop() == 0
        shutil.rmtree(workdir, ignore_errors=True)
        remove_accounts()
