"""The one small interface every serving target implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass
class PublishResult:
    """What was published, where, and when."""

    target: str
    tables: dict[str, int] = field(default_factory=dict)
    published_at: datetime | None = None


class ServingTarget(Protocol):
    """Copies ``schema.table`` relations from the warehouse; readers see all or nothing."""

    def publish(self, warehouse: Path, relations: list[str], run_id: str) -> PublishResult: ...

    def published_tables(self) -> dict[str, int]: ...
