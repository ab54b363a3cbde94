"""Superset server control for the ``millpond serve`` command.

Interface used by the CLI::

    bootstrap(data_dir, serving_path, env) -> None
    start(data_dir, port, env) -> str        # URL, once /health answers
    stop(data_dir) -> bool                   # True if a server was stopped
    status(data_dir) -> bool                 # True if our server process is alive

The server is gunicorn (one worker, threads) bound to 127.0.0.1: a
:class:`~millpond.services.base.LocalService` like the other local servers, with
``server.pid`` / ``server.json`` / ``server.log`` under ``<data dir>/superset/``.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from millpond.services.base import LocalService
from millpond.superset.bootstrap import bootstrap
from millpond.superset.runtime import SECRET_ENV, Layout, child_env, require

__all__ = ["bootstrap", "start", "status", "stop"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT_S = float(os.environ.get("MILLPOND_SUPERSET_START_TIMEOUT", "120"))


class SupersetServer(LocalService):
    """gunicorn serving Superset from ``.venv-superset``; it leads its own process group."""

    name = "superset"
    process_marker = "gunicorn"
    start_timeout_s = START_TIMEOUT_S

    def __init__(self, data_dir: Path, port: int = 0, env: Mapping[str, str] | None = None) -> None:
        super().__init__(Path(data_dir).expanduser(), port)
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.env = dict(env or {})

    @property
    def pid_file(self) -> Path:
        return self.root / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def state_file(self) -> Path:
        return self.root / "server.json"

    @property
    def uri(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _launch(self) -> None:
        layout = Layout.for_data_dir(self.data_dir, self.env)
        argv = [
            str(layout.venv / "bin" / "gunicorn"),
            "--bind", f"{HOST}:{self.port}",
            "--workers", self.env.get("MILLPOND_SUPERSET_WORKERS", "1"),
            "--worker-class", "gthread",
            "--threads", self.env.get("MILLPOND_SUPERSET_THREADS", "8"),
            "--timeout", "120",
            "--graceful-timeout", "10",
            "--limit-request-line", "0",
            "--limit-request-field_size", "0",
            "superset.app:create_app()",
        ]  # fmt: skip
        self._spawn(argv, child_env(layout, self.data_dir, self.env), cwd=layout.home, full_env=True)
        self.state_file.write_text(json.dumps({"pid": self.pid(), "port": self.port, "url": self.uri}))
        log.info("superset starting", extra={"pid": self.pid(), "url": self.uri, "log": str(self.log_file)})

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _forget(self) -> None:
        super()._forget()
        self.state_file.unlink(missing_ok=True)


def status(data_dir: Path) -> bool:
    """True if the Superset server started by :func:`start` is running."""
    return SupersetServer(data_dir).is_running()


def start(data_dir: Path, port: int, env: Mapping[str, str]) -> str:
    """Start gunicorn in the background and wait for ``/health``; return the base URL.

    Idempotent: if our server already runs (on whatever port), its URL is returned.
    """
    server = SupersetServer(data_dir, port, env)
    if server.is_running():
        url = str(json.loads(server.state_file.read_text(encoding="utf-8"))["url"])
        log.info("superset already running", extra={"url": url})
        return url
    require(env, SECRET_ENV, min_len=16)
    Layout.for_data_dir(data_dir, env).require_venv()
    server.start()
    log.info("superset ready", extra={"url": server.uri})
    return server.uri


def stop(data_dir: Path) -> bool:
    """Stop the server (SIGTERM to its process group, SIGKILL after a grace period)."""
    return SupersetServer(data_dir).stop()
