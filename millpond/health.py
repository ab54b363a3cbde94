"""Liveness for long-running stages: a heartbeat file per process, and the check that reads it.

The Kafka follower (``millpond ingest --follow``) beats after every cycle that loaded and after
every cycle it skipped because another stage held the pipeline lock. The container health check
and the Kubernetes probes run ``millpond health --heartbeat ingest-follow --max-age N``, which
fails when the last beat is older than N seconds, so a hung or crash-looping follower fails its
probe.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Heartbeat:
    """``<data_dir>/heartbeat/<name>.json``: when this process last made progress."""

    data_dir: Path
    name: str

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / "heartbeat" / f"{self.name}.json"

    def beat(self, **detail: Any) -> None:
        """Record progress now (written to a temp file and renamed: a reader never sees half a beat)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"at": datetime.now(UTC).isoformat(), "pid": os.getpid(), **detail}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, default=str)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self) -> dict[str, Any] | None:
        """The last beat, or None when there is none yet (or it cannot be parsed)."""
        try:
            payload: dict[str, Any] = json.loads(self.path.read_text())
            datetime.fromisoformat(payload["at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return payload

    def age_s(self, now: datetime | None = None) -> float | None:
        """Seconds since the last beat, or None when there is none."""
        payload = self.read()
        if payload is None:
            return None
        return ((now or datetime.now(UTC)) - datetime.fromisoformat(payload["at"])).total_seconds()


@dataclass
class HealthReport:
    """What ``millpond health`` found; ``ok`` is False when any problem was recorded."""

    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks, "problems": self.problems}


def check_health(data_dir: Path, heartbeat: str | None = None, max_age_s: float | None = None) -> HealthReport:
    """Check the data dir is writable and, when asked, that a heartbeat is younger than ``max_age_s``."""
    report = HealthReport()
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".health."):
            pass
        report.checks["data_dir_writable"] = True
    except OSError as exc:
        report.checks["data_dir_writable"] = False
        report.problems.append(f"data dir {data_dir} is not writable: {exc.strerror or exc}")
    if heartbeat is not None:
        beat = Heartbeat(data_dir, heartbeat)
        age = beat.age_s()
        report.checks["heartbeat"] = {"name": heartbeat, "age_s": None if age is None else round(age, 1)}
        if age is None:
            report.problems.append(f"no heartbeat {heartbeat!r} yet at {beat.path}")
        elif max_age_s is not None and age > max_age_s:
            report.problems.append(f"heartbeat {heartbeat!r} is {age:.0f}s old (more than {max_age_s:.0f}s)")
    return report
