"""The heap policy (millpond/memory.py), probed in fresh interpreters: glibc's threshold is per process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from millpond.memory import map_large_allocations

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's mallopt")

# Frees a 4 MiB mapped chunk (glibc's default then raises its threshold to 4 MiB), then allocates
# 256 KiB, the size of a DuckDB buffer block: prints 1 when that allocation got its own map, 0 when
# it came from the heap.
PROBE = """
import ctypes, sys
{setup}
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(256 << 10)
print(libc.mallinfo2().hblks - before)
"""

VIA_CLI = """
from click.testing import CliRunner
from millpond.cli import cli
CliRunner().invoke(cli, ["services", "status"])
"""


def probe(setup: str, tmp_path: Path, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MILLPOND_", "MALLOC_"))}
    environ |= {"MILLPOND_DATA_DIR": str(tmp_path), **env}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return int(proc.stdout.strip().splitlines()[-1])


def test_without_the_policy_glibc_serves_a_block_from_the_heap_after_a_large_free(tmp_path: Path):
    assert probe("", tmp_path) == 0


def test_with_the_policy_a_block_gets_its_own_map_after_a_large_free(tmp_path: Path):
    setup = "from millpond.memory import map_large_allocations; assert map_large_allocations(128 * 1024)"
    assert probe(setup, tmp_path) == 1


def test_every_millpond_command_sets_the_policy(tmp_path: Path):
    assert probe(VIA_CLI, tmp_path) == 1


def test_zero_leaves_glibc_default(tmp_path: Path):
    assert probe(VIA_CLI, tmp_path, MILLPOND_MALLOC_MMAP_THRESHOLD="0") == 0


def test_glibc_own_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # glibc read it at start-up: a fixed threshold of 8 MiB keeps the 256 KiB block on the heap
    assert probe(VIA_CLI, tmp_path, MALLOC_MMAP_THRESHOLD_=str(8 << 20)) == 0
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", str(8 << 20))
    assert map_large_allocations(128 * 1024) is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert map_large_allocations(0) is False
