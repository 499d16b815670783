"""Own environments inside a Slurm job: created, filled from the index and used as a kernel, all within the job.

A real job on the one-node Slurm runs the learner's server as their own Unix user; the commands run
in a notebook cell there (as a learner's terminal would), so `academy env` and pip run inside the job.
PyPI (or $PIP_INDEX_URL) must be reachable.
"""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from slurm_hub import spawn

pytestmark = pytest.mark.slurm
PACKAGE = "cowsay"  # tiny, pure Python, not in the shared environment


async def _run(hub, who, kernel_id: str, code: str, timeout: float = 600) -> str:
    url = f"ws://127.0.0.1:{hub.port}/user/{who.name}/api/kernels/{kernel_id}/channels"
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {who.token}"}))
    msg_id = uuid.uuid4().hex
    conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": who.name,
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out = []
    try:
        while True:
            msg = json.loads(await asyncio.wait_for(conn.read_message(), timeout))
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "execute_reply":
                return "".join(out)
    finally:
        conn.close()


def kernel(hub, who, name: str) -> str:
    r = who.session.post(f"{hub.url}/user/{who.name}/api/kernels", json={"name": name},
                         headers={"Authorization": f"token {who.token}"}, timeout=120)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_env_create_pip_install_and_kernel_inside_a_slurm_job(slurm_hub, learner):
    """In a Slurm job: does `academy env create myenv`, pip install into it, and a kernel on it importing the package work?"""
    spawn(slurm_hub, learner, {"profile": "cpu"}, timeout=180)
    try:
        setup = kernel(slurm_hub, learner, "python3")
        code = (
            "import os, subprocess, sys\n"
            "academy = os.path.join(os.path.dirname(sys.executable), 'academy')\n"
            "r = subprocess.run([academy, 'env', 'create', 'myenv'], capture_output=True, text=True)\n"
            "assert r.returncode == 0, r.stdout + r.stderr\n"
            "py = os.path.expanduser('~/.academy/envs/myenv/bin/python')\n"
            f"r = subprocess.run([py, '-m', 'pip', 'install', '--disable-pip-version-check', '{PACKAGE}'],"
            " capture_output=True, text=True)\n"
            "assert r.returncode == 0, r.stdout + r.stderr\n"
            "print(os.environ['SLURM_JOB_ID'])\n"
        )
        job_id = asyncio.run(_run(slurm_hub, learner, setup, code)).strip()
        assert job_id.isdigit()
        own = kernel(slurm_hub, learner, "academy-myenv")
        out = asyncio.run(_run(slurm_hub, learner, own,
                               f"import {PACKAGE}, os, sys, pwd\n"
                               "print(os.environ.get('SLURM_JOB_ID'), pwd.getpwuid(os.getuid()).pw_name, sys.prefix)"))
        job, user, prefix = out.split()
        assert job == job_id and user == learner.name
        assert prefix.endswith("/.academy/envs/myenv")
        envs = learner.session.get(f"{slurm_hub.url}/user/{learner.name}/academy/api/envs",
                                   headers={"Authorization": f"token {learner.token}"}, timeout=60).json()["envs"]
        assert [e["name"] for e in envs] == ["myenv"]
    finally:
        slurm_hub.api("DELETE", f"/users/{learner.name}/server", learner.token)
