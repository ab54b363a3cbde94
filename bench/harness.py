"""Shared machinery: real services in a temp dir, isolated workspaces, data generation and timing."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pymongo
from pymongo.database import Database

from millpond.generator import GeneratorConfig, generate
from millpond.services import KafkaBroker, MongoReplicaSet, PostgresCluster
from millpond.settings import KafkaTopics, Settings
from tests.support.ports import free_port

END_DATE = date(2026, 3, 3)
# the volume at --scale 1; every count scales linearly, the number of days stays fixed
BASE = GeneratorConfig(customers=100, products=20, orders_per_day=50, sessions_per_day=30, days=7)


def generator_config(scale: float) -> GeneratorConfig:
    """``BASE`` with every volume knob multiplied by ``scale`` (at least 1 of each)."""
    return GeneratorConfig(
        seed=BASE.seed,
        customers=max(1, round(BASE.customers * scale)),
        products=max(1, round(BASE.products * scale)),
        orders_per_day=max(1, round(BASE.orders_per_day * scale)),
        sessions_per_day=max(1, round(BASE.sessions_per_day * scale)),
        days=BASE.days,
    )


@dataclass
class Services:
    """A genuine mongod replica set and Kafka-protocol broker on free ports."""

    mongo: MongoReplicaSet
    kafka: KafkaBroker
    root: Path


@contextmanager
def services(settings: Settings) -> Iterator[Services]:
    """Start mongod and the broker (``settings``' binaries) in a fresh temp dir; stop them and remove it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="millpond-bench-"))
    mongo = MongoReplicaSet(root, free_port(), settings.mongod_bin)
    kafka = KafkaBroker(root, free_port(), settings.tansu_bin)
    try:
        mongo.start()
        kafka.start()
        yield Services(mongo=mongo, kafka=kafka, root=root)
    finally:
        kafka.stop()
        mongo.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_cluster(root: Path, bin_dir: Path) -> Iterator[PostgresCluster]:
    """A private PostgreSQL 15 cluster (binaries in ``bin_dir``) under ``root`` on a free port, stopped afterwards."""
    root.chmod(0o755)  # the postgres user must reach its data dir below the temp dir
    cluster = PostgresCluster(root, free_port(), bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@dataclass
class Dataset:
    """One generated shop: its own MongoDB database and Kafka topics, plus what was written."""

    tag: str
    svc: Services
    scale: float
    messages: int = 0
    documents: int = 0
    orders: int = 0
    customers: int = 0

    def topics(self) -> dict[str, str]:
        return KafkaTopics.prefixed(self.tag).as_dict()

    def settings(self, data_dir: Path) -> Settings:
        """Settings of a fresh pipeline on this dataset."""
        return Settings(
            data_dir=data_dir,
            mongo_uri=self.svc.mongo.uri,
            mongo_db=self.tag,
            kafka_bootstrap=self.svc.kafka.uri,
            topics=KafkaTopics.prefixed(self.tag),
            io_timeout_s=30,
        )


def make_dataset(svc: Services, scale: float, name: str) -> Dataset:
    """Generate the shop at ``scale`` into a new database and new topics."""
    ds = Dataset(tag=f"bench_{name}_{uuid.uuid4().hex[:8]}", svc=svc, scale=scale)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(svc.mongo.uri, tz_aware=True)
    with client:
        db: Database[dict[str, Any]] = client[ds.tag]
        result = generate(generator_config(scale), END_DATE, db, svc.kafka.uri, ds.topics())
        ds.customers = db.customers.count_documents({})
        ds.orders = db.orders.count_documents({})
        ds.documents = ds.customers + ds.orders + db.products.count_documents({})
    ds.messages = result.messages
    return ds


def land_arrow_tables(warehouse: Path, tables: Iterable[tuple[str, pa.Table]]) -> int:
    """The baselines' minimal load: each ``(name, table)`` becomes ``bronze.<name>`` by one Arrow insert."""
    con = duckdb.connect(str(warehouse))
    rows = 0
    try:
        con.execute("CREATE SCHEMA bronze")
        for name, table in tables:
            con.register("batch", table)
            con.execute(f'CREATE TABLE bronze."{name}" AS SELECT * FROM batch')
            con.unregister("batch")
            rows += table.num_rows
    finally:
        con.close()
    return rows


@contextmanager
def scratch(root: Path, name: str) -> Iterator[Path]:
    """A fresh directory under ``root``, removed afterwards."""
    path = root / f"{name}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def time_once(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@dataclass
class Comparison:
    """Candidate vs baseline timings of one benchmark; ``ratio`` = candidate / baseline (medians)."""

    name: str
    title: str
    candidate: str
    baseline: str
    rows: int
    candidate_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def candidate_median(self) -> float:
        return statistics.median(self.candidate_s)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline_s)

    @property
    def ratio(self) -> float:
        return self.candidate_median / self.baseline_median

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            candidate_median_s=round(self.candidate_median, 4),
            baseline_median_s=round(self.baseline_median, 4),
            candidate_rows_per_s=round(self.rows / self.candidate_median, 1),
            baseline_rows_per_s=round(self.rows / self.baseline_median, 1),
            ratio=round(self.ratio, 3),
        )
        out["candidate_s"] = [round(t, 4) for t in self.candidate_s]
        out["baseline_s"] = [round(t, 4) for t in self.baseline_s]
        return out


def compare(
    result: Comparison,
    candidate: Callable[[], Any],
    baseline: Callable[[], Any],
    repeat: int,
    warmup: int = 1,
) -> Comparison:
    """Time both sides ``repeat`` times, alternating which goes first so drift hits both alike.

    ``warmup`` untimed rounds first pay the one-off costs (lazy imports, page cache).
    """
    for _ in range(warmup):
        candidate()
        baseline()
    for i in range(repeat):
        if i % 2 == 0:
            result.candidate_s.append(time_once(candidate))
            result.baseline_s.append(time_once(baseline))
        else:
            result.baseline_s.append(time_once(baseline))
            result.candidate_s.append(time_once(candidate))
    return result
