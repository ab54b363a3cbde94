"""The dead-letter table: every record that cannot be loaded lands here with what an operator needs.

One row per quarantined record, keyed by ``dead_letter_id`` = ``<source>:<origin>:<record id>``
(Kafka ``<partition>:<offset>``, MongoDB ``<_id>@<version>``): the exact raw bytes, where the
record came from, the error class and a reason that names the field. The table's merge is
insert-only, so a re-read of a record already quarantined keeps its row and its
``first_seen_at``; ``replayed_at`` is set by the replay command once the record loads.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dlt

TABLE = "dead_letter"
KEY = ("dead_letter_id",)
# Of copies of one dead letter in one load (a load job that ran twice), the one kept: the first seen.
SURVIVOR_ORDER = ("first_seen_at", "received_at")
HINTS = dlt.mark.make_hints(
    table_name=TABLE,
    write_disposition={"disposition": "merge", "strategy": "insert-only"},
    primary_key=KEY[0],
    columns=[
        {"name": "dead_letter_id", "data_type": "text", "nullable": False},
        {"name": "source", "data_type": "text"},
        {"name": "origin", "data_type": "text"},
        {"name": "partition", "data_type": "bigint"},
        {"name": "offset", "data_type": "bigint"},
        {"name": "record_key", "data_type": "text"},
        {"name": "raw_value", "data_type": "text"},
        {"name": "raw_bytes", "data_type": "binary"},
        {"name": "headers", "data_type": "json"},
        {"name": "message_ts", "data_type": "timestamp"},
        {"name": "error_class", "data_type": "text"},
        {"name": "reason", "data_type": "text"},
        {"name": "first_seen_at", "data_type": "timestamp"},
        {"name": "received_at", "data_type": "timestamp"},
        {"name": "replayed_at", "data_type": "timestamp"},
    ],
)


def kafka_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> list[dict[str, str | None]] | None:
    """Kafka record headers as ``[{key, value_b64}]`` (values are arbitrary bytes)."""
    if not headers:
        return None
    return [
        {"key": key, "value_b64": base64.b64encode(value).decode("ascii") if value is not None else None}
        for key, value in headers
    ]


def dead_letter_row(
    *,
    source: str,
    origin: str,
    record_id: str,
    raw_value: str,
    reason: str,
    record_key: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    raw_bytes: bytes | None = None,
    headers: list[dict[str, str | None]] | None = None,
    message_ts: datetime | None = None,
    error_class: str | None = None,
    first_seen_at: datetime | None = None,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """A dead-letter row (a plain dict; see :func:`dead_letter` for one marked for dlt).

    ``raw_value`` is the readable form, ``raw_bytes`` the exact record (Kafka value bytes,
    MongoDB BSON). ``first_seen_at`` defaults to ``received_at``, which defaults to now.
    """
    received = received_at or datetime.now(UTC)
    return {
        "dead_letter_id": f"{source}:{origin}:{record_id}",
        "source": source,
        "origin": origin,
        "partition": partition,
        "offset": offset,
        "record_key": record_key,
        "raw_value": raw_value,
        "raw_bytes": raw_bytes,
        "headers": headers,
        "message_ts": message_ts,
        "error_class": error_class,
        "reason": reason,
        "first_seen_at": first_seen_at or received,
        "received_at": received,
        "replayed_at": None,
    }


def dead_letter(**fields: Any) -> Any:
    """A dead-letter row (the arguments of :func:`dead_letter_row`), marked so that dlt routes it to its table."""
    return dlt.mark.with_hints(dead_letter_row(**fields), HINTS, create_table_variant=True)
