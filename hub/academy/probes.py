"""Low-level facts about this machine and checkout that config loading and the pre-flight checks both need.

Where the project lives (``PROJECT_ROOT``, its one definition), which configurable-http-proxy
runs, whether a port can be bound, a free port to use. The module imports nothing from the
package, so ``siteconfig``, ``doctor_checks`` and the course layout can all use it without
importing each other (a unit test keeps it so).
"""
from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path

# hub/academy/probes.py -> hub/academy -> hub -> the checkout; relative config paths start here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def find_proxy(cfg: dict) -> str | None:
    """configurable-http-proxy: the configured path, the project's npm copy, then PATH."""
    configured = cfg["hub"]["proxy_cmd"]
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    local = Path(cfg.get("_root", PROJECT_ROOT)) / "node_modules" / ".bin" / "configurable-http-proxy"
    if os.access(local, os.X_OK):
        return str(local)
    return shutil.which("configurable-http-proxy")


def port_in_use(ip: str, port: int) -> str | None:
    """Why ``ip:port`` cannot be bound, or None when it is free."""
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the proxy does: connections in TIME_WAIT from a previous run must not count as "in use".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {ip} is already in use (another hub? `academy up` already running?)"
            return f"cannot bind {ip}:{port}: {exc.strerror}"
    return None


def free_port(ip: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]
