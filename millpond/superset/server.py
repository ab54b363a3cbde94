"""Superset server control for the ``millpond serve`` command.

Interface used by the CLI::

    serve(settings) -> str     # bootstrap, then start; the URL once /health answers
    stop(settings) -> bool     # True if a server was stopped

and, for finer control, ``bootstrap(settings)``, ``start(settings) -> str`` and
``status(settings) -> bool``.

The server is gunicorn (``superset_workers`` workers of ``superset_threads`` threads) bound
to 127.0.0.1: a :class:`~millpond.services.base.LocalService` like the other local servers,
with ``server.pid`` / ``server.json`` / ``server.log`` under ``<data dir>/superset/``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from millpond import logs
from millpond.services.base import LocalService
from millpond.settings import Settings
from millpond.superset.bootstrap import bootstrap
from millpond.superset.runtime import Layout, Secrets, child_env

__all__ = ["bootstrap", "serve", "start", "status", "stop"]

log = logs.get(__name__)

HOST = "127.0.0.1"


class SupersetServer(LocalService):
    """gunicorn serving Superset from ``.venv-superset``; it leads its own process group."""

    name = "superset"
    process_marker = "gunicorn"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.data_dir, settings.superset_port)
        self.settings = settings
        self.start_timeout_s = settings.superset_start_timeout_s

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

    def running_url(self) -> str:
        """The URL the running server was started with (whatever port that was)."""
        return str(json.loads(self.state_file.read_text(encoding="utf-8"))["url"])

    def _launch(self) -> None:
        layout = Layout.for_settings(self.settings)
        argv = [
            str(layout.venv / "bin" / "gunicorn"),
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(self.settings.superset_workers),
            "--worker-class", "gthread",
            "--threads", str(self.settings.superset_threads),
            "--timeout", "120",
            "--graceful-timeout", "10",
            "--limit-request-line", "0",
            "--limit-request-field_size", "0",
            "superset.app:create_app()",
        ]  # fmt: skip
        env = child_env(layout, self.settings, Secrets.of(self.settings).secret_key)
        self._spawn(argv, env, cwd=layout.home, full_env=True)
        self.state_file.write_text(json.dumps({"pid": self.pid(), "port": self.port, "url": self.uri}))
        log.info("superset.starting", pid=self.pid(), url=self.uri, log=str(self.log_file))

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _forget(self) -> None:
        super()._forget()
        self.state_file.unlink(missing_ok=True)


def serve(settings: Settings) -> str:
    """Bring Superset to the repository's state (idempotent) and start it; return its URL."""
    bootstrap(settings)
    return start(settings)


def start(settings: Settings) -> str:
    """Start gunicorn in the background and wait for ``/health``; return the base URL.

    Idempotent: if our server already runs (on whatever port), its URL is returned.
    """
    server = SupersetServer(settings)
    if server.is_running():
        url = server.running_url()
        log.info("superset.already_running", url=url)
        return url
    Secrets.of(settings)
    Layout.for_settings(settings).require_venv()
    server.start()
    log.info("superset.ready", url=server.uri)
    return server.uri


def status(settings: Settings) -> bool:
    """True if the Superset server started by :func:`start` is running."""
    return SupersetServer(settings).is_running()


def stop(settings: Settings) -> bool:
    """Stop the server (SIGTERM to its process group, SIGKILL after a grace period)."""
    return SupersetServer(settings).stop()
