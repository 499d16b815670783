"""The hub's garbage collector: is what start-up made kept out of every later collection?"""
from __future__ import annotations

import asyncio
import gc

from academy import hubgc


def test_start_up_objects_are_frozen_and_frozen_again_once_the_hub_has_settled():
    """Are the objects alive at config time frozen, and those made while the hub starts frozen once more?"""
    async def scenario():
        gc.unfreeze()
        handle = hubgc.install(settle=0.05)
        first = gc.get_freeze_count()
        made_while_starting = [[i] for i in range(5000)]  # stands in for users, spawners, routes
        await asyncio.sleep(0.2)
        return handle, first, gc.get_freeze_count(), made_while_starting

    try:
        handle, first, second, made = asyncio.run(scenario())
        assert handle is not None and first > 10_000
        assert second >= first + len(made)
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


def test_outside_a_running_loop_it_only_freezes():
    """Applied outside the hub's loop (a test on a bare Config), does it freeze and schedule nothing?"""
    try:
        assert hubgc.install() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
