"""academy.spawners.local.cgroups without touching the machine's cgroups: units, names and the files each version gets.

The real v1 hierarchy is exercised by tests/hub/test_local_limits.py; cgroup v2 is not mounted on this
machine, so its file layout is checked here against a scratch directory standing in for /sys/fs/cgroup.
"""
from __future__ import annotations

import pytest

from academy.spawners.local import cgroups


@pytest.mark.parametrize("text, expected", [("512M", 512 * 1024**2), ("16G", 16 * 1024**3), ("1T", 1024**4)])
def test_profile_memory_is_read_in_binary_units(text, expected):
    """Is a profile's memory read as Slurm reads it (16G = 16 GiB)?"""
    assert cgroups.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "16", "16GB", "0G", "-1G", "1.5G"])
def test_odd_memory_values_are_refused(text):
    """Is anything but digits and one K/M/G/T unit refused?"""
    with pytest.raises(ValueError):
        cgroups.parse_memory(text)


@pytest.mark.parametrize("account", ["../etc", "a/b", "", "Acad", "x" * 40])
def test_group_names_are_only_unix_account_names(account, tmp_path):
    """Can a crafted account name reach outside academy/ in the cgroup tree?"""
    with pytest.raises(ValueError):
        cgroups.UserGroup(account, root=tmp_path, kind="v1")


def test_v2_layout_limits_and_controllers(tmp_path):
    """Does cgroup v2 get memory.max, cpu.max and the controllers enabled on the way down?"""
    group = cgroups.UserGroup("acad-ann", root=tmp_path, kind="v2")
    group.apply(cgroups.Limits(memory_bytes=512 * 1024**2, cpus=1.5))
    assert group.dirs == [tmp_path / "academy" / "acad-ann"]
    assert (tmp_path / "academy" / "acad-ann" / "memory.max").read_text() == str(512 * 1024**2)
    assert (tmp_path / "academy" / "acad-ann" / "cpu.max").read_text() == "150000 100000"
    for level in (tmp_path, tmp_path / "academy"):
        assert (level / "cgroup.subtree_control").read_text() == "+memory +cpu"


def test_v1_layout_limits(tmp_path):
    """Does cgroup v1 get the memory limit in the memory tree and the CFS quota in the cpu tree?"""
    group = cgroups.UserGroup("acad-ann", root=tmp_path, kind="v1")
    group.apply(cgroups.Limits(memory_bytes=2 * 1024**3, cpus=4))
    assert (tmp_path / "memory" / "academy" / "acad-ann" / "memory.limit_in_bytes").read_text() == str(2 * 1024**3)
    assert (tmp_path / "cpu" / "academy" / "acad-ann" / "cpu.cfs_quota_us").read_text() == "400000"
    assert (tmp_path / "cpu" / "academy" / "acad-ann" / "cpu.cfs_period_us").read_text() == "100000"


def test_limits_are_capped_at_the_machines_memory():
    """Is a profile's memory capped at what the machine has (from /proc/meminfo), and left alone below it?"""
    kib = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal:")))
    assert cgroups.machine_memory() == kib * 1024
    assert cgroups.capped(cgroups.Limits(2**50, 2.0), 2**34) == cgroups.Limits(2**34, 2.0)
    assert cgroups.capped(cgroups.Limits(2**30, 2.0), 2**34) == cgroups.Limits(2**30, 2.0)
    assert cgroups.gib(23 * 1024**3 + 5) == "23 GiB"


@pytest.mark.parametrize("kind, file, default", [("v1", "cpu/academy/acad-ann/cpu.shares", "1024"),
                                                 ("v2", "academy/acad-ann/cpu.weight", "100")])
def test_a_starting_server_weighs_more_then_as_much_as_the_rest(tmp_path, kind, file, default):
    """Is a starting server's claim on busy cores raised, then set back to the default, and never below 1x?"""
    group = cgroups.UserGroup("acad-ann", root=tmp_path, kind=kind)
    group.apply(cgroups.Limits(memory_bytes=512 * 1024**2, cpus=1))
    group.weigh(8)
    assert (tmp_path / file).read_text() == str(int(default) * 8)
    group.weigh(1)
    assert (tmp_path / file).read_text() == default
    with pytest.raises(ValueError):
        group.weigh(0)
