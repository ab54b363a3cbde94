"""Bring a Superset instance to the state described by the repository.

Steps, each skipped when its stamp (under ``<data dir>/superset/stamps/``) says it
is already done for the same inputs:

1. ``superset db upgrade`` + ``superset init`` — keyed on the Superset version;
2. the admin user (``fab create-admin``, or ``fab reset-password`` when the
   password changed) — keyed on a hash of user, password and secret key;
3. the dashboard bundle import (assets importer, overwrites) — keyed on Superset
   version + bundle ZIP hash (which includes the serving connection URI).

Pending steps run in one Superset process (``semantic/superset/millpond_admin.py``):
creating the Superset app is the slow part, so it is paid once. Passwords travel
through environment variables, never on a command line.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from millpond import logs
from millpond.settings import Settings
from millpond.superset import bundle
from millpond.superset.runtime import (
    ADMIN_PASSWORD_ENV,
    Layout,
    Secrets,
    child_env,
    fingerprint,
    run_step,
)

log = logs.get(__name__)

STEP_TIMEOUT_S = 300.0


def bootstrap(settings: Settings) -> None:
    """Migrate the metadata DB, ensure the admin user and import the dashboard bundle."""
    secrets = Secrets.of(settings)
    user = settings.superset_admin_user
    layout = Layout.for_settings(settings)
    layout.require_venv()
    if not settings.serving.is_file():
        log.warning("superset.serving_missing", serving_path=str(settings.serving), hint="run `millpond publish`")
    version = layout.superset_version()
    stamps = _Stamps(layout)
    zip_bytes = bundle.build_zip(layout.bundle_dir, settings.serving)
    wanted = {
        "schema": fingerprint("schema", version),
        "admin": fingerprint("admin", user, secrets.admin_password, secrets.secret_key),
        "bundle": fingerprint("bundle", version, user, zip_bytes.hex()),
    }
    todo = [name for name, key in wanted.items() if not stamps.matches(name, key)]
    if not todo:
        log.info("superset.bootstrap.up_to_date", home=str(layout.home))
        return
    env = child_env(layout, settings, secrets.secret_key) | {ADMIN_PASSWORD_ENV: secrets.admin_password}
    with tempfile.TemporaryDirectory(prefix="millpond-superset-") as tmp:
        zip_path = Path(tmp) / "bundle.zip"
        zip_path.write_bytes(zip_bytes)
        argv = [str(layout.python), str(layout.admin_script), *plan_args(todo, user, zip_path)]
        run_step("bootstrap " + "+".join(todo), argv, layout=layout, env=env, timeout=STEP_TIMEOUT_S)
    for name in todo:
        stamps.write(name, wanted[name])
    log.info("superset.bootstrap.done", superset_version=version, steps=todo, home=str(layout.home))


def plan_args(todo: list[str], user: str, zip_path: Path) -> list[str]:
    """Arguments for ``millpond_admin.py``: the pending steps, ``--``-separated, in order.

    The admin step always runs before the import (the import is done as that user).
    """
    steps: list[list[str]] = []
    if "schema" in todo:
        steps.append(["schema"])
    if "admin" in todo:
        steps.append(["admin", user])
    if "bundle" in todo:
        steps.append(["import", str(zip_path), user])
    args: list[str] = []
    for step in steps:
        args += [*step] if not args else ["--", *step]
    return args


class _Stamps:
    """Tiny JSON stamp files; invalid as a whole when the metadata DB is gone."""

    def __init__(self, layout: Layout) -> None:
        self.dir = layout.home / "stamps"
        self.db = layout.home / "superset.db"

    def matches(self, name: str, key: str) -> bool:
        if not self.db.is_file():
            return False
        try:
            data = json.loads((self.dir / f"{name}.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return bool(data.get("key") == key)

    def write(self, name: str, key: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / f"{name}.json").write_text(json.dumps({"key": key}), encoding="utf-8")
