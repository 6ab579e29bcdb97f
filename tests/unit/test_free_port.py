"""Test servers' ports stay out of the kernel's ephemeral range (tests/conftest.py::free_port):
a port from inside it can be taken as a source port before the server binds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import free_port

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@pytest.mark.skipif(not RANGE.exists(), reason="no Linux port range to compare with")
def test_ports_are_below_the_ephemeral_range_free_and_never_handed_out_twice() -> None:
    low = int(RANGE.read_text().split()[0])  # 32768 on these machines (checked by hand)
    ports = [free_port() for _ in range(40)]
    assert all(1024 <= port < low - 250 for port in ports), ports
    assert len(set(ports)) == len(ports)
