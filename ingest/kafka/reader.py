"""The bounded read of one topic: batches of landed rows (Arrow) and dead letters.

A read ends at each partition's end, or after ``ReadOptions.max_batches`` batches (the
follower's micro-batches); ``state["caught_up"]`` says which. Positions
(``positions[partition] = {"offset": next offset, "ts": timestamp ms, "sha256": hex}`` of the
last message read) live in the resource state, which dlt commits with the load package, so a
read that stops at its bound goes on from there next time. Each read first re-reads the
message a stored position points after (offset - 1) and compares its timestamp and SHA-256: a
topic that was recreated, whatever its new length, stops the read with :class:`TopicRecreated`
instead of being skipped past. When the broker's first offset (low watermark) is the stored
offset itself, retention removed the message read last and nothing after it: the read starts
there without the check.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Generator, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from ingest.dead_letter import HINTS as DEAD_LETTER_HINTS
from ingest.kafka.contracts import DEFAULT_MAX_FUTURE_SKEW_S, EdgeCheck, Envelope
from ingest.kafka.helpers import KafkaCredentials, KafkaSourceError, SourceConsumer, TopicRecreated
from ingest.kafka.rows import LandedBatch, kafka_dead_letter

log = logging.getLogger(__name__)
POLL_S = 0.1  # one consume() call's wait; the read ends on end-of-partition events, not on a quiet poll
CONSUME_CHUNK = 1_000  # messages fetched per consume() call
LOST_OFFSET_CODES = {KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE}


@dataclass(frozen=True)
class ReadOptions:
    """How a topic is read: batch bounds, the bound of one read, timeouts, contracts and the event-time window.

    ``max_batches``: the read ends after this many batches although the partitions have more
    (None: only at the end of every partition). ``schema_dir``: the contracts' directory (None:
    the schemas shipped in ``ingest/kafka/schemas``).
    """

    timeout_s: float = 30.0
    max_batch_messages: int = 50_000
    max_batch_bytes: int = 32 * 1024 * 1024
    max_batch_seconds: float = 5.0
    max_message_bytes: int = 1024 * 1024
    earliest_event_time: datetime | None = None
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S
    optional: bool = False
    max_batches: int | None = None
    schema_dir: Path | None = None


def position_of(msg: Message) -> dict[str, Any]:
    """The stored position after ``msg``: next offset, its timestamp and the SHA-256 of its value."""
    _kind, ts_ms = msg.timestamp()
    return {
        "offset": int(msg.offset() or 0) + 1,
        "ts": ts_ms if ts_ms and ts_ms > 0 else None,
        "sha256": hashlib.sha256(msg.value() or b"").hexdigest(),
    }


def verify_position(topic: str, msg: Message, position: dict[str, Any]) -> None:
    """Raise TopicRecreated unless ``msg`` is the message ``position`` was taken from."""
    expected = int(position["offset"]) - 1
    partition = int(msg.partition() or 0)
    if msg.offset() != expected:
        detail = f"expected the last read message at offset {expected}, got {msg.offset()}"
        raise TopicRecreated(topic, partition, detail)
    seen = position_of(msg)
    if position.get("sha256") is not None and seen["sha256"] != position["sha256"]:
        raise TopicRecreated(topic, partition, f"the message at offset {expected} is not the one read before (hash)")
    if position.get("ts") is not None and seen["ts"] != position["ts"]:
        raise TopicRecreated(
            topic, partition, f"the message at offset {expected} has timestamp {seen['ts']}, not {position['ts']}"
        )


def migrate_state(state: MutableMapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``positions`` of the resource state; older states with bare ``offsets`` are checked by offset only."""
    positions: dict[str, dict[str, Any]] = state.setdefault("positions", {})
    for partition, offset in state.pop("offsets", {}).items():
        positions.setdefault(str(partition), {"offset": int(offset), "ts": None, "sha256": None})
    return positions


def _check_beyond_end(consumer: Any, topic: str, to_verify: dict[int, dict[str, Any]]) -> None:
    """Raise TopicRecreated for a partition whose last fetch shows it ends before the stored position.

    A broker answers a fetch beyond the end of the log with an error (then the error event
    below fires) or, like Tansu, with nothing; the high watermark of that fetch response,
    cached by the client, tells the two apart from a slow broker.
    """
    for partition, position in to_verify.items():
        expected = int(position["offset"]) - 1
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        if high is not None and 0 <= high <= expected:
            detail = f"it ends at offset {high}, before offset {expected}, the last one read"
            raise TopicRecreated(topic, partition, detail)


