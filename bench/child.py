"""One measured stage in a process of its own: ``python -m bench.child TASK ARGS_JSON RESULT_PATH``.

The parent (:mod:`bench.processes`) reads the peak RSS of exactly this process from ``wait4``;
this side times only the work itself (after the imports) and writes what it did as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

TaskFn = Callable[[dict[str, Any]], dict[str, Any]]


def _generate(args: dict[str, Any]) -> dict[str, Any]:
    """The shop up to ``end_date`` (a first step, or an increment when the database already has one)."""
    from pymongo import MongoClient

    from millpond.generator import GeneratorConfig, generate

    client: MongoClient[dict[str, Any]] = MongoClient(args["mongo_uri"], tz_aware=True)
    with client:
        db = client[args["db"]]
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in args["config"].items()}
        config = GeneratorConfig(**fields)
        started = time.perf_counter()
        result = generate(config, date.fromisoformat(args["end_date"]), db, args["bootstrap"], args["topics"],
                          keep_events=False, producer_config=args.get("producer_config"))  # fmt: skip
        work_s = time.perf_counter() - started
        counts = {name: db[name].count_documents({}) for name in args["collections"]}
        nested = list(
            db.orders.aggregate(
                [{"$group": {"_id": None, **{f: {"$sum": _array_size(f)} for f in ("line_items", "status_history")}}}]
            )
        )
    children = {k: int(v) for k, v in (nested[0] if nested else {}).items() if k != "_id"}
    return {
        "work_s": work_s,
        "messages": result.messages,
        "documents": sum(counts.values()),
        "by_collection": counts,
        "children": children,
        "producer_queue_full": getattr(result, "producer_queue_full", None),
    }


def _array_size(field: str) -> dict[str, Any]:
    return {"$cond": [{"$isArray": f"${field}"}, {"$size": f"${field}"}, 0]}


def _kafka_floor(args: dict[str, Any]) -> dict[str, Any]:
    from bench.floors import kafka_consume

    started = time.perf_counter()
    out = kafka_consume(args["bootstrap"], args["topics"])
    return {"work_s": time.perf_counter() - started, **out}


def _mongo_find_floor(args: dict[str, Any]) -> dict[str, Any]:
    from bench.floors import mongo_find

    started = time.perf_counter()
    out = mongo_find(args["mongo_uri"], args["db"], args["collections"])
    return {"work_s": time.perf_counter() - started, **out}


def _mongo_raw_floor(args: dict[str, Any]) -> dict[str, Any]:
    from bench.floors import mongo_raw_batches

    started = time.perf_counter()
    out = mongo_raw_batches(args["mongo_uri"], args["db"], args["collections"])
    return {"work_s": time.perf_counter() - started, **out}


def _ingest(args: dict[str, Any]) -> dict[str, Any]:
    """``run_ingest`` on the given settings; rows per landed table and dead letters per source."""
    import logging

    from millpond import logs, memory
    from millpond.settings import KafkaTopics, Settings
    from millpond.stages.ingest import run_ingest

    logs.configure("json", "WARNING")
    for name in ("ingest", "millpond"):  # the expected dead-letter warnings are not news here
        logging.getLogger(name).setLevel(logging.ERROR)
    fields = dict(args["settings"])
    fields["topics"] = KafkaTopics(**fields["topics"])
    settings = Settings(**fields)
    memory.map_large_allocations(settings.malloc_mmap_threshold)  # as the `millpond` CLI does
    started = time.perf_counter()
    report = run_ingest(settings, mongo=args.get("mongo", True), kafka=args.get("kafka", True))
    work_s = time.perf_counter() - started
    quarantined = {source: sum(classes.values()) for source, classes in report.quarantined.items()}
    return {"work_s": work_s, "rows": report.rows, "dead_letters": report.dead_letters, "quarantined": quarantined}


def _vm_hwm_mib() -> float | None:
    """This process's peak resident set since ``exec`` (``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


TASKS: dict[str, TaskFn] = {
    "generate": _generate,
    "kafka_floor": _kafka_floor,
    "mongo_find_floor": _mongo_find_floor,
    "mongo_raw_floor": _mongo_raw_floor,
    "ingest": _ingest,
}


def main(argv: list[str]) -> int:
    task, args_json, result_path = argv
    load_before = os.getloadavg()[0]
    result = TASKS[task](json.loads(args_json))
    result["vm_hwm_mib"] = _vm_hwm_mib()
    result["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
