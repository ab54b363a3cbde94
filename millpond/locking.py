"""One pipeline stage at a time per data dir: DuckDB has a single writer and it does not wait.

Stages take an exclusive ``flock`` on ``<data_dir>/pipeline.lock``. With a timeout of 0 a second
``millpond`` process gets a clear error at once instead of a DuckDB lock failure half-way
through; with a timeout it waits up to that long for the holder to finish (the scheduled
Kubernetes run, ``MILLPOND_LOCK_TIMEOUT_S``). The lock is re-entrant within a process
(``millpond run`` holds it around every stage) and the kernel releases it when a process dies,
so a crash never leaves it behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from millpond import logs
from millpond.errors import PipelineBusy

log = logs.get(__name__)
POLL_INTERVAL_S = 0.2
_held: dict[Path, int] = {}


@contextmanager
def pipeline_lock(data_dir: Path, stage: str, timeout_s: float = 0.0) -> Iterator[None]:
    """Hold the data dir's pipeline lock for the block.

    Raises PipelineBusy when another process holds it for longer than ``timeout_s`` seconds
    (0: do not wait).
    """
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
        _acquire(handle, path, stage, timeout_s)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle: IO[str], path: Path, stage: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            if time.monotonic() >= deadline:
                holder = path.read_text().strip() or "unknown holder"
                raise PipelineBusy(
                    f"another Millpond stage is running against {path.parent}: {holder} holds {path} "
                    f"(waited {timeout_s:g}s)",
                    stage=stage,
                    hint="wait for it to finish and run again, or set MILLPOND_LOCK_TIMEOUT_S to wait longer; "
                    "the warehouse has a single writer",
                ) from exc
            if not waiting:
                log.info("lock.waiting", lock=str(path), stage=stage, timeout_s=timeout_s)
                waiting = True
            time.sleep(min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0.0)))
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, stage {stage}\n")  # who holds it, for the error of the next one
        handle.flush()
        if waiting:
            log.info("lock.acquired", lock=str(path), stage=stage)
        return
