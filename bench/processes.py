"""Runs a :mod:`bench.child` task in its own process and measures that process's peak RSS.

The child is started through ``/usr/bin/time`` (GNU time), which reports the maximum resident
set size from the ``wait4`` rusage of the process it forked itself. Going through that small
launcher matters: Linux carries a process's high-water mark across ``exec``, so a child forked
straight from this (large) benchmark process would report at least the parent's own RSS. The
child also reports its ``VmHWM`` (the peak of its address space after ``exec``) as a cross-check.
Without ``/usr/bin/time`` the ``wait4`` figure of the direct child is used, an upper bound.
Grandchildren (none today: dlt normalizes in-process) would not be counted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TAIL_CHARS = 2_000


class ChildFailed(RuntimeError):
    """A measured stage exited non-zero; the message ends with the tail of its stderr."""


@dataclass
class Measured:
    """What a child reported, its wall time from fork to exit and its peak resident set size."""

    task: str
    result: dict[str, Any]
    wall_s: float
    peak_rss_bytes: int

    @property
    def work_s(self) -> float:
        return float(self.result["work_s"])

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / 2**20


def child_env(pycache: Path | None) -> dict[str, str] | None:
    """The child's environment: with ``pycache``, Python reads and writes compiled bytecode there.

    A deployed runner has its bytecode compiled at build time (the runner image sets
    ``UV_COMPILE_BYTECODE=1``); a process that must compile every module it imports, as under
    ``PYTHONDONTWRITEBYTECODE`` without ``.pyc`` files, pays for it in every run, and a stage's
    lazy imports fall inside its timed work. A bytecode cache of the benchmark's own
    (``PYTHONPYCACHEPREFIX``), filled by an untimed warm-up, measures the stages as deployed.
    """
    if pycache is None:
        return None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_child(
    task: str,
    args: dict[str, Any],
    workdir: Path,
    project_dir: Path,
    timeout_s: float = 7_200,
    pycache: Path | None = None,
) -> Measured:
    """Run ``task`` with ``args`` as ``python -m bench.child`` in ``project_dir``; raise ChildFailed unless it exits 0.

    ``pycache``: the bytecode cache the child uses (:func:`child_env`); None: the environment as it is.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = f"{task}-{time.monotonic_ns()}"
    result_path, log_path = workdir / f"{stamp}.json", workdir / f"{stamp}.log"
    rss_path = workdir / f"{stamp}.maxrss"
    argv = [sys.executable, "-m", "bench.child", task, json.dumps(args, default=str), str(result_path)]
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time:
        argv = [gnu_time, "-f", "%M", "-o", str(rss_path), *argv]
    started = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=project_dir, stdout=log, stderr=subprocess.STDOUT, env=child_env(pycache))
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    wall_s = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # collected here, so Popen must not wait again
    if proc.returncode != 0 or not result_path.exists():
        tail = log_path.read_text(errors="replace")[-TAIL_CHARS:].strip()
        last = tail.splitlines()[-1] if tail else "no output"
        raise ChildFailed(f"{task} exited {proc.returncode}: {last}\n{tail}")
    peak_kib = int(rss_path.read_text().split()[-1]) if gnu_time and rss_path.exists() else usage.ru_maxrss
    return Measured(task, json.loads(result_path.read_text()), wall_s, peak_kib * 1024)
