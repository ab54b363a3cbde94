"""Ports for the services the tests start: never one another worker or the kernel may hand out.

A service restarted on its port (tests/support/faults.py) leaves that port free for a moment. With
ports from the kernel's ephemeral range, another xdist worker's ``free_port()`` could be given that
very port and start its own service there, so the restart failed with "port already taken".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def _ephemeral_range() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def _ports_of_worker(worker: str, count: int) -> set[int]:
    code = f"from tests.support.ports import free_port\nprint(*[free_port() for _ in range({count})])"
    env = {**os.environ, "PYTEST_XDIST_WORKER": worker}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return {int(port) for port in out.stdout.split()}


def test_free_ports_are_outside_the_kernel_ephemeral_range_and_not_reused():
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert not set(ports) & set(_ephemeral_range())


def test_workers_get_disjoint_ports():
    gw0, gw1, master = _ports_of_worker("gw0", 30), _ports_of_worker("gw1", 30), _ports_of_worker("", 30)
    assert not gw0 & gw1
    assert not (gw0 | gw1) & master


def test_a_port_something_listens_on_is_skipped():
    taken = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", taken + 1))
        sock.listen()
        assert free_port() != taken + 1
