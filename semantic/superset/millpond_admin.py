"""Superset administration steps for Millpond, run in ONE Superset process.

Runs inside the Superset virtual environment (``.venv-superset/bin/python``) with
``SUPERSET_CONFIG_PATH`` pointing at ``superset_config.py``. Creating the Superset
app costs 10-20 s, so the requested steps share one app instead of one ``superset``
CLI process each. The steps are the stock CLI commands, invoked in-process:

    millpond_admin.py schema                     # superset db upgrade && superset init
    millpond_admin.py admin USERNAME             # superset fab create-admin (or reset-password)
    millpond_admin.py import BUNDLE.zip USERNAME # assets import (overwrites everything)

Several steps may be chained: ``schema -- admin admin -- import b.zip admin``.
The admin password is read from ``MILLPOND_SUPERSET_ADMIN_PASSWORD``, never argv.

The bundle import uses the *assets* importer: unlike ``superset import-dashboards``
(which overwrites only the dashboard and keeps existing charts, datasets and
databases), it makes the metadata database match the bundle, so the repository
is the source of truth.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from zipfile import ZipFile


def _invoke(app: Any, args: list[str], env: dict[str, str] | None = None) -> str:
    """Run a ``superset`` CLI command against the already-created app."""
    from superset.cli.main import superset

    result = app.test_cli_runner().invoke(superset, args, env=env, catch_exceptions=True)
    sys.stdout.write(f"$ superset {' '.join(args)}\n{result.output}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise RuntimeError(f"superset {' '.join(args)} raised") from result.exception
    if result.exit_code != 0:
        raise RuntimeError(f"superset {' '.join(args)} exited with {result.exit_code}")
    return str(result.output)


def _schema(app: Any) -> None:
    _invoke(app, ["db", "upgrade"])
    _invoke(app, ["init"])


def _admin(app: Any, username: str) -> None:
    password = os.environ.get("MILLPOND_SUPERSET_ADMIN_PASSWORD", "")
    if not password:
        raise RuntimeError("MILLPOND_SUPERSET_ADMIN_PASSWORD is not set")
    output = _invoke(
        app,
        [
            "fab",
            "create-admin",
            "--username",
            username,
            "--firstname",
            "Millpond",
            "--lastname",
            "Admin",
            "--email",
            f"{username}@millpond.invalid",
        ],
        env={"FLASK_FAB_CREATE_ADMIN_PASSWORD": password},
    )
    if "already exists" in output:
        _invoke(
            app, ["fab", "reset-password", "--username", username], env={"FLASK_FAB_RESET_PASSWORD_PASSWORD": password}
        )
    elif "created" not in output:
        raise RuntimeError("fab create-admin gave no confirmation")


def _import(app: Any, bundle_path: str, username: str) -> None:
    from superset import security_manager
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.commands.importers.v1.utils import get_contents_from_bundle
    from superset.utils.core import override_user

    with app.app_context():
        user = security_manager.find_user(username=username)
        if user is None:
            raise RuntimeError(f"user {username!r} does not exist")
        with ZipFile(bundle_path) as bundle:
            contents = get_contents_from_bundle(bundle)
        with override_user(user):
            ImportAssetsCommand(contents).run()
    names = sorted(name for name in contents if name.startswith("dashboards/"))
    sys.stdout.write(f"imported {len(contents)} files: {', '.join(names)}\n")


_STEPS = {"schema": (_schema, 0), "admin": (_admin, 1), "import": (_import, 2)}


def parse(argv: list[str]) -> list[tuple[str, list[str]]]:
    """Split ``step args -- step args`` into validated ``(step, args)`` pairs."""
    plan: list[tuple[str, list[str]]] = []
    current: list[str] = []
    separator = "--"
    for arg in [*argv, separator]:
        if arg != separator:
            current.append(arg)
            continue
        if not current:
            continue
        step, args = current[0], current[1:]
        if step not in _STEPS or len(args) != _STEPS[step][1]:
            raise SystemExit(f"usage: {__doc__}")
        plan.append((step, args))
        current = []
    if not plan:
        raise SystemExit(f"usage: {__doc__}")
    return plan


def main(argv: list[str]) -> int:
    """Create the Superset app once and run the requested steps in order."""
    plan = parse(argv)
    from superset.app import create_app

    app = create_app()
    for step, args in plan:
        sys.stdout.write(f"===== step {step} =====\n")
        sys.stdout.flush()
        _STEPS[step][0](app, *args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
