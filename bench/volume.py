"""Ingest at volume: 100k, 1M, 10M landed rows against the raw read floors, each stage its own process.

For every size, on fresh services: generate the shop (measured), run the raw read floors
(:mod:`bench.floors`), a full ``run_ingest`` into a fresh warehouse, then a generator
increment of one more day (about 1% of the history) and an incremental ``run_ingest`` on the
same pipeline. Each stage is a :mod:`bench.child` process, so its peak RSS is its own.

The generator's volume for a size comes from a calibration run at a small scale (source
records per unit of scale; every volume knob scales linearly), corrected after each size by
what that size really landed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import shutil
import statistics
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.harness import END_DATE, Services, services
from bench.processes import ChildFailed, Measured, run_child
from bench.sizes import label
from bench.targets import targets
from millpond import logs
from millpond.generator import GeneratorConfig
from millpond.settings import KafkaTopics, Settings

log = logs.get("bench.volume")
# 100 days, so that the increment (one more day) is about 1% of the history
VOLUME_BASE = GeneratorConfig(customers=100, products=20, orders_per_day=50, sessions_per_day=30, days=100)
CALIBRATION_SCALE = 0.2
COLLECTIONS = ("customers", "products", "orders")
# Tansu's in-memory log serves fetches ever more slowly as the number of record batches grows
# (a partition of millions of small batches stalls a consumer for more than 30 s), so the
# generator is asked for large producer batches; that changes how the data is written, not what.
PRODUCER_CONFIG = {"linger.ms": 200, "batch.num.messages": 10_000, "batch.size": 4 * 1024 * 1024}
MEMORY_HEADROOM_GIB = 4.0  # ingest, mongod and the bench itself, beside the broker's in-memory log
BROKER_GROWTH = 1.5  # safety factor on the broker's memory per message measured at the previous size


def generator_config(scale: float) -> dict[str, Any]:
    """The generator's settings at ``scale`` (JSON-ready, for the child process)."""
    return dataclasses.asdict(VOLUME_BASE.scaled(scale))


def _meminfo_gib(field: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _rss_mib(pid: int | None) -> dict[str, float | None]:
    """Current and peak RSS (VmRSS, VmHWM) of a server process, MiB."""
    out: dict[str, float | None] = {"rss_mib": None, "peak_mib": None}
    if pid is None:
        return out
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss_mib" if key == "VmRSS" else "peak_mib"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


FROZEN = ("bench", "ingest", "millpond", "external_models.yaml")  # what the stage processes import or read


def freeze_code(project_dir: Path, root: Path) -> tuple[Path, str]:
    """A copy of the code the stages run, so every size measures the same code: (its dir, a digest of it)."""
    frozen = root / "code"
    digest = hashlib.sha256()
    for name in FROZEN:
        source = project_dir / name
        if source.is_dir():
            shutil.copytree(source, frozen / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            frozen.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, frozen / name)
    for path in sorted(p for p in frozen.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(frozen)).encode() + b"\0" + path.read_bytes())
    return frozen, digest.hexdigest()[:16]


