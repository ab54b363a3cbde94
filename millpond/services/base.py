"""Process management shared by the local services: pid files, ports, health waits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from millpond import logs
from millpond.errors import ServiceError

log = logs.get(__name__)
POLL_INTERVAL_S = 0.1
LOG_TAIL_LINES = 20


def port_in_use(port: int) -> bool:
    """True when something accepts connections on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True when process ``pid`` runs (not a zombie) and, given a ``marker``, its command line has it.

    The marker guards against a recycled pid: a stale pid file must not make another program
    count as our server (or receive our signals).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        waited, _ = os.waitpid(pid, os.WNOHANG)  # collects our own exited children
        if waited == pid:
            return False
    proc = Path(f"/proc/{pid}")
    try:
        if proc.joinpath("stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        cmdline = proc.joinpath("cmdline").read_bytes()
        # empty while the new program is still being exec'd: too early to judge, count it as ours
        return marker is None or not cmdline or marker.encode() in cmdline
    except FileNotFoundError:
        return False


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` until it is true, or raise a ServiceError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ServiceError:
            raise
        except Exception as exc:  # the service is still coming up
            last_error = exc
        time.sleep(POLL_INTERVAL_S)
    detail = f": {last_error}" if last_error else ""
    raise ServiceError(f"{what} not ready after {timeout_s:.0f}s{detail}", stage="services")


class LocalService(ABC):
    """A server process owned by Millpond, with its files under ``<data_dir>/<name>/``."""

    name: str = "service"
    start_timeout_s: float = 30.0
    stop_timeout_s: float = 20.0
    process_marker: str | None = None  # a word of the server's command line (see pid_alive)

    def __init__(self, data_dir: Path, port: int) -> None:
        self.root = Path(data_dir).resolve() / self.name
        self.port = port

    @property
    def pid_file(self) -> Path:
        return self.root / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    @abstractmethod
    def uri(self) -> str:
        """How clients reach the service."""

    @abstractmethod
    def _launch(self) -> None:
        """Start the process (and write the pid file)."""

    @abstractmethod
    def healthy(self) -> bool:
        """True when the service answers real requests."""

    def _after_start(self) -> None:  # noqa: B027 - optional hook
        """Work to do once the process is up (e.g. initiate a replica set)."""

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid, self.process_marker)

    def _ready(self) -> bool:
        """Healthy; fails at once (instead of at the timeout) when the process has died."""
        if not self.is_running():
            raise ServiceError(f"{self.name} exited while starting", stage="services")
        return self.healthy()

    def start(self) -> LocalService:
        """Start the service unless it already runs; wait until it is healthy."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            wait_until(self.healthy, self.start_timeout_s, f"{self.name} on port {self.port}")
            log.info("service.already_running", service=self.name, port=self.port)
            return self
        if port_in_use(self.port):
            raise ServiceError(
                f"port {self.port} for {self.name} is already taken by another process",
                stage="services",
                hint=f"stop that process or choose another port for {self.name}",
            )
        self._launch()
        try:
            wait_until(self._ready, self.start_timeout_s, f"{self.name} on port {self.port}")
            self._after_start()
        except ServiceError as exc:
            tail = self.log_tail()
            self.stop()  # never leave a half-started server behind
            raise ServiceError(f"{exc.args[0]}; last log lines:\n{tail}", stage="services") from exc
        log.info("service.started", service=self.name, port=self.port, uri=self.uri)
        return self

    def stop(self) -> bool:
        """Stop the service (SIGTERM, then SIGKILL after ``stop_timeout_s``); True when it was running."""
        pid = self.pid()
        if pid is None or not pid_alive(pid, self.process_marker):
            self._forget()
            return False
        self._terminate(pid, self.stop_timeout_s)
        self._forget()
        log.info("service.stopped", service=self.name, port=self.port)
        return True

    def _forget(self) -> None:
        """Remove the files that describe a running server."""
        self.pid_file.unlink(missing_ok=True)

    def _terminate(self, pid: int, timeout_s: float) -> None:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            _signal(pid, signal.SIGKILL)
            time.sleep(0.2)
            pid_alive(pid)  # collects the exit status when it is our child

    def log_tail(self) -> str:
        """The last lines of the service's log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        except FileNotFoundError:
            return "(no log)"

    def _spawn(
        self, argv: Sequence[str], env: dict[str, str] | None = None, *, cwd: Path | None = None, full_env: bool = False
    ) -> None:
        """Run ``argv`` in its own session, output to the log file, pid to the pid file.

        ``env`` is added to this process's environment, or (``full_env``) is the whole environment.
        """
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cwd,
                env=dict(env or {}) if full_env else {**os.environ, **(env or {})},
            )
        self.pid_file.write_text(str(proc.pid))

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the server leads (its workers too), else the process alone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:  # not a group leader (e.g. the postmaster started by pg_ctl)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def require_binary(path: Path, what: str, hint: str) -> Path:
    """Return ``path`` or raise a ServiceError that says how to install it."""
    if not path.exists():
        raise ServiceError(f"{what} binary not found at {path}", stage="services", hint=hint)
    return path
