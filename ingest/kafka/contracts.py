"""The contracts at the Kafka edge: one versioned JSON Schema per stream and schema version.

A message lands only when it is a UTF-8 JSON object that meets the schema of its stream and
version (``schemas/<stream>/v<N>.json``, the version from the payload's ``schema_version``, 1
when absent) and its ``event_ts`` is an ISO-8601 timestamp with a time zone inside the
plausible range. Each rule that a blocking silver audit checks on one record is in these
schemas, so a bad record is quarantined with its reason instead of failing every later run.

The schemas are compiled once per stream and version, twice over: to msgspec Structs
(``structs.py``), the fast path every message takes first (:meth:`EdgeCheck.envelope`: the
bytes parsed and checked in one compiled step), and to a fastjsonschema function, which
checks and explains every message the fast path passes on (:meth:`EdgeCheck.check`).
Event-type enums are not written in the schema files: the loader fills every property marked
``"x-millpond-vocabulary": "event_types"`` from ``ingest.vocabulary.EVENT_TYPES``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import msgspec
import orjson

from ingest.kafka.structs import FastPath, fast_path
from ingest.vocabulary import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "schemas"
DEFAULT_SCHEMA_VERSION = 1  # a payload without ``schema_version``
DEFAULT_MAX_FUTURE_SKEW_S = 300.0
ENVELOPE_FIELDS = {"event_id", "event_type", "event_ts"}  # required by every contract the fast path takes

# error classes of the dead-letter table
JSON_INVALID = "json.invalid"
OVERSIZED = "size.oversized"
MISSING_FIELD = "contract.missing_field"
TYPE_ERROR = "contract.type"
VALUE_ERROR = "contract.value"
UNKNOWN_SCHEMA_VERSION = "contract.unknown_schema_version"
IMPLAUSIBLE_TIME = "contract.implausible_time"
UNKNOWN_STREAM = "contract.unknown_stream"

Problem = tuple[str, str]  # (error class, reason naming the field)


class Event(msgspec.Struct, frozen=True):
    """A message that meets its contract, decoded whole."""

    event_id: str
    event_type: str
    event_ts: datetime
    schema_version: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Contract:
    """The compiled schema of one stream and version."""

    stream: str
    version: int
    schema: dict[str, Any]
    check: Callable[[Any], Any]
    fast: FastPath | None = None  # None: the schema has keywords the fast path does not take

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.schema.get("required", ()))


def _fill_vocabulary(node: Any, stream: str) -> None:
    if isinstance(node, dict):
        if node.get("x-millpond-vocabulary") == "event_types":
            node["enum"] = list(EVENT_TYPES[stream])
        for child in node.values():
            _fill_vocabulary(child, stream)
    elif isinstance(node, list):
        for child in node:
            _fill_vocabulary(child, stream)


def load_schema(path: Path, stream: str) -> dict[str, Any]:
    """The schema in ``path`` with its vocabulary enums filled in for ``stream``."""
    schema: dict[str, Any] = json.loads(path.read_text())
    _fill_vocabulary(schema, stream)
    return schema


@cache
def contracts(schema_dir: Path = SCHEMA_DIR) -> Mapping[str, Mapping[int, Contract]]:
    """Stream -> schema version -> compiled contract, for every ``<stream>/v<N>.json`` in ``schema_dir``."""
    out: dict[str, dict[int, Contract]] = {}
    for path in sorted(schema_dir.glob("*/v*.json")):
        stream, version = path.parent.name, int(path.stem[1:])
        schema = load_schema(path, stream)
        check = fastjsonschema.compile(schema)
        out.setdefault(stream, {})[version] = Contract(
            stream, version, schema, check, fast_path(schema, f"{stream}_v{version}")
        )
    return out


def _states_its_version(contract: Contract) -> bool:
    """Whether a message the contract's wire Struct decodes is surely of this version (no need to look again).

    So when ``schema_version`` is the const of this version and either required or, absent,
    the default version.
    """
    field = contract.schema.get("properties", {}).get("schema_version", {})
    const = field.get("const") if set(field) <= {"const", "description", "title"} else None
    exact = type(const) is int and const == contract.version
    return exact and ("schema_version" in contract.required or contract.version == DEFAULT_SCHEMA_VERSION)


def _field(exc: fastjsonschema.JsonSchemaValueException) -> str:
    return ".".join(str(part) for part in (exc.path or ["data"])[1:]) or "(value)"


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _explain(contract: Contract, event: dict[str, Any], exc: fastjsonschema.JsonSchemaValueException) -> Problem:
    name = f"{contract.stream} v{contract.version}"
    if exc.rule == "required":
        missing = [f for f in contract.required if f not in event]
        return MISSING_FIELD, f"missing required field '{missing[0] if missing else '?'}' ({name})"
    field = _field(exc)
    if exc.rule == "type":
        if exc.value is None and field in contract.required:
            return MISSING_FIELD, f"required field '{field}' is null ({name})"
        expected = (exc.definition or {}).get("type")
        got = f"{type(exc.value).__name__} {exc.value!r:.60}"
        return TYPE_ERROR, f"field '{field}' must be {expected}, got {got} ({name})"
    if exc.rule == "pattern" and isinstance(exc.value, str) and not exc.value.strip():
        return VALUE_ERROR, f"field '{field}' is blank ({name})"
    if exc.rule == "pattern" and "number" in (exc.definition or {}).get("type", ()) and not _is_number(exc.value):
        return TYPE_ERROR, f"field '{field}' must be a decimal number, got {exc.value!r:.60} ({name})"
    if exc.rule == "enum":
        return VALUE_ERROR, f"field '{field}' is {exc.value!r:.60}, not one of {list(exc.definition['enum'])} ({name})"
    return VALUE_ERROR, f"field '{field}' is {exc.value!r:.60}: {exc.rule} {exc.definition.get(exc.rule)!r} ({name})"


def parse_time(value: str) -> datetime | None:
    """An ISO-8601 timestamp with a time zone, in UTC; None when ``value`` is not one."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


