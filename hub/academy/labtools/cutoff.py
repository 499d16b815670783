"""End access means now: after a share is revoked, this server re-asks the hub and drops others' open connections.

Revoking a share at the hub is not enough on its own: the server caches the hub's answer about each
token for ``HubAuth.cache_max_age`` (five minutes by default), and a trainer's open kernel and
terminal websockets were authorised when they opened. ``cut_off_others`` empties that cache (so every
next request of the trainer is checked again, and refused with 403) and closes every open kernel or
terminal websocket whose user is not the owner; the trainer's JupyterLab then reconnects and is refused.
``track_kernel_connections`` wraps the server's kernel websocket connection class (from the web
app's settings, whatever it is) so the open ones are known.
"""
from __future__ import annotations

import weakref

_LIVE: "weakref.WeakSet" = weakref.WeakSet()


def track_kernel_connections(web_app) -> None:
    base = web_app.settings.get("kernel_websocket_connection_class")
    if base is None or getattr(base, "_academy_tracked", False):
        return

    def connect(self):
        _LIVE.add(self)
        return base.connect(self)

    web_app.settings["kernel_websocket_connection_class"] = type(
        f"AcademyTracked{base.__name__}", (base,), {"connect": connect, "_academy_tracked": True})


def _user_of(handler) -> str | None:
    user = getattr(handler, "current_user", None)
    return getattr(user, "username", None) or (user.get("name") if isinstance(user, dict) else None)


def cut_off_others(serverapp, owner: str) -> int:
    """Forget cached authorisations and close others' websockets; returns how many were closed."""
    hub_auth = getattr(getattr(serverapp, "identity_provider", None), "hub_auth", None)
    cache = getattr(hub_auth, "cache", None)
    if cache is not None:
        cache.values.clear()
        cache.timestamps.clear()
    closed = 0
    handlers = [getattr(conn, "websocket_handler", None) for conn in list(_LIVE)]
    terminals = getattr(serverapp.web_app.settings.get("terminal_manager"), "terminals", {}) or {}
    for term in list(terminals.values()):
        handlers.extend(getattr(term, "clients", []))
    for handler in handlers:
        if handler is None or _user_of(handler) in (owner, None):
            continue
        try:
            handler.close(4003, "access to this server has ended")
            closed += 1
        except Exception:  # an already closing socket: nothing left to cut
            pass
    return closed
