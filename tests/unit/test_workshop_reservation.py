"""The workshop's reservation check against replayed ``scontrol`` output (no Slurm needed)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from academy.slurm.commands import CommandResult
from academy.workshop.reservation import check_reservation, memory_mb, overlaps

UTC = timezone.utc
RES = ("ReservationName=ws StartTime=2026-12-03T08:00:00 EndTime=2026-12-03T18:00:00 Duration=10:00:00 "
       "Nodes=gpu[01-02] NodeCnt=2 CoreCnt=8 Features=(null) PartitionName=gpu-mig Flags=SPEC_NODES "
       "NodeName=gpu01 CoreIDs=0-3 NodeName=gpu02 CoreIDs=0-3 TRES=cpu=8 Users=-root State=INACTIVE")
NODES = ("NodeName=gpu01 Arch=x86_64 CPUTot=64 RealMemory=4000 State=IDLE\n"
         "NodeName=gpu02 Arch=x86_64 CPUTot=64 RealMemory=4000 State=IDLE\n")


class Script:
    """Replays (expected command regex, result) pairs in order, as batchspawner's tests do."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.seen: list[str] = []

    async def __call__(self, cmd: str) -> CommandResult:
        self.seen.append(cmd)
        assert self.steps, f"unexpected command {cmd}"
        pattern, (rc, out, err, timed_out) = self.steps.pop(0)
        assert re.search(pattern, cmd), f"{cmd!r} does not match {pattern!r}"
        return CommandResult(cmd, rc, out, err, timed_out)


def ok(out):
    return (0, out, "", False)


WORKSHOP = (datetime(2026, 12, 3, 9, 0, tzinfo=UTC), datetime(2026, 12, 3, 17, 0, tzinfo=UTC))


async def test_a_reservation_that_fits_is_ok_and_reports_what_it_found():
    """Does a reservation covering the window with enough cores pass, with its nodes, cores and times?"""
    script = Script((r"^scontrol --oneliner show reservation ws$", ok(RES)), (r"show node 'gpu\[01-02\]'", ok(NODES)))
    check = await check_reservation("ws", *WORKSHOP, 8, cores_per_participant=1, memory_per_participant="512M",
                                    runner=script, slurm_tz=UTC)
    assert check.ok and check.problems == []
    assert (check.nodes, check.cores, check.memory_mb) == ("gpu[01-02]", 8, 8000)
    assert check.start == datetime(2026, 12, 3, 8, 0, tzinfo=UTC) and check.end.hour == 18


async def test_a_missing_reservation_is_named():
    """Does 'Reservation x not found' become a problem saying it does not exist?"""
    script = Script((r"show reservation nope", (1, "Reservation nope not found\n", "", False)))
    check = await check_reservation("nope", *WORKSHOP, 1, runner=script)
    assert not check.ok and "does not exist" in check.problems[0]


@pytest.mark.parametrize("result", [
    (1, "", "slurm_load_reservations error: Unable to contact slurm controller (connect failure)", False),
    (-9, "", "", True),
])
async def test_an_unreachable_controller_is_never_ok(result):
    """Is a controller that errors or times out reported as unreachable, not as 'ok' or 'missing'?"""
    check = await check_reservation("ws", *WORKSHOP, 1, runner=Script((r"show reservation ws", result)))
    assert not check.ok and "did not answer" in check.problems[0] and "does not exist" not in check.problems[0]


async def test_a_reservation_ending_before_the_workshop_is_refused():
    """Is a workshop running past the reservation's end refused with both windows in the message?"""
    script = Script((r"show reservation", ok(RES)), (r"show node", ok(NODES)))
    late = (WORKSHOP[0], datetime(2026, 12, 3, 19, 0, tzinfo=UTC))
    check = await check_reservation("ws", *late, 2, runner=script, slurm_tz=UTC)
    assert not check.ok and "does not cover the workshop" in check.problems[0] and "18:00" in check.problems[0]


async def test_too_many_participants_for_the_cores_or_memory():
    """Are 9 participants at 1 core refused in 8 reserved cores, and 3 at 3G in 8000 MB?"""
    cores = await check_reservation("ws", *WORKSHOP, 9, runner=Script((r"reservation", ok(RES)), (r"node", ok(NODES))),
                                    slurm_tz=UTC)
    assert not cores.ok and any("need 9" in p for p in cores.problems)
    mem = await check_reservation("ws", *WORKSHOP, 3, memory_per_participant="3G",
                                  runner=Script((r"reservation", ok(RES)), (r"node", ok(NODES))), slurm_tz=UTC)
    assert not mem.ok and any("9216 MB" in p for p in mem.problems)


async def test_end_before_start_is_a_problem():
    """Is a workshop ending before it starts refused even when the reservation is fine?"""
    script = Script((r"reservation", ok(RES)), (r"node", ok(NODES)))
    check = await check_reservation("ws", WORKSHOP[1], WORKSHOP[0], 1, runner=script, slurm_tz=UTC)
    assert "ends before it starts" in " ".join(check.problems)


async def test_a_hostile_name_never_reaches_scontrol():
    """Is a name with shell or option characters refused before any command runs?"""
    script = Script()
    for name in ("ws; rm -rf /", "--all", "", "a b"):
        check = await check_reservation(name, *WORKSHOP, 1, runner=script)
        assert not check.ok and "not a Slurm reservation name" in check.problems[0]
    assert script.seen == []


def test_overlap_rule_is_half_open():
    """Do back-to-back workshops not overlap, while any shared instant does?"""
    t = datetime(2026, 12, 3, 9, tzinfo=UTC)
    h = timedelta(hours=1)
    assert not overlaps(t, t + h, t + h, t + 2 * h)
    assert overlaps(t, t + 2 * h, t + h, t + 3 * h)
    assert overlaps(t, t + 3 * h, t + h, t + 2 * h)


def test_memory_sizes():
    """Are 512M, 2G and a bare number (MB) read; is nonsense refused?"""
    assert (memory_mb("512M"), memory_mb("2G"), memory_mb(1024)) == (512, 2048, 1024)
    with pytest.raises(ValueError):
        memory_mb("lots")
