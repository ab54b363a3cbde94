"""Where the ingest stage lands data: the dlt destination for the configured warehouse."""

from __future__ import annotations

from typing import Any

import dlt

from millpond.settings import Settings

LOADER_FILE_FORMAT = "parquet"


def landing_destination(settings: Settings) -> Any:
    """The dlt destination the ingest pipeline writes to: the embedded DuckDB warehouse file, parquet load files."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dlt.destinations.duckdb(str(settings.warehouse), preferred_loader_file_format=LOADER_FILE_FORMAT)
