"""Keep Python's garbage collector from stalling the hub: freeze what start-up made.

A full collection walks every tracked object.  In the hub that is about 260,000 of them right after
the imports (JupyterHub, SQLAlchemy, tornado, the authenticators), and a full collection took 0.2 s
of the event loop on this machine whenever the allocation counters triggered one.  The load
benchmark's stall watch (:mod:`academy.stallwatch`) caught the loop inside weakref callbacks of a
collection under most of its worst stalls.  ``gc.freeze()`` moves every object alive now into a
permanent generation that collections skip; what the hub allocates later is collected as before.
Objects made at start-up live as long as the hub, so freezing them leaks nothing.
"""
from __future__ import annotations

import asyncio
import gc

#: Seconds after the config load for the second freeze, by when the hub has loaded its users,
#: spawners and routes from the database.
SETTLE_SECONDS = 30.0


def install(settle: float = SETTLE_SECONDS) -> asyncio.TimerHandle | None:
    """Freeze now (imports and config), and once more ``settle`` seconds later on the running loop."""
    gc.collect()  # what start-up already dropped goes now, not into the permanent generation
    gc.freeze()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None  # not in the hub (a test applying config to a bare Config)
    return loop.call_later(settle, _freeze_again)


def _freeze_again() -> None:
    gc.collect()
    gc.freeze()