class SizeRun:
    """The stages of one size on its own services."""

    def __init__(self, settings: Settings, code: Path, svc: Services, size: int, scale: float, workdir: Path) -> None:
        self.settings, self.code, self.svc, self.size, self.scale = settings, code, svc, size, scale
        self.tag = f"vol_{label(size).lower()}_{uuid.uuid4().hex[:6]}"
        self.topics = KafkaTopics.prefixed(self.tag)
        self.workdir = workdir
        self.data_dir = workdir / "pipeline"
        self.pycache = code.parent / "pycache"  # beside the frozen code: one bytecode cache for every size

    def child(self, task: str, args: dict[str, Any]) -> Measured:
        log.info("bench.volume.stage", size=label(self.size), task=task)
        return run_child(task, args, self.workdir / "children", self.code, pycache=self.pycache)

    def generate(self, end_date: date) -> Measured:
        return self.child(
            "generate",
            {
                "mongo_uri": self.svc.mongo.uri,
                "db": self.tag,
                "bootstrap": self.svc.kafka.uri,
                "topics": self.topics.as_dict(),
                "config": generator_config(self.scale),
                "end_date": end_date.isoformat(),
                "collections": list(COLLECTIONS),
                "producer_config": PRODUCER_CONFIG,
            },
        )

    def floor(self, task: str) -> Measured:
        return self.child(
            task,
            {
                "bootstrap": self.svc.kafka.uri,
                "topics": list(self.topics.as_dict().values()),
                "mongo_uri": self.svc.mongo.uri,
                "db": self.tag,
                "collections": list(COLLECTIONS),
            },
        )

    def ingest(self, data_dir: Path, *, mongo: bool = True, kafka: bool = True) -> Measured:
        fields = {
            "data_dir": str(data_dir),
            "project_dir": str(self.code),
            "mongo_uri": self.svc.mongo.uri,
            "mongo_db": self.tag,
            "kafka_bootstrap": self.svc.kafka.uri,
            "topics": self.topics.as_dict(),
            "io_timeout_s": 30,
        }
        return self.child("ingest", {"settings": fields, "mongo": mongo, "kafka": kafka})


def _stage(m: Measured, rows: int) -> dict[str, Any]:
    return {
        "work_s": round(m.work_s, 3),
        "wall_s": round(m.wall_s, 3),
        "peak_rss_mib": round(m.peak_rss_mib, 1),
        "vm_hwm_mib": m.result.get("vm_hwm_mib"),
        "load_avg_1m": m.result.get("load_avg_1m"),
        "rows": rows,
        "rows_per_s": round(rows / m.work_s, 1) if m.work_s > 0 else None,
    }


def _repeated(runs: list[Measured], rows: int) -> dict[str, Any]:
    """The median run of a repeated stage (every run's time kept)."""
    median = statistics.median(r.work_s for r in runs)
    stage = _stage(min(runs, key=lambda r: abs(r.work_s - median)), rows)
    stage.update(work_s=round(median, 3), rows_per_s=round(rows / median, 1), runs_s=[round(r.work_s, 3) for r in runs])
    stage["peak_rss_mib"] = round(max(r.peak_rss_mib for r in runs), 1)
    return stage


def _landed(m: Measured) -> int:
    return sum(int(n) for n in m.result["rows"].values())


def _ingest_stage(m: Measured) -> dict[str, Any]:
    stage = _stage(m, _landed(m))
    stage.update(tables=m.result["rows"], dead_letters=m.result["dead_letters"], quarantined=m.result["quarantined"])
    return stage


def _attempt(point: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]]) -> bool:
    """Run one stage into ``point["stages"][name]``; a failure is recorded (first line) and the size goes on."""
    try:
        point["stages"][name] = fn()
        return True
    except ChildFailed as exc:
        first = str(exc).splitlines()[0]
        log.warning("bench.volume.stage_failed", stage=name, error=first)
        point["stages"][name] = {"error": first}
        point["errors"].append(f"{name}: {first}")
        return False


def _completeness(ingest: dict[str, Any], messages: int, documents: int) -> dict[str, Any]:
    """Did the full load account for every source record (landed or dead-lettered)?"""
    tables, quarantined = ingest["tables"], ingest["quarantined"]
    kafka = sum(n for t, n in tables.items() if t.startswith("kafka_")) + quarantined.get("kafka", 0)
    mongo = sum(tables.get(f"mongo_{c}", 0) for c in COLLECTIONS) + quarantined.get("mongodb", 0)
    return {
        "kafka_accounted": kafka,
        "kafka_expected": messages,
        "mongo_accounted": mongo,
        "mongo_expected": documents,
        "complete": kafka == messages and mongo == documents,
    }


