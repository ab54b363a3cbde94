"""Superset server control for the ``millpond serve`` command.

Interface used by the CLI::

    bootstrap(data_dir, serving_path, env) -> None
    start(data_dir, port, env) -> str        # URL, once /health answers
    stop(data_dir) -> bool                   # True if a server was stopped
    status(data_dir) -> bool                 # True if our server process is alive

The server is gunicorn (one worker, threads) bound to 127.0.0.1, started in its own
session with ``server.pid`` / ``server.json`` / ``server.log`` under
``<data dir>/superset/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from millpond.superset.bootstrap import bootstrap
from millpond.superset.errors import SupersetError
from millpond.superset.runtime import SECRET_ENV, Layout, child_env, file_tail, require

__all__ = ["bootstrap", "start", "status", "stop"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT_S = float(os.environ.get("MILLPOND_SUPERSET_START_TIMEOUT", "120"))
STOP_TIMEOUT_S = 20.0


def _files(data_dir: Path) -> tuple[Path, Path, Path]:
    home = Path(data_dir).expanduser().resolve() / "superset"
    return home / "server.pid", home / "server.json", home / "server.log"


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_server(pid: int) -> bool:
    """Alive and really a gunicorn process (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return False
    if b"gunicorn" not in cmdline:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # not a zombie


def status(data_dir: Path) -> bool:
    """True if the Superset server started by :func:`start` is running."""
    pid = _read_pid(_files(data_dir)[0])
    return pid is not None and _is_our_server(pid)


def _url(port: int) -> str:
    return f"http://{HOST}:{port}"


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(data_dir: Path, port: int, env: Mapping[str, str]) -> str:
    """Start gunicorn in the background and wait for ``/health``; return the base URL.

    Idempotent: if our server already runs, its URL is returned.
    """
    pid_file, state_file, log_file = _files(data_dir)
    if status(data_dir):
        state = json.loads(state_file.read_text(encoding="utf-8"))
        log.info("superset already running", extra={"url": state["url"]})
        return str(state["url"])
    require(env, SECRET_ENV, min_len=16)
    layout = Layout.for_data_dir(data_dir, env)
    layout.require_venv()
    if _port_in_use(port):
        raise SupersetError(f"cannot start Superset: port {port} on {HOST} is already in use")
    layout.home.mkdir(parents=True, exist_ok=True)
    workers = env.get("MILLPOND_SUPERSET_WORKERS", "1")
    threads = env.get("MILLPOND_SUPERSET_THREADS", "8")
    argv = [
        str(layout.venv / "bin" / "gunicorn"),
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        workers,
        "--worker-class",
        "gthread",
        "--threads",
        threads,
        "--timeout",
        "120",
        "--graceful-timeout",
        "10",
        "--limit-request-line",
        "0",
        "--limit-request-field_size",
        "0",
        "superset.app:create_app()",
    ]
    url = _url(port)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=child_env(layout, data_dir, env),
            cwd=layout.home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid), encoding="utf-8")
    state_file.write_text(json.dumps({"pid": proc.pid, "port": port, "url": url}), encoding="utf-8")
    log.info("superset starting", extra={"pid": proc.pid, "url": url, "log": str(log_file)})
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _cleanup(pid_file, state_file)
            raise SupersetError(
                f"Superset exited with code {proc.returncode} while starting; "
                f"last lines of {log_file}:\n{file_tail(log_file)}"
            )
        if _healthy(url):
            log.info("superset ready", extra={"url": url})
            return url
        time.sleep(0.5)
    stop(data_dir)
    raise SupersetError(
        f"Superset did not answer {url}/health within {START_TIMEOUT_S:.0f}s; "
        f"last lines of {log_file}:\n{file_tail(log_file)}"
    )


def stop(data_dir: Path) -> bool:
    """Stop the server (SIGTERM to its process group, SIGKILL after a grace period)."""
    pid_file, state_file, _log = _files(data_dir)
    pid = _read_pid(pid_file)
    if pid is None or not _is_our_server(pid):
        _cleanup(pid_file, state_file)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _is_our_server(pid):
        _reap(pid)
        time.sleep(0.2)
    if _is_our_server(pid):
        log.warning("superset did not stop in time; killing", extra={"pid": pid})
        _signal_group(pid, signal.SIGKILL)
        time.sleep(0.2)
    _reap(pid)  # a zombie no longer counts as running, but still needs collecting
    _cleanup(pid_file, state_file)
    log.info("superset stopped", extra={"pid": pid})
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # start_new_session=True: the group id is the leader's pid


def _reap(pid: int) -> None:
    """Collect the exit status if the server is our child (avoids a lingering zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _cleanup(*files: Path) -> None:
    for path in files:
        path.unlink(missing_ok=True)
