"""Bring a Superset instance to the state described by the repository.

Steps, each skipped when its stamp (under ``<data dir>/superset/stamps/``) says it
is already done for the same inputs:

1. ``superset db upgrade`` + ``superset init`` — keyed on the Superset version;
2. the admin user (``fab create-admin``, or ``fab reset-password`` when the
   password changed) — keyed on a hash of user, password and secret key;
3. the dashboard bundle import (assets importer, overwrites) — keyed on Superset
   version + bundle ZIP hash (which includes the serving file path).

Pending steps run in one Superset process (``semantic/superset/millpond_admin.py``):
creating the Superset app is the slow part, so it is paid once. Passwords travel
through environment variables, never on a command line.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

from millpond.superset import bundle
from millpond.superset.runtime import (
    ADMIN_PASSWORD_ENV,
    ADMIN_USER_ENV,
    SECRET_ENV,
    Layout,
    child_env,
    fingerprint,
    require,
    run_step,
)

log = logging.getLogger(__name__)

STEP_TIMEOUT_S = 300.0


def bootstrap(data_dir: Path, serving_path: Path, env: Mapping[str, str]) -> None:
    """Migrate the metadata DB, ensure the admin user and import the dashboard bundle."""
    secret = require(env, SECRET_ENV, min_len=16)
    user = env.get(ADMIN_USER_ENV) or "admin"
    password = require(env, ADMIN_PASSWORD_ENV)
    layout = Layout.for_data_dir(data_dir, env)
    layout.require_venv()
    serving_path = Path(serving_path).expanduser().resolve()
    if not serving_path.is_file():
        log.warning(
            "serving database does not exist yet; dashboards will error until it is published",
            extra={"serving_path": str(serving_path)},
        )
    version = layout.superset_version()
    stamps = _Stamps(layout)
    zip_bytes = bundle.build_zip(layout.bundle_dir, serving_path)
    wanted = {
        "schema": fingerprint("schema", version),
        "admin": fingerprint("admin", user, password, secret),
        "bundle": fingerprint("bundle", version, user, zip_bytes.hex()),
    }
    todo = [name for name, key in wanted.items() if not stamps.matches(name, key)]
    if not todo:
        log.info("superset already bootstrapped", extra={"home": str(layout.home)})
        return
    with tempfile.TemporaryDirectory(prefix="millpond-superset-") as tmp:
        zip_path = Path(tmp) / "bundle.zip"
        zip_path.write_bytes(zip_bytes)
        argv = [str(layout.python), str(layout.admin_script), *plan_args(todo, user, zip_path)]
        run_step(
            "bootstrap " + "+".join(todo),
            argv,
            layout=layout,
            env=child_env(layout, data_dir, env),
            timeout=STEP_TIMEOUT_S,
        )
    for name in todo:
        stamps.write(name, wanted[name])
    log.info(
        "superset bootstrapped",
        extra={"superset_version": version, "steps": todo, "home": str(layout.home)},
    )


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
