"""What the numbers were measured on: hardware and the versions of the parts being timed."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from millpond.settings import Settings

PACKAGES = ("duckdb", "dlt", "pyarrow", "pymongo", "confluent-kafka", "sqlmesh")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib(field: str = "MemTotal") -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _tmp_fs() -> str:
    """Free space of the temp dir, where the benchmark's pipelines and warehouses live."""
    usage = shutil.disk_usage(tempfile.gettempdir())
    return f"{tempfile.gettempdir()}: {usage.free / 2**30:.0f} GiB free of {usage.total / 2**30:.0f} GiB"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _binary_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def describe(settings: Settings) -> dict[str, Any]:
    """nproc, memory, CPU, OS, Python and package versions, versions of ``settings``' mongod and broker."""
    from millpond.services.kafka import tansu_binary
    from millpond.services.mongo import mongod_binary

    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "mem_available_gib": _memory_gib("MemAvailable"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "tmp_fs": _tmp_fs(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "mongod": _binary_version([str(mongod_binary(settings.mongod_bin)), "--version"]),
        "kafka_broker": _binary_version([str(tansu_binary(settings.tansu_bin)), "--version"]),
    }
