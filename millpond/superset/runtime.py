"""Where Superset lives and how its subprocesses are run.

Superset has its own virtual environment; everything here runs in the pipeline's
environment and calls into it with :func:`run_step` (timeouts, logs, context).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from millpond.superset.errors import SupersetError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_ENV = "MILLPOND_SUPERSET_SECRET_KEY"  # noqa: S105 - a variable name, not a secret
ADMIN_USER_ENV = "MILLPOND_SUPERSET_ADMIN_USER"
ADMIN_PASSWORD_ENV = "MILLPOND_SUPERSET_ADMIN_PASSWORD"  # noqa: S105 - a variable name
VENV_ENV = "MILLPOND_SUPERSET_VENV"
# Variables from the caller's environment that would confuse the other venv's Python.
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
    def for_data_dir(cls, data_dir: Path, env: Mapping[str, str]) -> Layout:
        """Standard layout: ``.venv-superset`` and ``semantic/superset`` of this repo."""
        semantic = REPO_ROOT / "semantic" / "superset"
        venv = Path(env.get(VENV_ENV) or REPO_ROOT / ".venv-superset")
        return cls(
            venv=venv,
            config=semantic / "superset_config.py",
            admin_script=semantic / "millpond_admin.py",
            bundle_dir=semantic / "bundle",
            home=Path(data_dir).expanduser().resolve() / "superset",
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


def require(env: Mapping[str, str], name: str, min_len: int = 1) -> str:
    """Return a required environment value or fail naming the variable."""
    value = env.get(name, "")
    if len(value) < min_len:
        raise SupersetError(
            f"environment variable {name} is required" + (f" (at least {min_len} characters)" if min_len > 1 else "")
        )
    return value


def child_env(layout: Layout, data_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Environment for Superset subprocesses: caller's env plus Superset's own settings."""
    merged = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    merged.update({k: v for k, v in env.items() if k not in _SCRUBBED})
    merged.update(
        {
            "SUPERSET_CONFIG_PATH": str(layout.config),
            "MILLPOND_DATA_DIR": str(Path(data_dir).expanduser().resolve()),
            "FLASK_APP": "superset",
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{layout.venv / 'bin'}{os.pathsep}{merged.get('PATH', os.defpath)}",
        }
    )
    return merged


def tail(text: str, lines: int = 25) -> str:
    """Last ``lines`` lines of ``text`` for error messages."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_step(
    step: str,
    argv: Sequence[str],
    *,
    layout: Layout,
    env: Mapping[str, str],
    timeout: float,
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Run one Superset command; return its output, or raise with step name and log tail."""
    layout.home.mkdir(parents=True, exist_ok=True)
    full_env = {**env, **(extra_env or {})}
    log.info("superset step started", extra={"step": step})
    try:
        proc = subprocess.run(
            list(argv),
            env=full_env,
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
    log.info("superset step finished", extra={"step": step})
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
