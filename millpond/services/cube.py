"""Cube 0.33.65 (``tools/cube``, npm) serving the ``semantic/cube`` model from PostgreSQL.

Current Cube cannot be installed here (its native module downloads from GitHub), so compose
and Kubernetes run the official image while local tests run Cube 0.33, which needs no native
code. The model is plain YAML so the same files load in both. Settings are the production
ones: no dev mode (JWT required), in-memory cache and queue, no Cube Store.
"""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from millpond.services.base import LocalService, require_binary


@dataclass(frozen=True)
class CubeDatabase:
    """The PostgreSQL serving database Cube reads (use a read-only login)."""

    host: str
    port: int
    name: str
    user: str
    password: str = ""


class CubeServer(LocalService):
    """``cubejs-server`` under Node on 127.0.0.1, its own process group.

    ``project_dir`` (``Settings.project_dir``) holds the npm install (``tools/cube``) and the
    model (``semantic/cube/model``, run from ``semantic/cube`` as ``/cube/conf`` in the image).
    """

    name = "cube"
    process_marker = "@cubejs-backend/server"
    start_timeout_s = 90.0

    def __init__(self, data_dir: Path, port: int, database: CubeDatabase, api_secret: str, project_dir: Path) -> None:
        super().__init__(data_dir, port)
        self.database = database
        self.api_secret = api_secret
        self.tools = project_dir / "tools" / "cube"
        self.conf = project_dir / "semantic" / "cube"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self) -> None:
        node = require_binary(Path(shutil.which("node") or "/usr/bin/node"), "node", "install Node.js 20")
        server = require_binary(
            self.tools / "node_modules" / "@cubejs-backend" / "server" / "bin" / "server",
            "cubejs-server",
            "run `make setup-cube` (npm ci in tools/cube)",
        )
        db = self.database
        env = {
            "PORT": str(self.port),
            "CUBEJS_DB_TYPE": "postgres",
            "CUBEJS_DB_HOST": db.host,
            "CUBEJS_DB_PORT": str(db.port),
            "CUBEJS_DB_NAME": db.name,
            "CUBEJS_DB_USER": db.user,
            "CUBEJS_DB_PASS": db.password,
            "CUBEJS_API_SECRET": self.api_secret,
            "CUBEJS_SCHEMA_PATH": "model",
            "CUBEJS_DEV_MODE": "false",
            "CUBEJS_CACHE_AND_QUEUE_DRIVER": "memory",
            "CUBEJS_EXTERNAL_DEFAULT": "false",
            "CUBEJS_TELEMETRY": "false",
            "CUBEJS_LOG_LEVEL": "warn",
        }
        self._spawn([str(node), str(server)], env=env, cwd=self.conf)

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.uri}/readyz", timeout=2) as resp:  # noqa: S310 - our loopback URL
            return bool(resp.status == 200)
