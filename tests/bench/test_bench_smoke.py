"""The benchmark suite runs end to end at a tiny scale and writes well-formed output (timings are not asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.run import main


def _positive(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_bench_runs_and_writes_results_plots_and_page(tmp_path: Path):
    out = tmp_path / "benchmarks"
    argv = ["--scale", "0.05", "--repeat", "1", "--warmup", "0", "--factors", "1,2", "--publish-orders", "2000"]
    argv += ["--only", "kafka", "mongo", "publish", "publish_postgres", "scaling"]  # volume: test_bench_volume.py
    assert main([*argv, "--out", str(out)]) == 0

    results = json.loads((out / "results.json").read_text())
    names = [c["name"] for c in results["comparisons"]]
    assert names == [
        "kafka_ingest",
        "mongo_ingest",
        "publish_demo",
        "publish_large",
        "publish_postgres_demo",
        "publish_postgres_large",
    ]
    for c in results["comparisons"]:
        assert c["rows"] > 0
        assert len(c["candidate_s"]) == len(c["baseline_s"]) == 1
        for key in ("ratio", "candidate_median_s", "baseline_median_s", "candidate_rows_per_s", "baseline_rows_per_s"):
            assert _positive(c[key]), (c["name"], key, c[key])
    assert _positive(results["comparisons"][0]["extra"]["ratio_vs_default_fetch_wait_baseline"])
    assert _positive(results["comparisons"][3]["extra"]["ratio_vs_fresh_file_baseline"])
    assert _positive(results["comparisons"][5]["extra"]["ratio_vs_python_rows"])

    points = results["scaling"]["points"]
    assert [p["factor"] for p in points] == [1, 2]
    assert points[0]["ratio"] == 1.0 and _positive(points[1]["ratio"])
    assert points[1]["rows"] > points[0]["rows"]
    assert results["machine"]["nproc"] >= 1 and results["machine"]["packages"]["dlt"]

    for png in ("ratios.png", "throughput.png", "scaling.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "benchmarks.md").read_text()
    assert "| Kafka → DuckDB |" in page and "![scaling](benchmarks/scaling.png)" in page
