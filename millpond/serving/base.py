"""The one small interface every serving target implements."""

from __future__ import annotations

from collections.abc import Mapping
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
    gold_version: str | None = None


class ServingTarget(Protocol):
    """Copies ``schema.table`` relations from the warehouse; readers see all or nothing.

    ``sources`` maps a published relation to the warehouse relation it is copied from when the two
    names differ (default: the same name); ``gold_version`` goes into the target's manifest.
    """

    def publish(
        self,
        warehouse: Path,
        relations: list[str],
        run_id: str,
        gold_version: str | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> PublishResult: ...

    def published_tables(self) -> dict[str, int]: ...
