"""Shared by the JupyterLab-session tests of the hub and Slurm suites: a learner's terminal and kernels over their websockets."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import uuid

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


async def terminal_output(hub, who, name: str, command: str, marker: str) -> str:
    """Type ``command`` into the learner's terminal ``name`` (through the proxy) and collect output up to ``marker``."""
    url = f"ws://127.0.0.1:{hub.port}/user/{who.name}/terminals/websocket/{name}"
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {who.token}"}))
    out = ""
    await conn.write_message(json.dumps(["stdin", command + "\r"]))
    deadline = time.monotonic() + 60
    while marker not in out and time.monotonic() < deadline:
        msg = await asyncio.wait_for(conn.read_message(), 60)
        if msg is None:
            break
        kind, *data = json.loads(msg)
        if kind == "stdout":
            out += data[0]
    conn.close()
    return out


def terminal_run(hub, who, name: str, command: str, marker: str) -> str:
    """``terminal_output`` from synchronous tests, in its own thread: Playwright's sync API may hold this one's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, terminal_output(hub, who, name, command, marker)).result()


async def kernel_messages(hub, who, kernel_id: str, code: str, *, until: str = "done",
                          timeout: float = 120) -> list[dict]:
    """Send ``code`` to a learner's kernel over the Jupyter websocket (through the proxy); the messages it caused.

    ``until="done"`` waits for the shell reply *and* the kernel's return to idle on iopub: the two
    channels are not ordered against each other, so output may still arrive after the reply.
    ``until="started"`` returns as soon as the kernel is busy with the code.  A kernel that dies or
    restarts (a memory limit) or a closed connection also ends the wait.
    """
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
    seen: list[dict] = []
    replied = idle = False
    try:
        while True:
            raw = await asyncio.wait_for(conn.read_message(), timeout)
            if raw is None:
                return seen
            msg = json.loads(raw)
            state = msg.get("content", {}).get("execution_state")
            if state in ("restarting", "dead"):
                seen.append(msg)
                return seen
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            seen.append(msg)
            if until == "started" and msg["msg_type"] == "execute_input":
                return seen
            replied = replied or msg["msg_type"] == "execute_reply"
            idle = idle or state == "idle"
            if replied and idle:
                return seen
    finally:
        conn.close()


def kernel_output(hub, who, kernel_id: str, code: str, timeout: float = 120) -> str:
    """Run ``code`` to the end and return what it printed; an error in the kernel fails the test with its traceback."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        replies = pool.submit(asyncio.run, kernel_messages(hub, who, kernel_id, code, timeout=timeout)).result()
    errors = [m["content"] for m in replies if m["msg_type"] == "error"]
    assert not errors, "\n".join("\n".join(e.get("traceback", [])) or str(e) for e in errors)
    assert any(m["msg_type"] == "execute_reply" for m in replies), f"the kernel never answered: {replies[-3:]}"
    return "".join(m["content"].get("text", "") for m in replies if m["msg_type"] == "stream")
