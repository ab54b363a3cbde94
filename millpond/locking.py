"""One pipeline stage at a time per data dir: DuckDB has a single writer and it does not wait.

Stages take an exclusive, non-blocking ``flock`` on ``<data_dir>/pipeline.lock``. A second
``millpond`` process gets a clear error at once instead of a DuckDB lock failure half-way
through. The lock is re-entrant within a process (``millpond run`` holds it around every stage)
and the kernel releases it when a process dies, so a crash never leaves it behind.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from millpond.errors import PipelineBusy

_held: dict[Path, int] = {}


@contextmanager
def pipeline_lock(data_dir: Path, stage: str) -> Iterator[None]:
    """Hold the data dir's pipeline lock for the block, or raise PipelineBusy if another process has it."""
    path = Path(data_dir).resolve() / "pipeline.lock"
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise PipelineBusy(
                f"another Millpond stage is running against {path.parent} (lock {path})",
                stage=stage,
                hint="wait for it to finish and run again; the warehouse has a single writer",
            ) from exc
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            fcntl.flock(handle, fcntl.LOCK_UN)
