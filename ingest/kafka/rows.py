"""Landed rows of a Kafka topic, built column by column into one Arrow table per batch.

The payload column holds the message value as it arrived (already checked to be a UTF-8 JSON
object); dlt lands it in the ``payload`` JSON column. The same builder serves the reader and
the replay of dead letters. The tables are appended to: each position is read once, because the
positions move in dlt state in the same load package as the rows (ADR 0005), and the copies a
resumed load job leaves are collapsed per load (ADR 0021).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Message

from ingest.dead_letter import dead_letter_row, kafka_headers
from ingest.kafka.contracts import Envelope, Event, Problem

PRIMARY_KEY = ("topic", "partition", "offset")
UTC_MICROS = pa.timestamp("us", tz="UTC")
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
# Of copies of one position in one load (a load job that ran twice), the one kept: the first read.
SURVIVOR_ORDER = ("_ingested_at",)
# dlt's row id column: the batches carry it, random like dlt's own ids (18 bytes, 24 base64 characters), so
# dlt's normalizer need not rewrite every extracted file to add it.
ROW_ID = "_dlt_id"
ROW_ID_BYTES = 18
ROW_ID_HINT: dict[str, Any] = {"data_type": "text", "nullable": False, "unique": True, "row_key": True}
ENVELOPE_COLUMNS: dict[str, Any] = {
    "topic": {"data_type": "text"},
    "partition": {"data_type": "bigint"},
    "offset": {"data_type": "bigint"},
    "message_key": {"data_type": "text"},
    "message_ts": {"data_type": "timestamp"},
    "event_id": {"data_type": "text"},
    "event_type": {"data_type": "text"},
    "event_ts": {"data_type": "timestamp"},
    "schema_version": {"data_type": "bigint"},
    "payload": {"data_type": "json"},
    "_ingested_at": {"data_type": "timestamp"},
}
LANDED_COLUMNS: dict[str, Any] = {**ENVELOPE_COLUMNS, ROW_ID: ROW_ID_HINT}
ARROW_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int64()),
        ("offset", pa.int64()),
        ("message_key", pa.string()),
        ("message_ts", UTC_MICROS),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("event_ts", UTC_MICROS),
        ("schema_version", pa.int64()),
        ("payload", pa.string()),
        ("_ingested_at", UTC_MICROS),
        pa.field(ROW_ID, pa.string(), nullable=False),
    ]
)


def table_hints(table_name: str) -> Any:
    """The hints every batch of ``table_name`` carries: appended, keyed on (topic, partition, offset)."""
    return dlt.mark.make_hints(
        table_name=table_name,
        primary_key=list(PRIMARY_KEY),
        write_disposition="append",
        columns=LANDED_COLUMNS,
    )


def row_ids(n: int) -> pa.Array:
    """``n`` random row ids (crypto-grade, base64) as one Arrow string array, with no Python string per row."""
    width = ROW_ID_BYTES * 4 // 3
    data = base64.b64encode(secrets.token_bytes(ROW_ID_BYTES * n))
    offsets = pa.array(range(0, width * (n + 1), width), pa.int32())
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(data))


def decode_key(key: bytes | None) -> str | None:
    return key.decode("utf-8", "replace") if key else None


def message_time(ts_ms: int | None) -> datetime | None:
    """A Kafka record timestamp (ms since the epoch) as a datetime; None when the broker has none."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC) if ts_ms and ts_ms > 0 else None


