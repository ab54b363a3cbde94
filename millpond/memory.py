"""The process's heap policy: large allocations get their own memory map, so freeing them returns it.

glibc's ``malloc`` serves an allocation from its heap unless it is at least ``M_MMAP_THRESHOLD``
bytes, which it maps on its own. The threshold starts at 128 KiB and, unless it is set
explicitly, rises to the size of every mapped chunk that is freed (up to 32 MiB on 64-bit). After
the first few MiB-sized buffers of a run are freed, DuckDB's 256 KiB buffer blocks and the pages
of Kafka and MongoDB data come from the heap too, and the heap's free chunks stay resident once
they are too scattered to be reused or trimmed: a long ingest's resident memory then grows with
the number of load packages, not with their size. Setting the threshold explicitly turns that
adjustment off (``mallopt(3)``); docs/benchmarks.md has the measurements.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
ENV_OVERRIDE = "MALLOC_MMAP_THRESHOLD_"  # glibc's own variable: an operator who sets it keeps it


def map_large_allocations(threshold: int) -> bool:
    """Serve every allocation of at least ``threshold`` bytes with its own memory map; True when set.

    Nothing is changed when ``threshold`` is 0, outside glibc, or when glibc's own
    ``MALLOC_MMAP_THRESHOLD_`` variable is set (glibc applied it at start-up).
    """
    if threshold <= 0 or platform.libc_ver()[0] != "glibc" or os.environ.get(ENV_OVERRIDE):
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
