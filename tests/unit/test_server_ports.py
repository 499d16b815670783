"""Ports for local servers: a range of the hub's own, outside the kernel's ephemeral ports (#17)."""
from __future__ import annotations

import socket
import threading

import pytest

from academy.siteconfig import build_config
from academy.spawners.local import ports
from academy.validation import ConfigError


def test_the_default_range_is_outside_this_machines_ephemeral_ports():
    """Is the default range clear of net.ipv4.ip_local_port_range, where kernels' sockets draw their ports?"""
    first, last = ports.parse_range(build_config({})["local"]["server_ports"])
    assert ports.ephemeral_range() is not None, "this Linux machine has the sysctl"
    assert not ports.overlaps_ephemeral(first, last)


def test_no_port_is_given_twice_and_a_listening_port_is_skipped():
    """With 16 ports and one already taken by a listener, do 15 owners get 15 different free ports, the next get a
    clear error, and does a port given back go to the next owner?"""
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        first = busy.getsockname()[1]
    # A range of our own around a port something listens on (bound again, as an unrelated process would).
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        pool = ports.PortPool(first, first + 15)
        squatter.bind(("", first))
        squatter.listen()
        got = [pool.take(f"u{i}/") for i in range(15)]
        assert len(set(got)) == 15 and first not in got
        with pytest.raises(RuntimeError, match="no free port left.*local.server_ports"):
            pool.take("late/")
        pool.give_back("u3/")
        assert pool.take("late/") == got[3]
        assert pool.take("late/") == got[3], "an owner's second take gives its old port back first"


def test_concurrent_starts_never_share_a_port():
    """Do 50 threads taking ports at once from one pool all get different ports?"""
    pool = ports.PortPool(21000, 21999, is_free=lambda port: True)
    got: list[int] = []
    threads = [threading.Thread(target=lambda i=i: got.append(pool.take(f"u{i}/"))) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 50 and len(set(got)) == 50 and len(pool.held()) == 50


@pytest.mark.parametrize("bad", ["29999-20000", "80-90", "20000-20003", "20000-70000"])
def test_a_bad_range_is_refused_with_its_key(bad):
    """Is a reversed, privileged, too small or out-of-range local.server_ports refused, naming the key?"""
    with pytest.raises(ConfigError, match="local.server_ports"):
        build_config({"local": {"server_ports": bad}})


def test_the_spawner_refuses_a_bad_range_and_warns_on_an_ephemeral_one(caplog):
    """Does the spawner's traitlet reject a malformed range early and warn when it overlaps the ephemeral ports?"""
    from academy.spawners.local.spawner import AcademyLocalSpawner

    s = AcademyLocalSpawner()
    with pytest.raises(Exception, match="FIRST-LAST"):
        s.server_ports = "lots"
    eph = ports.ephemeral_range()
    with caplog.at_level("WARNING"):
        s.server_ports = f"{eph[0]}-{eph[0] + 100}"
    assert s.server_ports == f"{eph[0]}-{eph[0] + 100}"
    assert "overlaps the kernel's ephemeral ports" in caplog.text
