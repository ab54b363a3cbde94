"""Micro-benchmark of the Kafka source's extract: contract check and Arrow batch building per page.

No broker: generator-shaped messages (``confluent_kafka.Message`` objects, as ``consume()``
returns them) with poison of every kind, legacy malformed records and duplicates mixed in, go
page by page (``CONSUME_CHUNK`` messages) through :class:`ingest.kafka.reader.Extract`, the
code the reader runs per ``consume()`` page, and each ``max_batch_messages`` become one Arrow
table. The floor, measured in the same run over the same bytes, is a bare ``json.loads`` loop.
Each figure is the median of ``--repeat`` runs after a warm-up (the contracts compiled, Arrow's
kernels loaded). Peak RSS is the process's high-water mark during the extracts (reset before
them, on Linux); "held" is the RSS before them, with the messages of the stream in memory.

    python -m bench.kafka_extract                      # 100k and 1M messages
    python -m bench.kafka_extract --sizes 100k --profile
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import pstats
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from bench.sizes import parse_size
from ingest.kafka.reader import CONSUME_CHUNK, Extract, ReadOptions
from ingest.vocabulary import EVENT_TYPES
from millpond.generator.model import ts
from millpond.generator.poison import KAFKA_POISON_KINDS, kafka_value

SHARE = {"clickstream": 0.6, "payments": 0.25, "shipments": 0.15}  # of the messages, per stream
POISON_RATE = 0.01  # per good message: one poison record after it (kinds in turn)
MALFORMED_RATE = 0.005
DUPLICATE_RATE = 0.02
MAX_MESSAGE_BYTES = 2048  # oversized poison is padded past this, not to 1 MiB, to keep the run light
START = datetime(2026, 2, 1, tzinfo=UTC)
PARTITIONS = 3


def _body(stream: str, n: int, rng: random.Random) -> dict[str, Any]:
    """A good event of ``stream`` shaped as the generator makes it (``millpond.generator.model``)."""
    body: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": rng.choice(EVENT_TYPES[stream]),
        "event_ts": ts(START + timedelta(milliseconds=n * 700 + rng.randrange(700))),
    }
    if stream == "clickstream":
        version = 2 if rng.random() < 0.05 else 1
        body |= {
            "session_id": f"sess_{n // 5:08d}",
            "customer_id": f"cus_{n % 997:06d}" if n % 3 else None,
            "product_id": f"prd_{n % 40:04d}" if n % 2 else None,
            "order_id": None,
            "page_url": f"/product/prd_{n % 40:04d}",
            "schema_version": version,
        }
        if version == 2:
            body["referrer"] = rng.choice(("google", "newsletter", "direct"))
    elif stream == "payments":
        body |= {
            "order_id": f"ord_{n // 3:08d}",
            "amount": f"{rng.randint(100, 99_999) / 100:.2f}",
            "currency": "EUR",
            "method": rng.choice(("card", "paypal", "invoice")),
        }
    else:
        body |= {"order_id": f"ord_{n // 3:08d}", "carrier": "DHL", "tracking_number": f"DHL{10**9 + n}"}
    return body


def values(stream: str, count: int, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """``count`` (key, value) pairs of ``stream``: good events with poison, malformed records and duplicates."""
    rng = random.Random(seed)
    made = n = 0
    while True:
        body = _body(stream, n, rng)
        raw = json.dumps(body).encode()
        key = (body.get("session_id") or body.get("order_id") or "").encode()
        out = [raw]
        if rng.random() < DUPLICATE_RATE:
            out.append(raw)
        if rng.random() < MALFORMED_RATE:
            out.append(b'{"event_id": "truncated')
        if rng.random() < POISON_RATE:
            kind = KAFKA_POISON_KINDS[n % len(KAFKA_POISON_KINDS)]
            poisoned = {**body, "event_id": f"{body['event_id']}-poison"}
            out.append(kafka_value(kind, stream, poisoned, oversized_bytes=2 * MAX_MESSAGE_BYTES))
        for value in out:
            yield key, value
            made += 1
            if made == count:
                return
        n += 1


def messages(stream: str, count: int) -> list[Message]:
    """The messages of one topic as ``consume()`` returns them, spread over ``PARTITIONS`` partitions."""
    base_ms = int(START.timestamp() * 1000)
    return [
        Message(
            topic=f"shop.{stream}",
            partition=i % PARTITIONS,
            offset=i // PARTITIONS,
            key=key,
            value=value,
            timestamp=(1, base_ms + i),
        )
        for i, (key, value) in enumerate(values(stream, count))
    ]


def json_floor(msgs: list[Message]) -> float:
    """Seconds for a bare ``json.loads`` of every value."""
    loads = json.loads
    started = time.perf_counter()
    for msg in msgs:
        try:  # noqa: SIM105 - a context manager per message would slow the floor down
            loads(msg.value() or b"")
        except ValueError:
            pass
    return time.perf_counter() - started


def extract(stream: str, msgs: list[Message], options: ReadOptions) -> tuple[float, int, int]:
    """Seconds to check every page of ``msgs`` and build the Arrow batches; landed rows and dead letters."""
    started = time.perf_counter()
    pipe = Extract(stream, f"shop.{stream}", options, datetime.now(UTC))
    landed = dead = 0
    for start in range(0, len(msgs), CONSUME_CHUNK):
        pipe.take(msgs[start : start + CONSUME_CHUNK], {}, set())
        if pipe.messages >= options.max_batch_messages:
            landed += pipe.batch.to_arrow().num_rows
            dead += len(pipe.dead)
            pipe.reset()
    landed += pipe.batch.to_arrow().num_rows
    dead += len(pipe.dead)
    return time.perf_counter() - started, landed, dead


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


@dataclass
class Result:
    stream: str
    messages: int
    landed: int
    dead_letters: int
    extract_s: float
    floor_s: float
    held_rss_mib: float
    peak_rss_mib: float

    @property
    def ratio(self) -> float:
        return self.extract_s / self.floor_s

    @property
    def per_s(self) -> float:
        return self.messages / self.extract_s


def warm_up(options: ReadOptions) -> None:
    """Compile the contracts and load Arrow's kernels once, as the first page of a real run does."""
    for stream in SHARE:
        extract(stream, messages(stream, 2 * CONSUME_CHUNK), options)