def read_topic(
    credentials: KafkaCredentials,
    stream: str,
    topic: str,
    table_hints: Any,
    state: MutableMapping[str, Any],
    options: ReadOptions,
) -> Iterator[Any]:
    """Arrow batches of the valid messages of ``topic`` after the stored positions, and lists of dead letters.

    Each batch is bounded by ``max_batch_messages``, ``max_batch_bytes`` and
    ``max_batch_seconds``; the positions in ``state`` move with each batch handed out. The read
    ends when every partition reports its end, or after ``max_batches`` batches; no message or
    end within ``timeout_s`` raises.
    """
    positions = migrate_state(state)
    source = SourceConsumer(credentials, options.timeout_s)
    try:
        partitions = source.partitions(topic, optional=options.optional)
        if partitions is None:
            state["caught_up"] = True
            return
        for partition in positions:
            if int(partition) not in partitions:
                raise TopicRecreated(topic, int(partition), f"the topic now has partitions {partitions} only")
        stored = {p: positions[str(p)] for p in partitions if str(p) in positions}
        to_verify = {p: pos for p, pos in stored.items() if not _starts_at_first_offset(source, topic, p, pos)}
        starts = [TopicPartition(topic, p, _start_offset(stored.get(p), p in to_verify)) for p in partitions]
        source.consumer.assign(starts)
        state["caught_up"] = yield from _read(
            source, stream, topic, table_hints, positions, to_verify, set(partitions), options
        )
    finally:
        source.close()


def _start_offset(position: dict[str, Any] | None, verify: bool) -> int:
    """Where the read of a partition starts: at the message to verify, at the stored offset, or at the beginning."""
    if position is None:
        return OFFSET_BEGINNING
    return int(position["offset"]) - 1 if verify else int(position["offset"])


def _starts_at_first_offset(source: SourceConsumer, topic: str, partition: int, position: dict[str, Any]) -> bool:
    """Whether the broker's first offset (low watermark) is the stored offset: the next message is its first one.

    Retention (or a deletion of records) then removed the message read last and nothing after
    it, so there is nothing to re-read and nothing was lost.
    """
    try:
        low, _high = source.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=source.timeout_s)
    except KafkaException as exc:
        raise source.unreachable(f"no watermarks of {topic} partition {partition}: {exc}") from exc
    if low is None or low != int(position["offset"]):
        return False
    log.info("kafka.position.at_first_offset", extra={"topic": topic, "partition": partition, "offset": low})
    return True


class Extract:
    """The landed rows and dead letters of the messages of one topic read since the last :meth:`reset`.

    :meth:`take` checks one ``consume()`` page against the stream's contracts: each message
    first through the compiled fast path (:meth:`EdgeCheck.envelope`), the ones it passes on
    through the full check, which lands them or gives their dead-letter reason. It also handles
    the page's events (end of partition, errors) and the messages stored positions point after.
    """

    def __init__(self, stream: str, topic: str, options: ReadOptions, ingested_at: datetime) -> None:
        self.stream, self.topic, self.options, self.ingested_at = stream, topic, options, ingested_at
        self.reset()

    def reset(self) -> None:
        self.batch = LandedBatch(self.topic, self.ingested_at)
        self.dead: list[dict[str, Any]] = []
        self.dead_bytes = 0
        self.last: dict[int, Message] = {}  # partition -> the last message taken

    @property
    def messages(self) -> int:
        return len(self.batch) + len(self.dead)

    @property
    def nbytes(self) -> int:
        return self.batch.nbytes + self.dead_bytes

    def take(self, messages: list[Message], to_verify: dict[int, dict[str, Any]], pending: set[int]) -> None:
        """Check and collect ``messages``; end-of-partition events discard their partition from ``pending``."""
        options, batch, last = self.options, self.batch, self.last
        now = datetime.now(UTC)
        gate = EdgeCheck(
            self.stream,
            now=now,
            earliest=options.earliest_event_time,
            max_future_skew_s=options.max_future_skew_s,
            max_bytes=options.max_message_bytes,
            schema_dir=options.schema_dir,
        )
        if to_verify or any([msg.error() is not None for msg in messages]):
            taken = [msg for msg in messages if not self._event(msg, to_verify, pending)]
        else:
            taken = messages
        values = [msg.value() or b"" for msg in taken]
        envelope_of = gate.envelope
        envelopes = [envelope_of(raw) for raw in values]
        if None in envelopes:
            for i, envelope in enumerate(envelopes):
                if envelope is None:
                    envelopes[i] = self._slow(gate, taken[i], values[i], now)
            good = [i for i, envelope in enumerate(envelopes) if envelope is not None]
            landed = [envelope for envelope in envelopes if envelope is not None]
            batch.extend([taken[i] for i in good], [values[i] for i in good], landed)
        else:
            batch.extend(taken, values, envelopes)  # type: ignore[arg-type]  # no None among them
        last.update({msg.partition(): msg for msg in taken})  # type: ignore[misc]

    def _event(self, msg: Message, to_verify: dict[int, dict[str, Any]], pending: set[int]) -> bool:
        """Whether ``msg`` is an event or the message a stored position points after (then handled here)."""
        if msg.error() is None and not (to_verify and msg.partition() in to_verify):
            return False
        _event_message(self.topic, msg, to_verify, pending)
        return True

    def _slow(self, gate: EdgeCheck, msg: Message, raw: bytes, now: datetime) -> Envelope | None:
        """The full check of a message the fast path passed on: its envelope, or None when it is dead-lettered."""
        event, problem = gate.check(raw)
        if event is not None:
            return event.event_id, event.event_type, event.event_ts.isoformat(), event.schema_version
        assert problem is not None
        partition, offset, ts_ms = int(msg.partition() or 0), int(msg.offset() or 0), msg.timestamp()[1]
        self.dead.append(
            kafka_dead_letter(self.topic, partition, offset, msg.key(), ts_ms, msg.headers(), raw, problem, now)
        )
        self.dead_bytes += len(raw)
        return None


