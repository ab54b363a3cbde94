"""Free TCP ports for services the tests and benchmarks start.

Ports come from a block of their own for each pytest-xdist worker (and one for a process outside
xdist), below the kernel's ephemeral range, and are handed out in turn, never twice in a process.
So a service restarted on its port (tests/support/faults.py) cannot find it taken by a service of
another worker, nor by the kernel picking it as a client socket's local port.
"""

from __future__ import annotations

import itertools
import os
import socket

FIRST_PORT = 15000
PORTS_PER_WORKER = 1000
_handed_out = itertools.count()


def _worker_block() -> int:
    """0 outside xdist; 1 + N on worker ``gwN``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) + 1 if worker.startswith("gw") else 0


def _listenable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from this process's block."""
    first = FIRST_PORT + _worker_block() * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = first + next(_handed_out) % PORTS_PER_WORKER
        if _listenable(port):
            return port
    raise RuntimeError(f"no free TCP port in {first}-{first + PORTS_PER_WORKER - 1}: stop the services left running")
