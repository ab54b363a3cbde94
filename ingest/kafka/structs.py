"""The fast path of a contract: a msgspec Struct compiled from the stream's JSON Schema.

``msgspec.convert(event, struct)`` checks a decoded message in compiled code first; the
generated fastjsonschema function sees only the messages it refuses. The JSON Schema stays the
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
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import msgspec

ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "examples"}
TOP_KEYWORDS = ANNOTATIONS | {"type", "required", "properties", "additionalProperties"}
FIELD_KEYWORDS = ANNOTATIONS | {"type", "pattern", "enum", "const", "minimum", "maximum"}
# JSON Schema's ``$`` ends the string; Python's also matches before a final newline (as fastjsonschema does).
DOLLAR = re.compile(r"(?<!\\)\$")
NOT_BLANK = r"\S"


@dataclass(frozen=True)
class FastPath:
    """A Struct for the types, required fields, enums and bounds, and the fields that must not be blank."""

    struct: type[msgspec.Struct]
    not_blank: tuple[str, ...]

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
    low = math.ceil(field["minimum"]) if "minimum" in field else None
    high = math.floor(field["maximum"]) if "maximum" in field else None
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
    return FastPath(msgspec.defstruct(name, fields, kw_only=True), not_blank)
