"""What landed compared with the sources: Kafka positions read and MongoDB ids, each at most once."""

from __future__ import annotations

import duckdb
import pymongo

from millpond.settings import Settings

STREAMS = ("clickstream", "payments", "shipments")
COLLECTIONS = ("customers", "products", "orders")


def kafka_counts(cfg: Settings) -> tuple[int, int]:
    """Messages read (landed + quarantined) and how many positions are there twice or more."""
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        union = " union all ".join(
            [f'select topic, "partition", "offset" from bronze.kafka_{s}' for s in STREAMS]
            + ['select origin, "partition", "offset" from bronze.dead_letter where source = \'kafka\'']
        )
        row = con.execute(f'select count(*), count(distinct (topic, "partition", "offset")) from ({union})').fetchone()
    assert row is not None
    total, distinct = int(row[0]), int(row[1])
    return total, total - distinct


def mongo_counts(cfg: Settings) -> dict[str, tuple[int, int, int]]:
    """Collection -> (documents in MongoDB, live landed + quarantined ids in bronze, rows sharing an _id)."""
    out = {}
    with (
        pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client,
        duckdb.connect(str(cfg.warehouse), read_only=True) as con,
    ):
        for name in COLLECTIONS:
            truth = client[cfg.mongo_db][name].count_documents({})
            row = con.execute(
                f"select count(*) from (select _id from bronze.mongo_{name} where _deleted_at is null union "
                "select record_key from bronze.dead_letter where source = 'mongodb' and origin = ?)",
                [name],
            ).fetchone()
            dups = con.execute(f"select count(*) - count(distinct _id) from bronze.mongo_{name}").fetchone()
            assert row is not None and dups is not None
            out[name] = (truth, int(row[0]), int(dups[0]))
    return out


def exact(cfg: Settings, produced: int) -> bool:
    """Every Kafka message read once and every MongoDB document landed (or quarantined) once."""
    return kafka_counts(cfg) == (produced, 0) and all(
        truth == landed and dups == 0 for truth, landed, dups in mongo_counts(cfg).values()
    )
