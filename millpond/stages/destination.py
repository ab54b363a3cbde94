"""Where the ingest stage lands data: the dlt destination of the configured warehouse engine.

``MILLPOND_WAREHOUSE_ENGINE`` picks it: ``duckdb`` (the default) is the embedded warehouse file
with parquet load files; ``postgres`` is the PostgreSQL database of the ``MILLPOND_WAREHOUSE_PG_*``
settings (the same database the SQLMesh ``postgres`` gateway of ``config.yaml`` transforms).
:func:`landed_client` opens dlt's own SQL client on the landed dataset of either, so the
post-load steps (``millpond/stages/landed.py``) run the same code on every engine.
docs/warehouse-engines.md describes the engines, and the documented but untested ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dlt
import duckdb
from dlt.common.destination import Destination
from dlt.common.schema import Schema
from dlt.dataset.utils import get_destination_client_initial_config
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.job_client_impl import SqlJobClientBase

from millpond.errors import MillpondError
from millpond.settings import Settings

DATASET = "bronze"  # the landed layer: dlt's dataset, the schema SQLMesh reads as bronze.*
LOADER_FILE_FORMAT = "parquet"  # DuckDB loads parquet files; PostgreSQL keeps dlt's default (INSERT batches)
SESSION_TIME_ZONE = "UTC"


def postgres_credentials(settings: Settings) -> dict[str, Any]:
    """dlt's PostgreSQL credentials from the ``MILLPOND_WAREHOUSE_PG_*`` settings; every session in UTC."""
    password = settings.warehouse_pg_password
    return {
        "host": settings.warehouse_pg_host,
        "port": settings.warehouse_pg_port,
        "database": settings.warehouse_pg_database,
        "username": settings.warehouse_pg_user,
        "password": password.get_secret_value() if password is not None else "",  # "": trust or .pgpass
        "session_timezone": SESSION_TIME_ZONE,
    }


def landing_destination(settings: Settings) -> Destination[Any, Any]:
    """The dlt destination the ingest pipeline writes to, as ``MILLPOND_WAREHOUSE_ENGINE`` selects."""
    if settings.warehouse_engine == "postgres":
        return dlt.destinations.postgres(credentials=postgres_credentials(settings))
    if settings.warehouse_engine == "duckdb":
        settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
        credentials = DuckDbCredentials(str(settings.warehouse), global_config=duckdb_config(settings))
        return dlt.destinations.duckdb(credentials, preferred_loader_file_format=LOADER_FILE_FORMAT)
    raise MillpondError(
        f"unknown warehouse engine {settings.warehouse_engine!r}",
        stage="config",
        hint="set MILLPOND_WAREHOUSE_ENGINE to duckdb or postgres (docs/warehouse-engines.md)",
    )


def duckdb_config(settings: Settings) -> dict[str, Any]:
    """The DuckDB settings of the ingest stage's connections to the warehouse (dlt's loads, every post-load step).

    Insertion order need not be kept (every landed table has its own order columns), which
    lets DuckDB stream inserts instead of buffering them. ``duckdb_memory_limit`` bounds
    DuckDB's memory (unset: DuckDB's default, 80% of the machine's) and ``duckdb_threads`` its
    threads (0: one per core); the copy and merge jobs spill to DuckDB's temp directory,
    ``<warehouse>.tmp`` inside the data dir, beyond the limit, but not every part of a merge
    can, so the limit must hold the largest load package.
    """
    config: dict[str, Any] = {"preserve_insertion_order": False}
    if settings.duckdb_memory_limit:
        config["memory_limit"] = settings.duckdb_memory_limit
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    return config


def warehouse_connection(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A connection of the ingest stage's own to the DuckDB warehouse, within the same bounds as dlt's."""
    return duckdb.connect(str(settings.warehouse), config=duckdb_config(settings))


def warehouse_exists(settings: Settings) -> bool:
    """Whether there can be anything landed yet: the DuckDB file exists (a server database always may)."""
    return settings.warehouse_engine != "duckdb" or settings.warehouse.exists()


@contextmanager
def landed_client(settings: Settings) -> Iterator[SqlJobClientBase]:
    """An open dlt job client on the landed dataset of the configured destination (``.sql_client`` runs SQL).

    Parameters are written ``%s`` on every engine (dlt translates them); table names come from
    ``client.sql_client.make_qualified_table_name`` and column names from ``escape_column_name``.
    """
    destination = landing_destination(settings)
    config = get_destination_client_initial_config(destination, dataset_name=DATASET)
    client = destination.client(Schema(DATASET), config)
    if not isinstance(client, SqlJobClientBase):
        raise MillpondError(
            f"the {destination.destination_name} destination has no SQL client",
            stage="ingest",
            hint="use a SQL warehouse engine (docs/warehouse-engines.md)",
        )
    with client:
        yield client
