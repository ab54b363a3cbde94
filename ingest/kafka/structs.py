"""The fast path of a contract: a msgspec Struct compiled from the stream's JSON Schema.

``FastPath.wire.decode(raw)`` parses and checks a message's bytes in one compiled step, with a
second Struct of the same fields that refuses any field the schema does not name (a field
msgspec skips is not checked as strictly as orjson parses it, so such a message takes the
slow path); ``msgspec.convert(event, struct)`` checks an already decoded message. The
generated fastjsonschema function sees only the messages both refuse. The JSON Schema stays the
contract: the Struct is built from it, for the keywords below only, and a schema that uses any other
keyword gets no fast path (every message then goes to fastjsonschema). The fast path may only
ever be stricter than the schema, never looser: a message it refuses is checked again, and
explained, by fastjsonschema, so a refusal here costs time, not a verdict.
``tests/ingest/kafka/test_fast_path.py`` holds both to the same verdicts.

The commonest pattern, ``\\S`` (not blank), is checked as ``not value.isspace()`` rather
than by a regex per value: Python's ``\\S`` and ``str.isspace`` use the same Unicode
whitespace table (the test checks every code point).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Annotated, Any, Literal, Union

import msgspec

ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "examples"}
TOP_KEYWORDS = ANNOTATIONS | {"type", "required", "properties", "additionalProperties"}
FIELD_KEYWORDS = ANNOTATIONS | {"type", "pattern", "enum", "const", "minimum", "maximum"}
# JSON Schema's ``$`` ends the string; Python's also matches before a final newline (as fastjsonschema does).
DOLLAR = re.compile(r"(?<!\\)\$")
NOT_BLANK = r"\S"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class FastPath:
    """A Struct for the types, required fields, enums and bounds, and the fields that must not be blank."""

    struct: type[msgspec.Struct]
    not_blank: tuple[str, ...]
    wire: msgspec.json.Decoder[Any]  # bytes -> a Struct with only the schema's fields, absent ones UNSET

    @property
    def not_blank_values(self) -> Callable[[Any], tuple[Any, ...]] | None:
        """A function of a decoded wire Struct: the values of the fields that must not be blank (None: no such field).

        A value is blank when ``not value.strip()``: ``str.strip`` removes exactly the characters
        ``str.isspace`` calls whitespace.
        """
        names = self.not_blank
        if not names:
            return None
        return attrgetter(*names) if len(names) > 1 else attrgetter(names[0], names[0])  # always a tuple

    def accepts(self, event: dict[str, Any]) -> bool:
        """True when the schema surely accepts ``event``; False says only "ask fastjsonschema"."""
        try:
            msgspec.convert(event, self.struct)
        except msgspec.ValidationError:
            return False
        for name in self.not_blank:
            value = event.get(name)
            if isinstance(value, str) and (not value or value.isspace()):
                return False
        return True


class Unsupported(Exception):
    """The schema uses a keyword or combination the Struct cannot express exactly."""


def _keywords(node: dict[str, Any], allowed: set[str]) -> None:
    unknown = {key for key in node if key not in allowed and not key.startswith("x-millpond-")}
    if unknown:
        raise Unsupported(sorted(unknown))


def _float_meta(field: dict[str, Any]) -> msgspec.Meta:
    """Bounds for a float that hold exactly when the schema's (int or float) bounds hold."""
    low = high = None
    if "minimum" in field:
        low = float(field["minimum"])
        low = math.nextafter(low, math.inf) if low < field["minimum"] else low
    if "maximum" in field:
        high = float(field["maximum"])
        high = math.nextafter(high, -math.inf) if high > field["maximum"] else high
    return msgspec.Meta(ge=low, le=high)


def _int_meta(field: dict[str, Any]) -> msgspec.Meta:
    """The schema's bounds, within the 64-bit range orjson parses as an exact int (beyond it: the slow path)."""
    low = max(math.ceil(field["minimum"]), INT64_MIN) if "minimum" in field else INT64_MIN
    high = min(math.floor(field["maximum"]), INT64_MAX) if "maximum" in field else INT64_MAX
    return msgspec.Meta(ge=low, le=high)


def _field_type(field: dict[str, Any]) -> Any:
    _keywords(field, FIELD_KEYWORDS)
    types = field.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if "const" in field or "enum" in field:
        values = [field["const"]] if "const" in field else list(field["enum"])
        kinds = {type(value) for value in values}
        plain = not {"pattern", "minimum", "maximum"} & set(field)
        if not (values and plain and (kinds <= {str, int} if not types else types == ["string"] and kinds == {str})):
            raise Unsupported(field)
        return Literal[tuple(values)]
    if not types or not set(types) <= {"string", "number", "integer", "null"}:
        raise Unsupported(field)
    if ("pattern" in field and "string" not in types) or (
        {"minimum", "maximum"} & set(field) and not {"number", "integer"} & set(types)
    ):
        raise Unsupported(field)
    members: list[Any] = []
    if "string" in types:
        pattern = field.get("pattern")
        pattern = None if pattern == NOT_BLANK else pattern
        members.append(Annotated[str, msgspec.Meta(pattern=DOLLAR.sub(r"\\Z", pattern))] if pattern else str)
    if "number" in types or "integer" in types:
        members.append(Annotated[int, _int_meta(field)])
    if "number" in types:
        members.append(Annotated[float, _float_meta(field)])
    if "null" in types:
        members.append(None)
    return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007 - built at run time


def fast_path(schema: dict[str, Any], name: str) -> FastPath | None:
    """The fast path that accepts only what ``schema`` accepts; None when the schema goes beyond the keywords above."""
    try:
        _keywords(schema, TOP_KEYWORDS)
        if schema.get("type") != "object" or schema.get("additionalProperties", True) is not True:
            raise Unsupported("type/additionalProperties")
        required = set(schema.get("required", ()))
        properties: dict[str, Any] = schema.get("properties", {})
        if not required <= set(properties) or not all(key.isidentifier() for key in properties):
            raise Unsupported("required/properties")
        fields = [
            (key, _field_type(field)) if key in required else (key, _field_type(field), None)
            for key, field in properties.items()
        ]
    except Unsupported:
        return None
    not_blank = tuple(key for key, field in properties.items() if field.get("pattern") == NOT_BLANK)
    # an absent optional field is UNSET on the wire Struct, so that it differs from an explicit null
    wire_fields = [(key, kind, msgspec.UNSET) if key not in required else (key, kind) for key, kind, *_ in fields]
    wire = msgspec.defstruct(f"{name}_wire", wire_fields, kw_only=True, forbid_unknown_fields=True)
    return FastPath(msgspec.defstruct(name, fields, kw_only=True), not_blank, msgspec.json.Decoder(wire))
