"""The workshop's reservation check against the real one-node Slurm and its ``academy-workshop`` reservation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from testbed.slurm_cluster import RESERVATION
from academy.workshop.reservation import check_reservation

pytestmark = pytest.mark.slurm


async def test_the_standing_reservation_fits_one_participant_and_not_ten(slurm_cluster):
    """Does the real one-core reservation take one 1-core participant, and refuse ten with a core count?"""
    now = datetime.now(timezone.utc)
    one = await check_reservation(RESERVATION, now + timedelta(minutes=5), now + timedelta(hours=2), 1,
                                  cores_per_participant=1, memory_per_participant="512M")
    assert one.ok, one.problems
    assert one.cores == 1 and one.nodes and one.start <= now + timedelta(minutes=5)
    ten = await check_reservation(RESERVATION, now + timedelta(minutes=5), now + timedelta(hours=2), 10)
    assert not ten.ok and any("1 cores" in p for p in ten.problems)


async def test_a_missing_reservation_and_a_short_one(slurm_cluster):
    """Is an absent reservation named missing, and a real one that ends early refused for the window?"""
    missing = await check_reservation("academy-no-such-res", datetime.now(timezone.utc),
                                      datetime.now(timezone.utc) + timedelta(hours=1), 1)
    assert not missing.ok and "does not exist" in missing.problems[0]
    name = "academy-w9b-short"
    import subprocess
    subprocess.run(["scontrol", "delete", f"reservationname={name}"], capture_output=True)
    made = subprocess.run(["scontrol", "create", "reservation", f"reservationname={name}", "users=-root",
                           f"nodes={slurm_cluster.node}", "corecnt=1", "starttime=now+1hour", "duration=60"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    try:
        now = datetime.now(timezone.utc)
        short = await check_reservation(name, now + timedelta(hours=1, minutes=5), now + timedelta(hours=3), 1)
        assert not short.ok and "does not cover the workshop" in " ".join(short.problems)
    finally:
        subprocess.run(["scontrol", "delete", f"reservationname={name}"], capture_output=True)


async def test_an_unreachable_controller_is_reported(slurm_cluster, monkeypatch, tmp_path):
    """With SLURM_CONF pointing at a controller nobody runs, is the answer 'did not answer', never ok?

    A second controller address is the only way to make it unreachable without stopping the shared one.
    """
    conf = tmp_path / "slurm.conf"
    conf.write_text(slurm_cluster.conf.read_text().replace("SlurmctldPort=", "#SlurmctldPort=") +
                    "\nSlurmctldPort=1\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    check = await check_reservation(RESERVATION, datetime.now(timezone.utc),
                                    datetime.now(timezone.utc) + timedelta(hours=1), 1, timeout=8)
    assert not check.ok and "did not answer" in check.problems[0]
