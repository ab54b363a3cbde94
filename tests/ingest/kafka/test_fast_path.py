"""The msgspec fast path never accepts what the JSON Schema refuses, and takes every good event itself."""

from __future__ import annotations

import itertools
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any

import fastjsonschema
import pytest

from ingest.kafka import contracts
from ingest.kafka.structs import fast_path
from millpond.generator.model import GeneratorConfig, ShopModel

NOW = datetime(2026, 3, 2, tzinfo=UTC)
PROBES: list[Any] = [
    None, "", " ", "\t\n", "\u00a0", "\u2003x", "x", "12", "12\n", "12.50", "012.5", "-1", "1e5", "12.", ".5",
    "9999999999999999", "99999999999999999", "payment_captured", "page_view", "shipment_created",
    0, 1, 2, -1, 12, 12.5, -0.0, 1e16, 9999999999999998.0, 9999999999999999, 10**16, 10**20, 1.0, 2.0,
    True, False, [], ["x"], {}, {"a": 1},
]  # fmt: skip
ALL_CONTRACTS = [c for versions in contracts.contracts().values() for c in versions.values()]


def _good_events() -> list[dict[str, Any]]:
    model = ShopModel(GeneratorConfig(duplicate_rate=0, malformed_rate=0, drift_rate=0.5), step_seed=3, clock=NOW)
    products = [model.product(n, datetime(2026, 1, 1, tzinfo=UTC)) for n in range(1, 4)]
    order = model.order(1, datetime(2026, 2, 1, tzinfo=UTC), "cus_000001", products)
    messages = model.lifecycle_events(order, model.advance(order, NOW))
    for n in range(10):
        messages += model.clickstream(f"sess{n}", datetime(2026, 2, 1, 12, tzinfo=UTC), None, ["prd_0001"], "ord_1")
    return [json.loads(m.value) | {"_stream": m.topic_key} for m in messages]


def _schema_accepts(contract: contracts.Contract, event: dict[str, Any]) -> bool:
    try:
        contract.check(event)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def test_not_blank_matches_the_regex_for_every_code_point():
    pattern = re.compile(r"\S")
    mismatches = [c for c in map(chr, range(sys.maxunicode + 1)) if bool(pattern.search(c)) != (not c.isspace())]
    assert mismatches == []


def test_every_shipped_contract_has_a_fast_path():
    assert ALL_CONTRACTS and all(contract.fast is not None for contract in ALL_CONTRACTS)


def test_the_fast_path_takes_every_good_event():
    for event in _good_events():
        stream = event.pop("_stream")
        contract = contracts.contracts()[stream][event.get("schema_version", 1)]
        assert contract.fast is not None and contract.fast.accepts(event), (stream, event)


@pytest.mark.parametrize("contract", ALL_CONTRACTS, ids=lambda c: f"{c.stream}-v{c.version}")
def test_the_fast_path_is_never_looser_than_the_schema(contract):
    assert contract.fast is not None
    base = next(e for e in _good_events() if e.pop("_stream") == contract.stream)
    base["schema_version"] = contract.version
    fields = [*contract.schema["properties"], "extra_field"]
    variants = [base, *({k: v for k, v in base.items() if k != drop} for drop in fields)]
    variants += [{**base, field: probe} for field in fields for probe in PROBES]
    variants += [{**base, a: pa, b: pb} for a, b in itertools.combinations(fields[:5], 2) for pa in PROBES[:6]
                 for pb in PROBES[:6]]  # fmt: skip
    taken = 0
    for event in variants:
        if contract.fast.accepts(event):
            taken += 1
            assert _schema_accepts(contract, event), event
    assert taken > 1


def test_keywords_the_fast_path_cannot_express_turn_it_off():
    base = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert fast_path(base, "ok") is not None
    assert fast_path({**base, "additionalProperties": False}, "closed") is None
    assert fast_path({**base, "properties": {"a": {"type": "string", "format": "date-time"}}}, "format") is None
    assert fast_path({**base, "properties": {"a": {"type": "array"}}}, "array") is None
    assert fast_path({**base, "properties": {"a": {"enum": [1.5]}}}, "float_enum") is None
