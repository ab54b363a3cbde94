"""A private PostgreSQL 15 cluster (Debian packages) on its own port and socket directory."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from millpond.errors import ServiceError
from millpond.services.base import LocalService, require_binary


class PostgresCluster(LocalService):
    """``initdb`` + ``pg_ctl`` as the ``postgres`` user when running as root; trust auth on loopback."""

    name = "postgres"
    process_marker = "postgres"
    superuser = "postgres"

    def __init__(self, data_dir: Path, port: int, bin_dir: Path) -> None:
        super().__init__(data_dir, port)
        self.bin_dir = bin_dir  # ``Settings.pg_bin``: initdb, pg_ctl, postgres

    @property
    def uri(self) -> str:
        return self.database_uri("postgres")

    def database_uri(self, database: str, user: str | None = None) -> str:
        """URI of ``database`` on this cluster as ``user`` (default: the superuser)."""
        return f"postgresql://{user or self.superuser}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database ``name`` (an existing one of that name is dropped); its superuser URI."""
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_uri(name)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", "postgres", "--"]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _launch(self) -> None:
        hint = "apt-get install postgresql-15, or point MILLPOND_PG_BIN at its bin dir"
        initdb = require_binary(self.bin_dir / "initdb", "initdb", hint)
        pg_ctl = require_binary(self.bin_dir / "pg_ctl", "pg_ctl", hint)
        self._chown(self.root)
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists():
                shutil.rmtree(self.data)
            self._check(
                [*self._run_as(), str(initdb), "-D", str(self.data), "-U", self.superuser,
                 "--auth=trust", "--encoding=UTF8", "--no-sync"],
                "initdb",
            )  # fmt: skip
        self.log_file.touch()
        self._chown(self.log_file)
        self._check(
            [*self._run_as(), str(pg_ctl), "-D", str(self.data), "-l", str(self.log_file), "-w",
             "-t", "30", "-o", f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off", "start"],
            "pg_ctl start",
        )  # fmt: skip
        pid_line = (self.data / "postmaster.pid").read_text().splitlines()[0]
        self.pid_file.write_text(pid_line.strip())

    def _check(self, argv: list[str], what: str) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"{what} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}",
                stage="services",
            )

    def healthy(self) -> bool:
        with psycopg.connect(self.uri, connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)