class LandedBatch:
    """Column lists of the landed rows of one topic, turned into an Arrow table by :meth:`to_arrow`."""

    def __init__(self, topic: str, ingested_at: datetime) -> None:
        self.topic = topic
        self.ingested_at = ingested_at
        self.nbytes = 0
        self._partition: list[int] = []
        self._offset: list[int] = []
        self._key: list[bytes | None] = []  # as read; text in to_arrow
        self._ts: list[int | None] = []  # ms since the epoch, as read; null unless > 0 in to_arrow
        self._event_id: list[str] = []
        self._event_type: list[str] = []
        self._event_ts: list[str] = []  # ISO-8601 with a time zone, as checked; UTC in to_arrow
        self._version: list[int] = []
        self._payload: list[bytes] = []

    def __len__(self) -> int:
        return len(self._offset)

    def add(self, partition: int, offset: int, key: bytes | None, ts_ms: int | None, raw: bytes, event: Event) -> None:
        """One valid message; ``raw`` is its value, landed as the payload."""
        self._partition.append(partition)
        self._offset.append(offset)
        self._key.append(key or None)
        self._ts.append(ts_ms)
        self._event_id.append(event.event_id)
        self._event_type.append(event.event_type)
        self._event_ts.append(event.event_ts.isoformat())
        self._version.append(event.schema_version)
        self._payload.append(raw)
        self.nbytes += len(raw)

    def extend(self, messages: Sequence[Message], values: Sequence[bytes], envelopes: Sequence[Envelope]) -> None:
        """Valid messages, column by column: ``values[i]`` and ``envelopes[i]`` belong to ``messages[i]``."""
        if not messages:
            return
        self._partition += [msg.partition() for msg in messages]  # type: ignore[misc]  # messages, not events
        self._offset += [msg.offset() for msg in messages]  # type: ignore[misc]
        self._key += [msg.key() or None for msg in messages]
        self._ts += [msg.timestamp()[1] for msg in messages]
        event_ids, event_types, event_ts, versions = zip(*envelopes, strict=True)
        self._event_id += event_ids
        self._event_type += event_types
        self._event_ts += event_ts
        self._version += versions
        self._payload += values
        self.nbytes += sum(map(len, values))

    def to_arrow(self) -> pa.Table:
        n = len(self)
        columns = [
            pa.repeat(pa.scalar(self.topic, pa.string()), n),
            pa.array(self._partition, pa.int64()),
            pa.array(self._offset, pa.int64()),
            self._keys(),
            self._message_ts(),
            pa.array(self._event_id, pa.string()),
            pa.array(self._event_type, pa.string()),
            self._event_times(),
            pa.array(self._version, pa.int64()),
            pa.array(self._payload, pa.binary()).cast(pa.string()),  # validated UTF-8 already
            pa.repeat(pa.scalar(self.ingested_at, UTC_MICROS), n),
            row_ids(n),
        ]
        return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)

    def _event_times(self) -> pa.Array:
        """The event times in UTC: Arrow's cast in bulk when every one is RFC 3339, else Python's parser one by one.

        For that strict shape both parsers read the same instant; other ISO-8601 forms that
        ``datetime.fromisoformat`` accepts (and the contract check used) are parsed by it again.
        """
        text = pa.array(self._event_ts, pa.string())
        if len(text) and pc.all(pc.match_substring_regex(text, RFC3339)).as_py():
            return text.cast(UTC_MICROS)
        return pa.array([datetime.fromisoformat(value) for value in self._event_ts], UTC_MICROS)

    def _message_ts(self) -> pa.Array:
        """The record timestamps; null where the broker has none (absent, or not after the epoch)."""
        ts = pa.array(self._ts, pa.int64())
        ts = pc.if_else(pc.greater(ts, 0), ts, pa.scalar(None, pa.int64()))
        return ts.cast(pa.timestamp("ms", tz="UTC")).cast(UTC_MICROS)

    def _keys(self) -> pa.Array:
        """The keys as text: cast in bulk, or decoded one by one with replacement when one is not UTF-8."""
        keys = pa.array(self._key, pa.binary())
        try:
            return keys.cast(pa.string())
        except pa.ArrowInvalid:
            return pa.array([decode_key(key) for key in self._key], pa.string())


def kafka_dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    ts_ms: int | None,
    headers: Any,
    raw: bytes,
    problem: Problem,
    received_at: datetime,
) -> dict[str, Any]:
    """The dead-letter row of a message that breaks its contract, with its exact bytes."""
    error_class, reason = problem
    return dead_letter_row(
        source="kafka",
        origin=topic,
        record_id=f"{partition}:{offset}",
        record_key=decode_key(key),
        partition=partition,
        offset=offset,
        raw_value=raw.decode("utf-8", "replace"),
        raw_bytes=raw,
        headers=kafka_headers(headers),
        message_ts=message_time(ts_ms),
        error_class=error_class,
        reason=reason,
        received_at=received_at,
    )
