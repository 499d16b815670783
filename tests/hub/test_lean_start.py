"""A learner's server starts without importing nbgrader, and "Validate" still works on first use."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests

from support.process import exited
from testbed.hub import REPO, free_port

pytestmark = pytest.mark.hub


@pytest.fixture
def server(tmp_path):
    """A real Jupyter server with the learners' config (hub/singleuser), as the hub's spawner sets it."""
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "server.log"
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(REPO / "hub" / "singleuser"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter-server"), f"--port={port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--allow-root", "--no-browser"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/api/status", params={"token": token}, timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            raise AssertionError("server did not start:\n" + log.read_text())
        yield url, token, log, tmp_path
    finally:
        proc.terminate()
        proc.wait(30)
        assert exited(proc.pid)


def test_validate_extension_loads_on_first_use_not_at_start(server):
    """Is nbgrader's validate extension left out of the start, and does its first request load it and validate?"""
    url, token, log, root = server
    started = log.read_text()
    assert "Deferred until first use: nbgrader.server_extensions.validate_assignment" in started
    assert "Loading the validate_assignment nbgrader serverextension" not in started
    headers = {"Authorization": f"token {token}"}
    version = requests.get(f"{url}/nbgrader_version", params={"version": "0.9.5"}, headers=headers, timeout=120)
    assert version.status_code == 200, version.text
    assert "Loaded nbgrader.server_extensions.validate_assignment on first use" in log.read_text()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, root / "lesson.ipynb")
    s = requests.Session()
    s.headers.update(headers)
    r = s.post(f"{url}/assignments/validate", data={"path": "lesson.ipynb"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    # Outside its own URLs the lazy router answers nothing: an unknown path is still a 404.
    assert s.get(f"{url}/assignments/validatex", timeout=30).status_code == 404
    # Without a token the extension's handlers refuse, exactly as when loaded at start.
    assert requests.post(f"{url}/assignments/validate", data={"path": "lesson.ipynb"}, timeout=30).status_code == 403