def measure_size(
    settings: Settings, code: Path, size: int, scale: float, repeat: int, root: Path, per_source: bool
) -> dict:
    """Every stage at one size on fresh services."""
    point: dict[str, Any] = {"size": size, "label": label(size), "scale": round(scale, 4), "stages": {}, "errors": []}
    with services(settings) as svc:
        run = SizeRun(settings, code, svc, size, scale, root / f"size-{label(size)}")
        gen = run.generate(END_DATE)
        source = {
            "messages": gen.result["messages"],
            "documents": gen.result["documents"],
            "children": gen.result["children"],
        }
        source["records"] = source["messages"] + source["documents"]
        point["source"] = source
        point["stages"]["generate"] = _stage(gen, source["records"])
        point["stages"]["generate"]["producer_queue_full"] = gen.result.get("producer_queue_full")
        point["servers_after_generate"] = {"broker": _rss_mib(svc.kafka.pid()), "mongod": _rss_mib(svc.mongo.pid())}

        for task, rows in (
            ("kafka_floor", source["messages"]),
            ("mongo_find_floor", source["documents"]),
            ("mongo_raw_floor", source["documents"]),
        ):
            _attempt(point, task, functools.partial(_floor, run, task, rows, repeat))
        stages = point["stages"]
        for task, key, expected in (
            ("kafka_floor", "messages", source["messages"]),
            ("mongo_find_floor", "documents", source["documents"]),
        ):
            if "error" not in stages[task] and stages[task]["rows"] != expected:
                point["errors"].append(f"{task} read a different count than generated ({key})")

        if per_source:
            _attempt(point, "ingest_kafka", lambda: _ingest_stage(run.ingest(run.workdir / "kafka-only", mongo=False)))
            _attempt(point, "ingest_mongo", lambda: _ingest_stage(run.ingest(run.workdir / "mongo-only", kafka=False)))
        if _attempt(point, "ingest_full", lambda: _ingest_stage(run.ingest(run.data_dir))):
            point["completeness"] = _completeness(stages["ingest_full"], source["messages"], source["documents"])

            def increment() -> dict[str, Any]:
                m = run.generate(END_DATE + timedelta(days=1))
                return _stage(m, m.result["messages"] + _new_documents(m, gen))

            if _attempt(point, "generate_increment", increment):
                _attempt(point, "ingest_incremental", lambda: _ingest_stage(run.ingest(run.data_dir)))
        point["servers_at_end"] = {"broker": _rss_mib(svc.kafka.pid()), "mongod": _rss_mib(svc.mongo.pid())}
    _derive(point)
    return point


def _floor(run: SizeRun, task: str, rows: int, repeat: int) -> dict[str, Any]:
    return _repeated([run.floor(task) for _ in range(repeat)], rows)


def _new_documents(after: Measured, before: Measured) -> int:
    """New documents of an increment (updates of existing ones are not counted here)."""
    return max(0, int(after.result["documents"]) - int(before.result["documents"]))


def _derive(point: dict[str, Any]) -> None:
    """Ratios to the floors and the incremental fractions, where the stages ran."""
    s = point["stages"]
    ok = {name for name, stage in s.items() if "error" not in stage}
    if {"kafka_floor", "mongo_find_floor"} <= ok:
        point["floor_s"] = round(s["kafka_floor"]["work_s"] + s["mongo_find_floor"]["work_s"], 3)
    if {"kafka_floor", "mongo_raw_floor"} <= ok:
        point["raw_floor_s"] = round(s["kafka_floor"]["work_s"] + s["mongo_raw_floor"]["work_s"], 3)
    if "ingest_full" in ok:
        full = s["ingest_full"]
        point["landed_rows"] = full["rows"]
        if "floor_s" in point:
            full["ratio_to_floor"] = round(full["work_s"] / point["floor_s"], 3)
        if "raw_floor_s" in point:
            full["ratio_to_raw_floor"] = round(full["work_s"] / point["raw_floor_s"], 3)
    for name, floor in (("ingest_kafka", "kafka_floor"), ("ingest_mongo", "mongo_find_floor")):
        if {name, floor} <= ok:
            s[name]["ratio_to_floor"] = round(s[name]["work_s"] / s[floor]["work_s"], 3)
    if {"ingest_full", "ingest_incremental"} <= ok:
        inc, full = s["ingest_incremental"], s["ingest_full"]
        inc["fraction_of_full_rows"] = round(inc["rows"] / full["rows"], 4) if full["rows"] else None
        inc["fraction_of_full_time"] = round(inc["work_s"] / full["work_s"], 4)


