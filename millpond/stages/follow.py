"""Follow mode (``millpond ingest --follow``): Kafka micro-batches until SIGTERM/SIGINT.

Each cycle is one bounded ingest of the Kafka topics: every topic's read ends after
``MILLPOND_FOLLOW_MAX_BATCHES`` batches (each bounded by ``MILLPOND_KAFKA_MAX_BATCH_*``), the
rest waits for the next cycle. A stop request is answered between cycles, so SIGTERM waits for
one micro-batch, never for the whole backlog.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from millpond import logs
from millpond.errors import MillpondError, PipelineBusy
from millpond.health import Heartbeat
from millpond.settings import Settings
from millpond.stages.ingest import locked_ingest

log = logs.get(__name__)
FOLLOW_HEARTBEAT = "ingest-follow"


class StopRequest:
    """Set by SIGTERM/SIGINT while installed: the follower finishes the batch it is in, then stops."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self, signum: int, _frame: FrameType | None = None) -> None:
        self.signal = signal.Signals(signum).name
        self._event.set()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking at once on a stop request."""
        self._event.wait(seconds)

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Handle SIGTERM and SIGINT with this request (main thread only; elsewhere, nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self.set) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def follow(
    settings: Settings,
    interval_s: float = 10.0,
    max_cycles: int | None = None,
    max_consecutive_failures: int = 5,
) -> int:
    """Keep loading new Kafka messages in micro-batches (the long-running ingester); returns the cycles run.

    Each cycle is one ingest of at most ``follow_max_batches`` batches per topic that loads and
    commits the positions with the load in dlt state, then to the consumer group. A cycle that
    stopped at that bound (a backlog) is followed at once by the next; after a cycle that read
    every partition to its end the follower waits ``interval_s``. SIGTERM or SIGINT lets the
    current cycle finish and commit, then the loop ends (the command exits 0); a wait between
    cycles is cut short.

    Each cycle that loads, or that finds another stage holding the pipeline lock (a long
    transform is no reason to restart the follower), beats the ``ingest-follow`` heartbeat
    that ``millpond health`` checks. A busy lock is never waited for: the cycle is skipped.
    Any other failure is logged and retried without a beat, and after
    ``max_consecutive_failures`` in a row the last error is raised, so the process exits
    non-zero and its supervisor (Kubernetes, compose) restarts it with back-off. A cycle killed
    midway is finished by the next one (see :func:`millpond.stages.ingest.run_ingest`).
    """
    heartbeat = Heartbeat(settings.data_dir, FOLLOW_HEARTBEAT)
    cycles = failures = 0
    with StopRequest().installed() as stop:
        while not stop and (max_cycles is None or cycles < max_cycles):
            cycles += 1
            backlog = False
            try:
                report = locked_ingest(
                    settings, 0.0, mongo=False, kafka=True, kafka_max_batches=settings.follow_max_batches
                )
            except PipelineBusy as exc:
                log.info("ingest.follow.busy", cycle=cycles, reason=str(exc))
                heartbeat.beat(cycle=cycles, busy=True)
            except MillpondError as exc:
                failures += 1
                log.error("ingest.follow.failed", cycle=cycles, failures=failures, error=str(exc))
                if failures >= max_consecutive_failures:
                    raise
            else:
                failures = 0
                backlog = report.kafka_caught_up is False
                heartbeat.beat(
                    cycle=cycles,
                    rows=sum(report.rows.values()),
                    dead_letters=report.dead_letters,
                    load_ids=report.load_ids,
                )
                log.info(
                    "ingest.follow.cycle",
                    cycle=cycles,
                    rows=report.rows,
                    dead_letters=report.dead_letters,
                    backlog=backlog,
                )
            if not backlog and not stop and (max_cycles is None or cycles < max_cycles):
                stop.wait(interval_s)
        if stop:
            log.info("ingest.follow.stopped", signal=stop.signal, cycles=cycles)
    return cycles
