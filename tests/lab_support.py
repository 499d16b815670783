"""Shared by the JupyterLab-session tests of the hub and Slurm suites: a learner's terminal over its websocket."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time

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