def calibrate(settings: Settings, code: Path, root: Path) -> dict[str, Any]:
    """Source records (messages, documents and their nested list items) per unit of generator scale.

    An untimed ingest of the calibration data follows: the warm-up that fills the bytecode
    cache every later stage reads (:func:`bench.processes.child_env`).
    """
    with services(settings) as svc:
        run = SizeRun(settings, code, svc, 0, CALIBRATION_SCALE, root / "calibration")
        gen = run.generate(END_DATE)
        run.ingest(run.data_dir)
    estimate = gen.result["messages"] + gen.result["documents"] + sum(gen.result["children"].values())
    return {"scale": CALIBRATION_SCALE, "estimated_rows": estimate, "rows_per_scale": estimate / CALIBRATION_SCALE}


def _broker_bytes_per_message(point: dict[str, Any]) -> float | None:
    rss = (point.get("servers_after_generate") or {}).get("broker", {}).get("rss_mib")
    messages = (point.get("source") or {}).get("messages")
    return rss * 2**20 / messages if rss and messages else None


def run(
    settings: Settings,
    sizes: list[int],
    repeat: int,
    root: Path,
    per_source: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every size in turn (ascending); a size the memory cannot hold is skipped with the reason.

    ``progress`` gets the result so far after each size.
    """
    code, digest = freeze_code(settings.project_dir, root)
    log.info("bench.volume.code_frozen", digest=digest)
    calibration = calibrate(settings, code, root)
    calibration["code_digest"] = digest
    log.info("bench.volume.calibrated", **calibration)
    correction = 1.0
    points: list[dict[str, Any]] = []
    bytes_per_message: float | None = None
    messages_per_row: float | None = None
    for size in sorted(sizes):
        scale = size / (calibration["rows_per_scale"] * correction)
        available = _meminfo_gib("MemAvailable")
        if bytes_per_message and messages_per_row and available is not None:
            need = bytes_per_message * messages_per_row * size * BROKER_GROWTH / 2**30 + MEMORY_HEADROOM_GIB
            if need > available:
                reason = f"needs about {need:.1f} GiB (broker log in memory), {available:.1f} GiB available"
                log.warning("bench.volume.skipped", size=label(size), reason=reason)
                points.append({"size": size, "label": label(size), "skipped": reason, "stages": {}, "errors": []})
                continue
        point = measure_size(settings, code, size, scale, repeat, root, per_source)
        points.append(point)
        estimated = calibration["rows_per_scale"] * scale
        if point.get("landed_rows"):
            correction *= point["landed_rows"] / estimated
        bytes_per_message = _broker_bytes_per_message(point) or bytes_per_message
        if point.get("landed_rows") and point["source"]["messages"]:
            messages_per_row = point["source"]["messages"] / point["landed_rows"]
        elif point.get("source"):
            messages_per_row = point["source"]["messages"] / estimated
        log.info("bench.volume.size_done", size=label(size), errors=point["errors"])
        if progress is not None:
            progress(_result(calibration, repeat, per_source, points))
    return _result(calibration, repeat, per_source, points)


def _result(calibration: dict[str, Any], repeat: int, per_source: bool, points: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "calibration": calibration,
        "base": {
            k: getattr(VOLUME_BASE, k) for k in ("customers", "products", "orders_per_day", "sessions_per_day", "days")
        },
        "repeat_floors": repeat,
        "per_source": per_source,
        "points": points,
        "targets": targets(points),
    }
