"""Ports for local servers from a range of their own, outside the kernel's ephemeral ports.

JupyterHub's ``random_port()`` binds port 0, reads the number and closes the socket; the server
binds that number seconds later, after its imports. Meanwhile every other ``bind(0)`` on the machine
draws from the same ephemeral range (``net.ipv4.ip_local_port_range``), and a class's running kernels
open five ZMQ sockets each. Under load one of them took a starting server's port: the server could
not bind and exited, and the spawn failed. Ports from a range outside the ephemeral one are only
ever handed out on purpose, so only the hub's own picks compete, and :class:`PortPool` never gives
one port to two servers at once. A port something else already listens on is skipped.
"""
from __future__ import annotations

import errno
import random
import socket
import threading
from pathlib import Path

EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def parse_range(text: str) -> tuple[int, int]:
    """``"20000-29999"`` as ``(20000, 29999)``; ValueError with the reason otherwise."""
    first, sep, last = str(text).partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise ValueError(f"a port range is FIRST-LAST, e.g. 20000-29999, not {text!r}")
    a, b = int(first), int(last)
    if not 1024 <= a <= b <= 65535:
        raise ValueError(f"port range {text!r}: need 1024 <= FIRST <= LAST <= 65535")
    if b - a < 15:
        raise ValueError(f"port range {text!r} is too small: at least 16 ports, one per server that may run at once")
    return a, b


def ephemeral_range() -> tuple[int, int] | None:
    """The kernel's range for ``bind(0)``, or None where it cannot be read."""
    try:
        a, b = EPHEMERAL.read_text().split()
        return int(a), int(b)
    except (OSError, ValueError):
        return None


def overlaps_ephemeral(first: int, last: int) -> bool:
    eph = ephemeral_range()
    return eph is not None and first <= eph[1] and eph[0] <= last


def _free(port: int) -> bool:
    """Nothing listens on or holds ``port`` on any address (the server binds all or one of them)."""
    with socket.socket() as s:
        try:
            s.bind(("", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


class PortPool:
    """The ports of one range that the hub's servers hold now; ``take`` one per start, ``give_back`` at stop."""

    def __init__(self, first: int, last: int, is_free=_free) -> None:
        self.first, self.last, self.is_free = first, last, is_free
        self._held: dict[int, str] = {}
        self._lock = threading.Lock()

    def take(self, owner: str) -> int:
        """A free port for ``owner`` (its previous one is given back first); RuntimeError when none is left."""
        with self._lock:
            self._drop(owner)
            size = self.last - self.first + 1
            start = random.randrange(size)
            for i in range(size):
                port = self.first + (start + i) % size
                if port not in self._held and self.is_free(port):
                    self._held[port] = owner
                    return port
        raise RuntimeError(f"no free port left in {self.first}-{self.last} for {owner}: widen local.server_ports")

    def give_back(self, owner: str) -> None:
        with self._lock:
            self._drop(owner)

    def held(self) -> dict[int, str]:
        with self._lock:
            return dict(self._held)

    def _drop(self, owner: str) -> None:
        for port in [p for p, o in self._held.items() if o == owner]:
            del self._held[port]


_POOLS: dict[tuple[int, int], PortPool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(text: str) -> PortPool:
    """The hub's one pool for the range ``text`` (every spawner of the hub shares it)."""
    first, last = parse_range(text)
    with _POOLS_LOCK:
        return _POOLS.setdefault((first, last), PortPool(first, last))
