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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (and is not a zombie we own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    return True


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    """Poll ``check`` until it is true, or raise a ServiceError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the service is still coming up
            last_error = exc
        time.sleep(interval_s)
    detail = f": {last_error}" if last_error else ""
    raise ServiceError(f"{what} not ready after {timeout_s:.0f}s{detail}", stage="services")


class LocalService(ABC):
    """A server process owned by Millpond, with its files under ``<data_dir>/<name>/``."""

    name: str = "service"
    start_timeout_s: float = 30.0

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
        return pid is not None and pid_alive(pid)

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
            wait_until(self.healthy, self.start_timeout_s, f"{self.name} on port {self.port}")
            self._after_start()
        except ServiceError as exc:
            raise ServiceError(f"{exc.args[0]}; last log lines:\n{self.log_tail()}", stage="services") from exc
        log.info("service.started", service=self.name, port=self.port, uri=self.uri)
        return self

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the service (SIGTERM, then SIGKILL); True when it was running."""
        pid = self.pid()
        if pid is None or not pid_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return False
        self._terminate(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        log.info("service.stopped", service=self.name, port=self.port)
        return True

    def _terminate(self, pid: int, timeout_s: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _spawn(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Run ``argv`` detached, output to the log file, pid to the pid file."""
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid_file.write_text(str(proc.pid))

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def require_binary(path: Path, what: str, hint: str) -> Path:
    """Return ``path`` or raise a ServiceError that says how to install it."""
    if not path.exists():
        raise ServiceError(f"{what} binary not found at {path}", stage="services", hint=hint)
    return path
