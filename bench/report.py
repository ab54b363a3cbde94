"""Outputs of a benchmark run: ``results.json``, PNG plots and the markdown page that embeds them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import report_volume

CANDIDATE_COLOR = "#1f6f8b"
BASELINE_COLOR = "#b0b7bf"


def write_json(results: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path


def _finish(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_ratios(comparisons: list[dict[str, Any]], path: Path) -> Path:
    """Horizontal bars: how many times the baseline's time each stage takes."""
    labels = [c["title"] for c in comparisons]
    ratios = [c["ratio"] for c in comparisons]
    fig, ax = plt.subplots(figsize=(10, 0.7 * len(labels) + 1.6))
    bars = ax.barh(labels, ratios, color=CANDIDATE_COLOR)
    ax.axvline(1.0, color="black", linewidth=1, linestyle="--", label="baseline = 1x")
    for bar, ratio in zip(bars, ratios, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f"  {ratio:.2f}x", va="center")
    ax.set_xlim(0, max([*ratios, 1.0]) * 1.25)
    ax.invert_yaxis()
    ax.set_xlabel("time relative to the baseline measured in the same run (lower is better)")
    ax.set_title("Millpond stage time ÷ minimal baseline (median of repeats)")
    ax.legend(loc="lower right")
    return _finish(fig, path)


def plot_throughput(comparisons: list[dict[str, Any]], path: Path) -> Path:
    """Grouped horizontal bars of rows/s, Millpond vs baseline, on a log axis."""
    labels = [c["title"] for c in comparisons]
    ys = range(len(labels))
    height = 0.38
    fig, ax = plt.subplots(figsize=(8, 0.9 * len(labels) + 1.6))
    cand = ax.barh(
        [y - height / 2 for y in ys],
        [c["candidate_rows_per_s"] for c in comparisons],
        height,
        color=CANDIDATE_COLOR,
        label="Millpond",
    )
    base = ax.barh(
        [y + height / 2 for y in ys],
        [c["baseline_rows_per_s"] for c in comparisons],
        height,
        color=BASELINE_COLOR,
        label="baseline",
    )
    for bars in (cand, base):
        for bar in bars:
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {bar.get_width():,.0f}", va="center")
    ax.set_xscale("log")
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    left, right = ax.get_xlim()
    ax.set_xlim(left, right * 8)  # room for the labels
    ax.set_xlabel("rows per second (log scale, higher is better)")
    ax.set_title("Throughput, median of repeats")
    ax.legend(loc="upper right")
    return _finish(fig, path)