Envelope = tuple[str, str, str, int]  # event_id, event_type, event_ts (as sent, checked), schema_version


class EdgeCheck:
    """The contract check of one stream at one moment; ``check(raw)`` is :func:`validate` with these arguments.

    ``envelope(raw)`` is the fast path: the envelope of a message that surely meets its
    contract, or None, which says only "ask ``check``". It may pass on a message that ``check``
    accepts (for example one with fields the schema does not name), never the other way round.
    """

    __slots__ = ("_wire", "earliest", "latest", "max_bytes", "max_future_skew_s", "stream", "versions")

    def __init__(
        self,
        stream: str,
        *,
        now: datetime,
        earliest: datetime | None,
        max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S,
        max_bytes: int | None = None,
        schema_dir: Path | None = None,
    ) -> None:
        self.stream = stream
        self.versions = contracts(schema_dir or SCHEMA_DIR).get(stream)
        self.earliest = earliest
        self.latest = now + timedelta(seconds=max_future_skew_s)
        self.max_future_skew_s = max_future_skew_s
        self.max_bytes = max_bytes
        self._wire = tuple(
            (version, contract.fast.wire.decode, contract.fast.not_blank_values, not _states_its_version(contract))
            for version, contract in sorted((self.versions or {}).items())
            if contract.fast is not None and set(contract.required) >= ENVELOPE_FIELDS
        )

    def envelope(self, raw: bytes) -> Envelope | None:
        """The envelope of ``raw`` when its contract surely accepts it; None: ask :meth:`check`."""
        if self.max_bytes is not None and len(raw) > self.max_bytes:
            return None
        for version, decode, not_blank_values, check_version in self._wire:
            try:
                event = decode(raw)
            except msgspec.DecodeError:
                continue
            if check_version:
                declared = getattr(event, "schema_version", msgspec.UNSET)
                declared = DEFAULT_SCHEMA_VERSION if declared is msgspec.UNSET else declared
                if type(declared) is not int or declared != version:
                    return None
            if not_blank_values is not None:
                for value in not_blank_values(event):
                    if type(value) is str and not value.strip():
                        return None
            event_ts = event.event_ts
            try:
                moment = datetime.fromisoformat(event_ts)
            except (TypeError, ValueError):
                return None
            if moment.tzinfo is None or moment > self.latest or (self.earliest is not None and moment < self.earliest):
                return None
            return event.event_id, event.event_type, event_ts, version
        return None

    def check(self, raw: bytes) -> tuple[Event | None, Problem | None]:
        if self.max_bytes is not None and len(raw) > self.max_bytes:
            return None, (OVERSIZED, f"value is {len(raw)} bytes, over the limit of {self.max_bytes}")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            what = "UTF-8" if "utf-8" in str(exc).lower() else "JSON"
            return None, (JSON_INVALID, f"value is not valid {what}: {exc}")
        if type(data) is not dict:
            kind = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
                type(data), "null"
            )
            return None, (TYPE_ERROR, f"value is a JSON {kind}, not an object")
        versions = self.versions
        if versions is None:
            return None, (UNKNOWN_STREAM, f"no contract for stream '{self.stream}'")
        version = data.get("schema_version", DEFAULT_SCHEMA_VERSION)
        contract = versions.get(version) if type(version) is int else None
        if contract is None:
            known = sorted(versions)
            reason = f"field 'schema_version' is {version!r:.40}; {self.stream} knows {known}"
            return None, (UNKNOWN_SCHEMA_VERSION, reason)
        if contract.fast is None or not contract.fast.accepts(data):
            try:
                contract.check(data)
            except fastjsonschema.JsonSchemaValueException as exc:
                return None, _explain(contract, data, exc)
        event_ts = data["event_ts"]
        moment = parse_time(event_ts)
        if moment is None:
            reason = f"field 'event_ts' is not an ISO-8601 timestamp with a time zone: {event_ts!r:.60}"
            return None, (VALUE_ERROR, reason)
        if moment > self.latest:
            reason = f"field 'event_ts' {event_ts} is after now + {self.max_future_skew_s:g}s"
            return None, (IMPLAUSIBLE_TIME, reason)
        if self.earliest is not None and moment < self.earliest:
            return None, (IMPLAUSIBLE_TIME, f"field 'event_ts' {event_ts} is before {self.earliest.isoformat()}")
        return Event(data["event_id"], data["event_type"], moment, version, data), None


def validate(
    stream: str,
    raw: bytes,
    *,
    now: datetime,
    earliest: datetime | None,
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S,
    max_bytes: int | None = None,
    schema_dir: Path | None = None,
) -> tuple[Event | None, Problem | None]:
    """``(event, None)`` when ``raw`` meets the contract of ``stream``, else ``(None, (error_class, reason))``.

    An event time after ``now + max_future_skew_s`` or before ``earliest`` is implausible; a
    value longer than ``max_bytes`` is oversized and not parsed at all. The contracts are the
    schemas in ``schema_dir`` (None: the ones shipped in ``ingest/kafka/schemas``).
    """
    gate = EdgeCheck(
        stream,
        now=now,
        earliest=earliest,
        max_future_skew_s=max_future_skew_s,
        max_bytes=max_bytes,
        schema_dir=schema_dir,
    )
    return gate.check(raw)
