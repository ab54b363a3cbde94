"""The volume benchmark: runs at a tiny size and reports ratios, peak RSS and the targets (timings are not asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.run import main
from bench.sizes import label, parse_size
from bench.targets import targets


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.parametrize(("text", "rows"), [("100k", 100_000), ("1M", 1_000_000), ("10m", 10_000_000), ("2500", 2500)])
def test_sizes_parse_and_label_round_trip(text: str, rows: int):
    assert parse_size(text) == rows
    assert parse_size(label(rows)) == rows


def _point(size: int, ingest_s: float, floor_s: float, rss: float, inc_s: float, gen_rss: float) -> dict[str, Any]:
    rows = size
    return {
        "size": size,
        "label": label(size),
        "landed_rows": rows,
        "floor_s": floor_s,
        "source": {"messages": size // 2},
        "stages": {
            "generate": {"peak_rss_mib": gen_rss, "work_s": 1.0},
            "ingest_full": {
                "work_s": ingest_s,
                "peak_rss_mib": rss,
                "ratio_to_floor": ingest_s / floor_s,
                "rows": rows,
            },
            "ingest_incremental": {
                "work_s": inc_s,
                "peak_rss_mib": rss,
                "fraction_of_full_time": inc_s / ingest_s,
                "fraction_of_full_rows": 0.01,
            },
        },
    }


def test_targets_say_met_and_not_met_from_the_numbers():
    met = targets([_point(100_000, 10, 5, 400, 2, 200), _point(1_000_000, 30, 10, 450, 1, 210)])
    assert {t["key"]: t["met"] for t in met} == {
        "ratio": True,
        "rss": True,
        "rss_flat": True,
        "incremental": True,
        "generator": True,
    }
    missed = targets([_point(100_000, 10, 5, 400, 2, 200), _point(1_000_000, 50, 10, 1500, 5, 900)])
    assert {t["key"]: t["met"] for t in missed} == {
        "ratio": False,
        "rss": False,
        "rss_flat": False,
        "incremental": False,
        "generator": False,
    }
    unmeasured = targets([_point(100_000, 10, 5, 400, 2, 200)])
    assert {t["key"]: t["met"] for t in unmeasured}["ratio"] is None  # no 1M point


@pytest.mark.bench_harness
def test_volume_runs_at_a_tiny_size_and_writes_ratios_rss_and_targets(tmp_path: Path):
    out = tmp_path / "benchmarks"
    assert main(["--only", "volume", "--sizes", "3k", "--repeat", "1", "--out", str(out)]) == 0

    volume = json.loads((out / "results.json").read_text())["volume"]
    (point,) = volume["points"]
    stages = point["stages"]
    for name in ("generate", "kafka_floor", "mongo_find_floor", "mongo_raw_floor"):
        assert "error" not in stages[name], stages[name]
        assert _positive(stages[name]["work_s"]) and _positive(stages[name]["peak_rss_mib"]), name
    assert stages["kafka_floor"]["rows"] == point["source"]["messages"] > 0
    assert stages["mongo_find_floor"]["rows"] == stages["mongo_raw_floor"]["rows"] == point["source"]["documents"] > 0
    assert _positive(point["floor_s"]) and _positive(point["raw_floor_s"])
    full = stages["ingest_full"]
    assert "error" not in full, full
    assert _positive(full["ratio_to_floor"]) and _positive(full["ratio_to_raw_floor"])
    assert point["completeness"]["complete"], point["completeness"]
    incremental = stages["ingest_incremental"]
    assert "error" not in incremental, incremental
    assert _positive(incremental["fraction_of_full_time"]) and incremental["rows"] > 0
    assert {t["key"] for t in volume["targets"]} >= {"ratio", "rss", "incremental", "generator"}

    for png in ("volume_time.png", "volume_rss.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "benchmarks.md").read_text()
    assert "## Ingest at volume" in page and "| Target (issue 7) | Result | Figures |" in page
    assert "![volume_rss](benchmarks/volume_rss.png)" in page


def test_children_read_and_write_bytecode_in_the_benchmarks_own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from bench.processes import run_child

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    cache = tmp_path / "pycache"
    measured = run_child("kafka_floor", {"bootstrap": "127.0.0.1:1", "topics": []}, tmp_path, Path.cwd(), pycache=cache)
    assert measured.result["messages"] == 0
    assert list(cache.rglob("bench/floors*.pyc"))  # the child compiled what it imported, into the cache
