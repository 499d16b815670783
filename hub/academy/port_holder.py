"""Who holds a busy TCP port: this site's running hub, another program, or a process we cannot see.

``academy doctor`` asks while the hub may be running: its own port is then busy, and that is no
problem.  ``academy up`` starts JupyterHub with the state dir as its working directory, and the proxy
that listens on the public port inherits it, so a listener whose process (or a parent) works in this
site's state dir is this site's hub.  Processes of other users are only visible to root, as in ``ss -p``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

# The proxy is a child of JupyterHub, which is a child of `academy up`: a few levels are enough.
_PARENT_LEVELS = 4


@dataclass(frozen=True)
class PortHolder:
    """The process listening on a port; ``pid`` is None when this user may not see which one."""

    port: int
    pid: int | None
    command: str = ""
    cwds: tuple[str, ...] = ()  # working directories of the process and its parents, nearest first

    def works_in(self, directory: str | Path) -> bool:
        """Does the process, or one of its parents, run in ``directory``?"""
        wanted = str(Path(directory).resolve())
        return wanted in self.cwds

    def describe(self) -> str:
        if self.pid is None:
            return "a process this user cannot see (run `academy doctor` as the hub's user to name it)"
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def _command(proc: psutil.Process, limit: int = 80) -> str:
    try:
        text = " ".join(proc.cmdline()) or proc.name()
    except (psutil.Error, OSError):
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cwds(proc: psutil.Process) -> tuple[str, ...]:
    found = []
    for _ in range(_PARENT_LEVELS):
        try:
            found.append(proc.cwd())
            proc = proc.parent()
        except (psutil.Error, OSError):
            break
        if proc is None:
            break
    return tuple(found)


def holder(port: int) -> PortHolder | None:
    """The listener on ``port`` (any local address), or None when nothing listens there."""
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if conn.pid is None:
            return PortHolder(port, None)
        try:
            proc = psutil.Process(conn.pid)
        except psutil.Error:  # gone since the listing
            return PortHolder(port, conn.pid)
        return PortHolder(port, conn.pid, _command(proc), _cwds(proc))
    return None