def plot_scaling(scaling: dict[str, Any], path: Path) -> Path:
    """Median ingest time per data-volume factor, every repeat as a dot, and the linear ideal."""
    points = scaling["points"]
    factors = [p["factor"] for p in points]
    base = points[0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ideal = [base["median_s"] * f / base["factor"] for f in factors]
    ax.plot(factors, ideal, linestyle="--", color="black", linewidth=1, label="linear from the 1x median")
    ax.plot(factors, [p["median_s"] for p in points], marker="o", color=CANDIDATE_COLOR, label="median", zorder=4)
    for p in points:
        ax.scatter([p["factor"]] * len(p["seconds"]), p["seconds"], color="#7a8590", zorder=3, s=14)
        ax.annotate(
            f"{p['ratio']:.2f}x\n{p['rows']:,} rows",
            (p["factor"], p["median_s"]),
            textcoords="offset points",
            xytext=(8, -24),
            fontsize=8,
        )
    ax.set_xticks(factors, [f"{f}x" for f in factors])
    ax.set_xlim(0, max(factors) * 1.2)
    ax.set_ylim(0, max([*ideal, *(s for p in points for s in p["seconds"])]) * 1.15)
    ax.set_xlabel("data volume (factor of the base scale)")
    ax.set_ylabel("seconds (full load, MongoDB + Kafka)")
    ax.set_title("Ingestion scaling (grey dots: individual repeats)")
    ax.legend(loc="upper left")
    return _finish(fig, path)


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = report_volume.write_plots(results.get("volume"), out)
    if results["comparisons"]:
        paths.append(plot_ratios(results["comparisons"], out / "ratios.png"))
        paths.append(plot_throughput(results["comparisons"], out / "throughput.png"))
    if results.get("scaling"):
        paths.append(plot_scaling(results["scaling"], out / "scaling.png"))
    return paths


def observations(results: dict[str, Any]) -> list[str]:
    """One bullet per benchmark, including the decompositions the extra baselines allow."""
    lines = []
    for c in results["comparisons"]:
        line = (
            f"- **{c['title']}** takes {c['ratio']:.2f}x the baseline's time "
            f"({c['candidate_median_s']:.3f} s vs {c['baseline_median_s']:.3f} s for {c['rows']:,} rows)."
        )
        extra = c.get("extra") or {}
        if "baseline_default_fetch_wait_median_s" in extra:
            wait = extra["baseline_default_fetch_wait_median_s"] - c["baseline_median_s"]
            whose = "sets its own value" if extra.get("millpond_source_sets_fetch_wait") else "keeps that default"
            line += (
                f" The same bare consumer with librdkafka's default `fetch.wait.max.ms` (500 ms; Millpond's source"
                f" {whose}) takes {extra['baseline_default_fetch_wait_median_s']:.3f} s, i.e. {wait:.2f} s of"
                " waiting for the broker to answer the last fetch of each partition. Against that baseline"
                f" the ratio is {extra['ratio_vs_default_fetch_wait_baseline']:.2f}x."
            )
        if "baseline_fresh_file_median_s" in extra:
            line += (
                f" Copying into a brand-new file without manifest, fsync or rename takes"
                f" {extra['baseline_fresh_file_median_s']:.3f} s ({extra['ratio_vs_fresh_file_baseline']:.2f}x)."
            )
        if "python_rows_median_s" in extra:
            line += (
                f" Feeding COPY one Python row at a time instead of DuckDB's CSV takes"
                f" {extra['python_rows_median_s']:.3f} s (Millpond's publish is {extra['ratio_vs_python_rows']:.2f}x"
                " of that)."
            )
        lines.append(line)
    scaling = results.get("scaling")
    if scaling:
        last = scaling["points"][-1]
        line = (
            f"- **Scaling**: {last['factor']}x the data takes {last['ratio']:.2f}x the time of 1x "
            f"(efficiency {last['efficiency']:.2f}; 1.00 = perfectly linear, above 1 = fixed costs being amortised)."
        )
        if scaling.get("fixed_cost_s") is not None:
            line += (
                f" A straight-line fit gives about {scaling['fixed_cost_s']:.2f} s of fixed cost per run plus"
                f" a marginal throughput of {scaling['marginal_rows_per_s']:,.0f} rows/s."
            )
        lines.append(line)
    return lines


def render_markdown(results: dict[str, Any], out: Path, md_path: Path, plots: list[Path]) -> str:
    """The ``docs/benchmarks.md`` page: figures, machine, method and plots."""
    m = results["machine"]
    cfg = results["config"]
    rel = out.relative_to(md_path.parent) if out.is_relative_to(md_path.parent) else out
    rows = [
        "| Benchmark | Rows | Millpond median (s) | Millpond rows/s | Baseline median (s) | Baseline rows/s | Ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in results["comparisons"]:
        rows.append(
            f"| {c['title']} | {c['rows']:,} | {c['candidate_median_s']:.3f} | {c['candidate_rows_per_s']:,.0f} "
            f"| {c['baseline_median_s']:.3f} | {c['baseline_rows_per_s']:,.0f} | **{c['ratio']:.2f}x** |"
        )
    what = ["| Benchmark | Millpond (candidate) | Baseline | Rows counted |", "|---|---|---|---|"]
    what += [
        f"| {c['title']} | {c['candidate']} | {c['baseline']} | {c['notes'].removeprefix('rows = ')} |"
        for c in results["comparisons"]
    ]
    base = cfg["base"]
    volume = (
        f"{base['customers']} customers, {base['products']} products, {base['orders_per_day']} orders and "
        f"{base['sessions_per_day']} browsing sessions per day"
    )
    factors = ", ".join(f"{f}x" for f in cfg["factors"])
    scaling_rows: list[str] = []
    if results.get("scaling"):
        scaling_rows = [
            "| Factor | Rows (messages + documents) | Median (s) | Rows/s | Ratio vs 1x | Efficiency |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        scaling_rows += [
            f"| {p['factor']}x | {p['rows']:,} | {p['median_s']:.3f} | {p['rows_per_s']:,.0f} "
            f"| **{p['ratio']:.2f}x** | {p['efficiency']:.2f} |"
            for p in results["scaling"]["points"]
        ]
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    images = [f"![{p.stem}]({rel / p.name})" for p in plots if not p.stem.startswith("volume_")]
    small_missing = f"_failed: {results['small_error']}_" if results.get("small_error") else "_not run_"
    small = (
        f"scale {cfg['scale']}: {cfg['messages']:,} Kafka messages, {cfg['documents']:,} MongoDB documents"
        if cfg.get("messages") is not None
        else "not run"
    )
    text = f"""# Benchmarks

<!-- Generated by `make bench` (python -m bench.run); edit bench/report.py, not this file. -->

Every figure is a **ratio against a baseline measured in the same run on the same machine**, so it
says what Millpond's safety and bookkeeping cost, not how fast this particular box is. Absolute
seconds are shown for context only; they move with the hardware, ratios much less.

Last run: {results["generated_at"]} — `{results["command"]}`
({cfg["repeat"]} timed repeats after {cfg["warmup"]} warm-up, median reported; wall time {results.get("wall_s", "?")} s).

The transform stage's costs (one more day after 30 and 365 days of history; a full build against a
one-pass query) are on their own page, [benchmarks/transform.md](benchmarks/transform.md), written by
`python -m bench.transform_cost`, which `make bench` runs after this page.

The Kafka source's extract alone (contract check and Arrow batches per page, against a bare
`json.loads` loop) is on [benchmarks/kafka_extract.md](benchmarks/kafka_extract.md), written by hand
from `python -m bench.kafka_extract`.

{report_volume.markdown(results, rel)}
## Small-scale ratios ({small})

{chr(10).join(rows) if results["comparisons"] else small_missing}

Ratio = Millpond median time ÷ baseline median time (1.00x = as fast as the minimal baseline).

{chr(10).join(observations(results))}

### Scaling

{chr(10).join(scaling_rows) if scaling_rows else "_not run_"}

Efficiency = (data factor) ÷ (time ratio): 1.00 is perfectly linear; above 1 means fixed per-run
costs (pipeline set-up, consumer start, commit) are being amortised over more rows.

## Plots (small-scale ratios)

{chr(10).join(images)}

## What is compared (small-scale ratios)

{chr(10).join(what)}

## Method (small-scale ratios)

- `python -m bench.run` starts a genuine `mongod` replica set and Kafka-protocol broker (Tansu,
  in-memory log) on free ports in a temp dir via `millpond.services`, and stops them at the end.
- Data comes from Millpond's own generator (`millpond.generator.generate`, seed {cfg["seed"]},
  {cfg["days"]} days, ending {cfg["end_date"]}) at the chosen `--scale`: {volume} at scale 1,
  every count multiplied by the scale ({small}). It includes the generator's injected faults (duplicate and
  malformed Kafka records), which Millpond has to validate and dead-letter.
- Each timed iteration is a **full load into a fresh warehouse** (new DuckDB file and new dlt
  pipeline directory), so Millpond reads everything from offset 0 / the start of the cursor, like
  the baseline does. Candidate and baseline alternate which runs first in each repeat, after
  {cfg["warmup"]} untimed warm-up round(s) that pay the one-off costs (imports, page cache).
- Both sides assert they loaded the expected number of rows, so a broken side cannot look fast.
- The baselines are deliberately the *minimum possible* work: the Kafka baseline stores raw message
  values without parsing them, and the MongoDB baseline keeps nested lists as `LIST` columns instead
  of child tables. Neither keeps state, so neither can run incrementally or resume after a crash.
- Publish copies synthetic gold tables with the contract's columns and types (no SQLMesh run
  needed: the copy does not care how rows were computed) at two sizes: the order count the
  generator produced at this scale (`demo`) and `--publish-orders` (`large`). The serving file
  already holds the previous version, as in steady state. The PostgreSQL publish runs the same
  two sizes against a private PostgreSQL 15 cluster (`millpond.services.PostgresCluster`).
- Scaling runs the complete `run_ingest` (MongoDB + Kafka) on {factors} the data, interleaving
  the factors in each repeat.
- Timings use `time.perf_counter()`; nothing is timed inside the test suite (the smoke test in
  `tests/bench` only checks that the suite runs and writes well-formed output).

## Caveats

- Small volumes on purpose (the suite must finish in minutes on 2 cores). Ratios depend on the
  volume, because the two sides differ in fixed cost per run *and* in cost per row: compare ratios
  only between runs at the same `--scale`. The scaling fit separates Millpond's fixed cost from its
  marginal throughput.
- The broker is Tansu with an in-memory log, not Apache Kafka; `mongod` runs with a 0.25 GB
  cache. Broker, database and pipeline share the same 2 cores.
- The baselines do strictly less work than Millpond (no parsing, validation, dead letters,
  nested-table unpacking, merge keys, state or crash recovery), so ratios above 1 are the price
  of those features, not waste; they are there to show where the time goes and to catch regressions.

## Machine

| | |
|---|---|
| CPU | {m["cpu"]}, {m["nproc"]} cores (nproc) |
| Memory | {m["memory_gib"]} GiB ({m.get("mem_available_gib", "?")} GiB available at the start) |
| Load average (1 min) at the start | {m.get("load_avg_1m", "?")} |
| Disk of the temp dir | {m.get("tmp_fs", "?")} |
| OS | {m["os"]} |
| Python | {m["python"]} |
| Packages | {pkgs} |
| MongoDB | {m["mongod"]} |
| Kafka broker | {m["kafka_broker"]} |

The raw numbers (every repeat) are in [`{rel / "results.json"}`]({rel / "results.json"}).
Reproduce with `make bench` (volume at 100k only), the recorded volume figures with the command
above, or `python -m bench.run --only volume --sizes 100k,1m,10m`.
"""
    md_path.write_text(text)
    return text
