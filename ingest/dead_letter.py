"""The dead-letter table: every record that cannot be loaded lands here with the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dlt

TABLE = "dead_letter"
HINTS = dlt.mark.make_hints(
    table_name=TABLE,
    write_disposition="merge",
    primary_key="dead_letter_id",
    columns=[
        {"name": "dead_letter_id", "data_type": "text", "nullable": False},
        {"name": "source", "data_type": "text"},
        {"name": "origin", "data_type": "text"},
        {"name": "partition", "data_type": "bigint"},
        {"name": "offset", "data_type": "bigint"},
        {"name": "record_key", "data_type": "text"},
        {"name": "raw_value", "data_type": "text"},
        {"name": "reason", "data_type": "text"},
        {"name": "received_at", "data_type": "timestamp"},
    ],
)


def dead_letter(
    *,
    source: str,
    origin: str,
    record_id: str,
    raw_value: str,
    reason: str,
    record_key: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> Any:
    """A dead-letter row, marked so that dlt routes it to the ``dead_letter`` table."""
    row = {
        "dead_letter_id": f"{source}:{origin}:{record_id}",
        "source": source,
        "origin": origin,
        "partition": partition,
        "offset": offset,
        "record_key": record_key,
        "raw_value": raw_value,
        "reason": reason,
        "received_at": datetime.now(UTC),
    }
    return dlt.mark.with_hints(row, HINTS, create_table_variant=True)
