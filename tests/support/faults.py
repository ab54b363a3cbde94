"""Faults done to the real servers in tests: pause a process (SIGSTOP/SIGCONT), restart a service,
and run a ``millpond`` command that acts on a marker line of its own log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from millpond.services import LocalService


def _group(service: LocalService) -> int:
    pid = service.pid()
    assert pid is not None and service.is_running(), f"{service.name} is not running"
    return pid


@contextmanager
def paused(service: LocalService) -> Iterator[None]:
    """The service's processes stopped (SIGSTOP) inside the block, resumed (SIGCONT) after it: its state stays."""
    pid = _group(service)
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


def pause_for(service: LocalService, seconds: float) -> Callable[[], None]:
    """An action that pauses ``service`` for ``seconds`` in the background (the caller keeps reading logs)."""

    def act() -> None:
        def hold() -> None:
            with paused(service):
                time.sleep(seconds)

        threading.Thread(target=hold, daemon=True).start()

    return act


@contextmanager
def paused_later(service: LocalService) -> Iterator[Callable[[], None]]:
    """An action that pauses ``service``; it is resumed when the block ends (whether or not the action ran)."""
    pids: list[int] = []

    def pause() -> None:
        pids.append(_group(service))
        os.killpg(pids[0], signal.SIGSTOP)

    try:
        yield pause
    finally:
        for pid in pids:
            os.killpg(pid, signal.SIGCONT)


def restart(service: LocalService, down_s: float = 0.0) -> None:
    """Stop the service (SIGTERM, clean shutdown), keep it down ``down_s`` seconds, start it and wait until healthy."""
    service.stop()
    time.sleep(down_s)
    service.start()


@dataclass
class Finished:
    """A finished ``millpond`` command."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    acted_at: float | None  # seconds after the start at which the action ran (None: the marker never came)


def millpond(
    env: dict[str, str],
    *args: str,
    marker: str | None = None,
    action: Callable[[], None] | None = None,
    timeout_s: float = 300.0,
) -> Finished:
    """Run ``python -m millpond *args``; run ``action`` once, as soon as a line of its stderr contains ``marker``."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "millpond", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None and proc.stdout is not None
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else ""), daemon=True)
    reader.start()
    err: list[str] = []
    acted_at = None
    for line in proc.stderr:
        err.append(line)
        if acted_at is None and marker is not None and marker in line:
            acted_at = time.monotonic() - started
            if action is not None:
                action()
    proc.wait(timeout=timeout_s)
    reader.join(timeout=10)
    return Finished(proc.returncode, "".join(out), "".join(err), time.monotonic() - started, acted_at)
