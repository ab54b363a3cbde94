"""Structured logging: JSON lines when not on a terminal, readable console output on one."""

from __future__ import annotations

import logging
import sys

import structlog


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is emitted (test runners swap it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class _ToRootHandlers(logging.Handler):
    """dlt's handler: hands its records to the root logger's handlers, whatever format dlt sets.

    dlt gives its ``dlt`` logger a stderr handler of its own, with its own format and
    ``propagate`` off, each time a pipeline initializes its runtime; it reuses the logger's first
    handler when there is one and only sets that handler's formatter, which this one ignores.
    """

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def _keep_dlt_record(record: logging.LogRecord) -> bool:
    """False only for the warning dlt logs on every Kafka batch: a landed ``payload`` is JSON in the
    warehouse and a string in the batch's Arrow table, by design (DuckDB casts it as it loads)."""
    message = record.getMessage()
    return not (message.startswith("In resource: kafka_") and "several column hints were different" in message)


def configure(fmt: str = "auto", level: str = "INFO") -> None:
    """Route stdlib and structlog records through one renderer on stderr.

    A stdlib record (from a library, or ``logging`` with ``extra=``) gets the same fields as a
    structlog event: its ``extra`` keys, the bound context variables, level, logger, timestamp.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    foreign: list[structlog.types.Processor] = [*shared, structlog.stdlib.ExtraAdder()]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=foreign,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("sqlmesh", "dlt", "urllib3", "pymongo", "soda", "soda_core", "sqlglot", "faker", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.handlers[:] = [_ToRootHandlers()]
    dlt_logger.filters[:] = [_keep_dlt_record]
    dlt_logger.propagate = False  # as dlt sets it: its records reach the root handlers once, through ours


def get(name: str) -> structlog.stdlib.BoundLogger:
    """A named structured logger."""
    return structlog.stdlib.get_logger(name)
