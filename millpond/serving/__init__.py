"""Publishing gold data to the serving database that dashboards and APIs read.

Readers never open the warehouse: DuckDB allows one writer or many readers, never both, so
the pipeline writes the warehouse while readers use a separate copy that is swapped in whole.
"""

from millpond.serving.base import PublishResult, ServingTarget
from millpond.serving.duckdb_target import DuckDBServingTarget
from millpond.serving.postgres_target import PostgresServingTarget

__all__ = ["DuckDBServingTarget", "PostgresServingTarget", "PublishResult", "ServingTarget"]