def run(size: int, options: ReadOptions, repeat: int, profile: Path | None = None) -> list[Result]:
    """Per stream: the median of ``repeat`` extracts and floors over the same messages."""
    results = []
    for stream, share in SHARE.items():
        msgs = messages(stream, round(size * share))
        gc.collect()
        held = _rss_mib("VmRSS")
        _reset_peak()
        if profile is not None and stream == "clickstream":
            profiler = cProfile.Profile()
            profiler.runcall(extract, stream, msgs, options)
            profiler.dump_stats(profile)
        floors, extracts = [], []
        for _ in range(repeat):
            floors.append(json_floor(msgs))
            extract_s, landed, dead = extract(stream, msgs, options)
            extracts.append(extract_s)
            gc.collect()
        peak = _rss_mib("VmHWM")
        assert landed + dead == len(msgs), (stream, landed, dead, len(msgs))
        median = statistics.median
        results.append(Result(stream, len(msgs), landed, dead, median(extracts), median(floors), held, peak))
        del msgs
    return results


def markdown(rows: list[tuple[str, list[Result]]]) -> str:
    lines = [
        "| Size | Stream | Messages | Dead letters | Extract s | msg/s | json.loads s | Ratio | Held RSS MiB | Peak MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, results in rows:
        for r in results:
            lines.append(
                f"| {label} | {r.stream} | {r.messages:,} | {r.dead_letters:,} | {r.extract_s:.3f} | {r.per_s:,.0f} "
                f"| {r.floor_s:.3f} | {r.ratio:.2f}x | {r.held_rss_mib:,.0f} | {r.peak_rss_mib:,.0f} |"
            )
        total_s = sum(r.extract_s for r in results)
        floor_s = sum(r.floor_s for r in results)
        count = sum(r.messages for r in results)
        lines.append(
            f"| {label} | **all** | {count:,} | {sum(r.dead_letters for r in results):,} | {total_s:.3f} "
            f"| {count / total_s:,.0f} | {floor_s:.3f} | **{total_s / floor_s:.2f}x** | | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m", help="total messages per run, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="extracts (and floors) per size and stream; the median")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the clickstream extract")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    options = ReadOptions(max_message_bytes=MAX_MESSAGE_BYTES, earliest_event_time=datetime(2020, 1, 1, tzinfo=UTC))
    warm_up(options)
    rows = []
    for label in args.sizes.split(","):
        profile = Path(tempfile.gettempdir()) / f"kafka_extract_{label}.prof" if args.profile else None
        rows.append((label, run(parse_size(label), options, args.repeat, profile)))
        if profile is not None:
            pstats.Stats(str(profile)).sort_stats("tottime").print_stats(15)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({label: [asdict(r) for r in res] for label, res in rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
