"""Stopping: what ``academy up`` prints while the hub stops, and how our own processes exit promptly.

JupyterHub logs its shutdown mostly at debug level and into its log file, so after Ctrl-C the
terminal used to sit silent for up to a minute.  Here the hub's direct children (the culler and
other services, each learner's server on the local backend, the proxy) are noted when the stop
begins and reported one by one as they exit, with the hub's own info lines about the cleanup.

JupyterHub stops its services one after another and polls each with a growing back-off, so every
tenth of a second a process spends tearing down its interpreter can cost the trainer a second of
waiting; :func:`exit_now` is how our services and ``academy up`` leave once nothing is left to do.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

# The hub's own info-level lines about its cleanup, echoed as they appear.
_HUB_LINES = re.compile(r"(Cleaning up .*|Leaving .*|\.\.\.done)$")


@dataclass
class Part:
    """One process the hub stops, and how it is named to the trainer."""

    pid: int
    label: str
    proc: psutil.Process


def describe(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return f"process {proc.pid}"
    if "configurable-http-proxy" in cmd:
        return "the proxy"
    if "academy.culler" in cmd or "jupyterhub_idle_culler" in cmd:
        return "the idle culler"
    if "jupyterhub-singleuser" in cmd:
        try:
            user = proc.environ().get("JUPYTERHUB_USER")
        except psutil.Error:
            user = None
        return f"the server of {user}" if user else f"a learner's server (pid {proc.pid})"
    return f"service {cmd[:60]} (pid {proc.pid})"


def parts_of(hub_pid: int) -> list[Part]:
    try:
        children = psutil.Process(hub_pid).children(recursive=False)
    except psutil.Error:
        return []
    return [Part(c.pid, describe(c), c) for c in children]


def follow(proc: subprocess.Popen, log_path: Path, log_offset: int, parts: list[Part], say=print,
           poll: float = 0.2) -> int:
    """Wait for the hub to exit, saying which of ``parts`` (taken before the stop signal) stop as they stop."""
    servers = sum("server" in p.label for p in parts)
    say(f"Stopping: {servers} learner server(s), the services and the proxy (waiting for the hub to stop them) …")
    started = time.monotonic()
    pending = {p.pid: p for p in parts}
    with open(log_path, "rb") as log:
        log.seek(log_offset)
        while True:
            for line in log.read().decode(errors="replace").splitlines():
                m = _HUB_LINES.search(line)
                if m:
                    say(f"  hub: {m.group(1)}")
            for pid, part in list(pending.items()):
                if not part.proc.is_running() or part.proc.status() == psutil.STATUS_ZOMBIE:
                    del pending[pid]
                    say(f"  stopped {part.label} ({time.monotonic() - started:.1f} s)")
            rc = proc.poll()
            if rc is not None:
                for part in pending.values():
                    say(f"  {part.label} was still running when the hub exited (pid {part.pid})")
                return rc
            time.sleep(poll)


def exit_now(rc: int = 0) -> None:
    """Flush logs and output, then leave without the interpreter's teardown of every imported module.

    Only for a process with nothing left to save: the workshop database is SQLite, whose
    transactions survive an exit at any point, and background work is redone on the next start.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(rc)
