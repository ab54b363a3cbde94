"""Where Superset lives and how its subprocesses are run.

Superset has its own virtual environment; everything here runs in the pipeline's
environment and calls into it with :func:`run_step` (timeouts, logs, context).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from millpond import logs
from millpond.settings import Settings
from millpond.superset.errors import SupersetError

log = logs.get(__name__)

SECRET_ENV = "MILLPOND_SUPERSET_SECRET_KEY"  # noqa: S105 - a variable name, not a secret
ADMIN_PASSWORD_ENV = "MILLPOND_SUPERSET_ADMIN_PASSWORD"  # noqa: S105 - a variable name
SECRET_MIN_LEN = 16
# Variables of the pipeline's environment that would confuse the other venv's Python.
_SCRUBBED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "FLASK_APP", "SUPERSET_CONFIG_PATH")


@dataclass(frozen=True)
class Layout:
    """Files of the Superset installation and of one instance (its data dir)."""

    venv: Path
    config: Path
    admin_script: Path
    bundle_dir: Path
    home: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> Layout:
        """Files under ``project_dir``, ``superset_venv`` (default ``.venv-superset``), ``<data dir>/superset``."""
        semantic = settings.project_dir / "semantic" / "superset"
        return cls(
            venv=settings.superset_venv or settings.project_dir / ".venv-superset",
            config=semantic / "superset_config.py",
            admin_script=semantic / "millpond_admin.py",
            bundle_dir=semantic / "bundle",
            home=settings.data_dir / "superset",
        )

    @property
    def python(self) -> Path:
        """The Superset venv's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def log_file(self) -> Path:
        """Combined output of bootstrap steps."""
        return self.home / "bootstrap.log"

    def require_venv(self) -> None:
        """Fail with a pointer to ``make setup-superset`` if the venv is missing."""
        if not (self.venv / "bin" / "superset").exists():
            raise SupersetError(f"Superset is not installed in {self.venv}; run `make setup-superset`")

    def superset_version(self) -> str:
        """Installed apache-superset version, read from its dist-info (no import)."""
        found = sorted(self.venv.glob("lib/python*/site-packages/apache_superset-*.dist-info"))
        if not found:
            raise SupersetError(f"apache-superset is not installed in {self.venv}")
        return found[-1].name.removeprefix("apache_superset-").removesuffix(".dist-info")


@dataclass(frozen=True)
class Secrets:
    """The two secrets every Superset step needs, checked once."""

    secret_key: str
    admin_password: str

    @classmethod
    def of(cls, settings: Settings) -> Secrets:
        """Both secrets from the settings, or a :class:`SupersetError` naming the variables."""
        if settings.superset_admin_password is None or settings.superset_secret_key is None:
            raise SupersetError(
                f"{ADMIN_PASSWORD_ENV} and {SECRET_ENV} must be set",
                hint="export both (make demo generates them into .local/demo.env)",
            )
        secret_key = settings.superset_secret_key.get_secret_value()
        if len(secret_key) < SECRET_MIN_LEN:
            raise SupersetError(
                f"{SECRET_ENV} must be at least {SECRET_MIN_LEN} characters",
                hint="generate one with `openssl rand -base64 42`",
            )
        return cls(secret_key, settings.superset_admin_password.get_secret_value())


def child_env(layout: Layout, settings: Settings, secret_key: str) -> dict[str, str]:
    """Environment of the Superset subprocesses.

    The pipeline's own environment, without the variables that point Python at this venv, plus
    what ``superset_config.py`` reads. Secrets travel here, never on a command line.
    """
    inherited = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    return inherited | {
        "SUPERSET_CONFIG_PATH": str(layout.config),
        "MILLPOND_DATA_DIR": str(settings.data_dir),
        SECRET_ENV: secret_key,
        "FLASK_APP": "superset",
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{layout.venv / 'bin'}{os.pathsep}{inherited.get('PATH', os.defpath)}",
    }


def tail(text: str, lines: int = 25) -> str:
    """Last ``lines`` lines of ``text`` for error messages."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_step(step: str, argv: Sequence[str], *, layout: Layout, env: Mapping[str, str], timeout: float) -> str:
    """Run one Superset command; return its output, or raise with step name and log tail."""
    layout.home.mkdir(parents=True, exist_ok=True)
    log.info("superset.step.started", step=step)
    try:
        proc = subprocess.run(
            list(argv),
            env=dict(env),
            cwd=layout.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        _append_log(layout, step, output)
        raise SupersetError(
            f"superset step {step!r} timed out after {timeout:.0f}s; last output:\n{tail(output)}"
        ) from exc
    output = proc.stdout + proc.stderr
    _append_log(layout, step, output)
    if proc.returncode != 0:
        raise SupersetError(
            f"superset step {step!r} failed with exit code {proc.returncode}; "
            f"last output (full log {layout.log_file}):\n{tail(output)}"
        )
    log.info("superset.step.finished", step=step)
    return output


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _append_log(layout: Layout, step: str, output: str) -> None:
    with layout.log_file.open("a", encoding="utf-8") as handle:
        handle.write(f"===== {step} =====\n{output}\n")


def fingerprint(*parts: str) -> str:
    """SHA-256 over ``parts`` (NUL-separated): stamps compare these, never raw secrets."""
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()
