"""The Launcher's "New project" endpoint on a real learner server behind a real hub and proxy.

The local backend as root: each learner is a real Unix account, so "created as the learner" is the
file's owner. Attacks tried: no token, another learner's token, path and shell characters in the
name or template, a name already taken, a body that is not an object.
"""
from __future__ import annotations

import os
import pwd
import time
from pathlib import Path

import pytest
import requests

from academy.accounts import LOCAL_UNIX_PREFIX
from academy.project.templates import find_template
from support.hub import running_hub
from testbed.hub import make_learner

pytestmark = pytest.mark.hub

PROFILES = """profiles:
  - slug: cpu
    display_name: CPU · 1 core, 512 MB
    description: No GPU.
    cpus: 1
    memory: 512M
    hours: {default: 1, max: 2}
    idle_seconds: 3600
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    profiles = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    profiles.write_text(PROFILES)
    profiles.parent.chmod(0o755)
    with running_hub("projects", site={"profiles_file": str(profiles), "local": {"start_timeout": 300}}) as h:
        yield h


def _spawn(hub, who) -> None:
    r = hub.api("POST", f"/users/{who.name}/server", who.token, json={"profile": "cpu"})
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        server = hub.api("GET", f"/users/{who.name}", who.token).json()["servers"].get("")
        if server and server.get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"server of {who.name} did not start" + hub.log_tail())


def _stop(hub, who) -> None:
    hub.api("DELETE", f"/users/{who.name}/server", who.token)


def _post(hub, owner, caller_token: str | None, body) -> requests.Response:
    headers = {"Authorization": f"token {caller_token}"} if caller_token else {}
    return requests.post(f"{hub.url}/user/{owner.name}/academy/api/projects", json=body, headers=headers,
                         timeout=60, allow_redirects=False)


def test_new_project_is_created_as_the_learner_and_refuses_bad_names_strangers_and_overwrites(hub):
    """Does POST academy/api/projects create ~/NAME owned by the learner, and refuse without a token, with another
    learner's token, with path or shell characters, and for a taken name, creating nothing each time?"""
    who, other = make_learner(hub, "proj"), make_learner(hub, "projx")
    _spawn(hub, who)
    try:
        home = hub.state_dir / "homes" / who.name
        uid = pwd.getpwnam(f"{LOCAL_UNIX_PREFIX}{who.name}").pw_uid

        listed = requests.get(f"{hub.url}/user/{who.name}/academy/api/projects", timeout=60,
                              headers={"Authorization": f"token {who.token}"})
        assert listed.status_code == 200, listed.text
        slugs = {t["slug"] for t in listed.json()["templates"]}
        assert {"transformer-finetune", "image-classifier", "tabular-model", "batch-job"} <= slugs

        before = set(os.listdir(home))
        for caller in (None, other.token):
            r = _post(hub, who, caller, {"template": "batch-job", "name": "stolen"})
            assert r.status_code in (302, 403, 404), (caller is None, r.status_code, r.text)
        for body in ({"template": "batch-job", "name": "../escape"}, {"template": "batch-job", "name": "a/b"},
                     {"template": "batch-job", "name": ".hidden"}, {"template": "batch-job", "name": "x; rm -rf ~"},
                     {"template": "batch-job", "name": "x" * 200}, {"template": "../../etc", "name": "fine"},
                     {"template": "batch-job"}, ["batch-job", "list"]):
            r = _post(hub, who, who.token, body)
            assert r.status_code == 400, (body, r.status_code, r.text)
            assert r.json()["message"], body
        assert set(os.listdir(home)) == before and not (home.parent / "escape").exists()
        assert "a name, not a path" in _post(hub, who, who.token, {"template": "batch-job", "name": "../escape"}).json()["message"]

        made = _post(hub, who, who.token, {"template": "tabular-model", "name": "churn"})
        assert made.status_code == 201, made.text
        assert made.json() == {"path": "churn", "notebook": "churn/project.ipynb"}
        project = home / "churn"
        template = find_template("tabular-model").path
        assert (project / "train.py").read_bytes() == (template / "train.py").read_bytes()
        assert all(p.stat().st_uid == uid for p in [project, *project.rglob("*")])
        # The lab opens the notebook next: the server's contents API sees it where the answer says.
        seen = requests.get(f"{hub.url}/user/{who.name}/api/contents/churn/project.ipynb?content=0", timeout=60,
                            headers={"Authorization": f"token {who.token}"})
        assert seen.status_code == 200, seen.text

        (project / "train.py").write_text("# my own work\n")
        again = _post(hub, who, who.token, {"template": "batch-job", "name": "churn"})
        assert again.status_code == 409 and "already exists" in again.json()["message"]
        assert (project / "train.py").read_text() == "# my own work\n" and not (project / "README.md").read_text().startswith("# Batch")
    finally:
        _stop(hub, who)