def _event_message(topic: str, msg: Message, to_verify: dict[int, dict[str, Any]], pending: set[int]) -> None:
    """Handle an event (end of partition, an error) or the message a stored position points after."""
    partition = int(msg.partition() or 0)
    error = msg.error()
    if error is None:
        verify_position(topic, msg, to_verify.pop(partition))
        return
    code = error.code()
    if code == KafkaError._PARTITION_EOF:
        if partition in to_verify:
            expected = int(to_verify[partition]["offset"]) - 1
            raise TopicRecreated(topic, partition, f"it ends before offset {expected}, the last one read")
        pending.discard(partition)
        return
    if code in LOST_OFFSET_CODES:
        expected = int(to_verify.get(partition, {"offset": 1})["offset"]) - 1
        detail = f"offset {expected}, the last one read, is gone ({error.str()})"
        raise TopicRecreated(topic, partition, detail)
    raise KafkaSourceError(f"reading Kafka topic {topic} partition {partition} failed: {error.str()}")


def _read(
    source: SourceConsumer,
    stream: str,
    topic: str,
    table_hints: Any,
    positions: dict[str, dict[str, Any]],
    to_verify: dict[int, dict[str, Any]],
    pending: set[int],
    options: ReadOptions,
) -> Generator[Any, None, bool]:
    """The batches of :func:`read_topic`; returns whether every partition was read to its end."""
    consumer = source.consumer
    extract = Extract(stream, topic, options, datetime.now(UTC))
    batch_started = last_progress = time.monotonic()
    chunk = max(1, min(CONSUME_CHUNK, options.max_batch_messages))
    batches = 0

    def flush() -> Iterator[Any]:
        nonlocal batch_started, batches
        for partition, msg in extract.last.items():
            positions[str(partition)] = position_of(msg)
        batch, dead = extract.batch, extract.dead
        if len(batch) or dead:
            batches += 1
        if len(batch):
            yield dlt.mark.with_hints(batch.to_arrow(), table_hints, create_table_variant=True)
        if dead:
            yield dlt.mark.with_hints(dead, DEAD_LETTER_HINTS, create_table_variant=True)
        log.debug("kafka.batch", extra={"topic": topic, "rows": len(batch), "dead_letters": len(dead)})
        extract.reset()
        batch_started = time.monotonic()

    while pending:
        room = options.max_batch_messages - extract.messages
        messages = consumer.consume(num_messages=max(1, min(chunk, room)), timeout=POLL_S)
        now_mono = time.monotonic()
        if not messages:
            _check_beyond_end(consumer, topic, to_verify)
            if now_mono - last_progress > options.timeout_s:
                raise source.unreachable(f"no message or end-of-partition from {topic} partitions {sorted(pending)}")
            continue
        last_progress = now_mono
        extract.take(messages, to_verify, pending)
        if (
            extract.messages >= options.max_batch_messages
            or extract.nbytes >= options.max_batch_bytes
            or now_mono - batch_started >= options.max_batch_seconds
        ):
            yield from flush()
            if options.max_batches is not None and batches >= options.max_batches and pending:
                unfinished = sorted(pending)
                log.info("kafka.read.bounded", extra={"topic": topic, "batches": batches, "unfinished": unfinished})
                return False
    yield from flush()
    return True
