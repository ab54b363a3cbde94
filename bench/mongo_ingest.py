"""MongoDB ingestion: the dlt pipeline vs ``find()`` + one Arrow insert per collection."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
from bson.decimal128 import Decimal128
from pymongo import MongoClient
from pymongo.database import Database

from bench.harness import Comparison, Dataset, compare, land_arrow_tables, scratch
from ingest.mongodb.contracts import COLLECTIONS
from millpond.stages.ingest import run_ingest


class _DecimalDecoder(TypeDecoder):
    """Decimal128 → Decimal inside the BSON decoder, so Arrow can infer decimal columns."""

    bson_type = Decimal128

    def transform_bson(self, value: Decimal128) -> Decimal:
        return value.to_decimal()


CODECS: CodecOptions = CodecOptions(tz_aware=True, type_registry=TypeRegistry([_DecimalDecoder()]))


def baseline_ingest(ds: Dataset, warehouse: Path) -> int:
    """Every document of the ingested collections, nested fields kept as Arrow structs and lists."""
    client: MongoClient[dict[str, Any]] = MongoClient(ds.svc.mongo.uri, tz_aware=True)
    with client:
        db: Database[dict[str, Any]] = client.get_database(ds.tag, codec_options=CODECS)
        # pa.array infers one struct type from all documents (drifted fields included)
        return land_arrow_tables(
            warehouse,
            ((f"mongo_{name}", pa.Table.from_struct_array(pa.array(list(db[name].find())))) for name in COLLECTIONS),
        )


def run(ds: Dataset, repeat: int, warmup: int = 1) -> Comparison:
    """Full load of the customers, products and orders collections into a fresh warehouse, both ways."""
    root = ds.svc.root

    def candidate() -> None:
        with scratch(root, "mongo-dlt") as data_dir:
            report = run_ingest(ds.settings(data_dir), mongo=True, kafka=False)
            loaded = sum(report.rows.get(f"mongo_{c}", 0) for c in COLLECTIONS) + report.dead_letters
            if loaded != ds.documents:
                raise AssertionError(f"dlt loaded {loaded} documents, expected {ds.documents}")

    def baseline() -> None:
        with scratch(root, "mongo-base") as data_dir:
            loaded = baseline_ingest(ds, data_dir / "baseline.duckdb")
            if loaded != ds.documents:
                raise AssertionError(f"baseline loaded {loaded} documents, expected {ds.documents}")

    result = Comparison(
        name="mongo_ingest",
        title="MongoDB → DuckDB",
        candidate="run_ingest(kafka=False): dlt incremental merge, contracts, child tables for nested lists",
        baseline="pymongo find() + one Arrow insert per collection (nested lists kept as LIST columns)",
        rows=ds.documents,
        notes="rows = root documents (customers + products + orders); dlt also writes the child-table rows",
    )
    return compare(result, candidate, baseline, repeat, warmup)
