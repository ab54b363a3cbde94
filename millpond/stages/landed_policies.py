"""The governance policies applied to newly landed rows, after every ingest and before every transform.

* erasure: the rows of customers registered in ``millpond_meta.erasure_requests`` that arrived
  since the last check (a later load, a change-stream replay, a re-snapshot) are scrubbed as the
  erasure scrubbed the landed layer (:func:`millpond.stages.erasure.reapply`), so they never
  reach silver, gold or serving;
* retention: late Kafka events older than the retention cutoff already applied are dropped
  (:func:`millpond.stages.retention.drop_aged_out_arrivals`), so no restatement reaches a day
  whose landed events are gone.

Both are cheap when there is nothing to do (no registered request, no retention applied).
"""

from __future__ import annotations

from typing import Any

from millpond.settings import Settings
from millpond.stages.destination import warehouse_connection


def apply_landed_policies(settings: Settings) -> dict[str, Any]:
    """Apply both policies to the landed layer (DuckDB warehouse; the caller holds the pipeline lock)."""
    from millpond.stages.erasure import reapply, reapply_to_dlt
    from millpond.stages.retention import drop_aged_out_arrivals

    if settings.warehouse_engine != "duckdb" or not settings.warehouse.exists():
        return {}
    with warehouse_connection(settings) as con:
        dropped = drop_aged_out_arrivals(con)
        found = reapply(settings, con)
    reapply_to_dlt(settings, found)
    return {"retention_dropped": dropped, "erasure_reapplied": found.affected}
