"""The volume benchmark's part of the outputs: two plots and the markdown section with the targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# stage key -> (label in tables and plots, colour)
STAGES: dict[str, tuple[str, str]] = {
    "generate": ("generator (first step)", "#8c6bb1"),
    "kafka_floor": ("floor: bare consume() loop", "#b0b7bf"),
    "mongo_find_floor": ("floor: pymongo find()", "#7a8590"),
    "mongo_raw_floor": ("floor: raw BSON batches", "#4d5660"),
    "ingest_kafka": ("ingest, Kafka only", "#6baed6"),
    "ingest_mongo": ("ingest, MongoDB only", "#9ecae1"),
    "ingest_full": ("ingest, full load", "#1f6f8b"),
    "generate_increment": ("generator (+1 day)", "#bcbddc"),
    "ingest_incremental": ("ingest, incremental", "#e6550d"),
}
GIB_MIB = 1024.0


def _measured(volume: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in volume["points"] if "skipped" not in p]


def _ok(point: dict[str, Any], stage: str) -> dict[str, Any] | None:
    s = point["stages"].get(stage)
    return s if s and "error" not in s else None


def _finish(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_time(volume: dict[str, Any], path: Path) -> Path:
    """Seconds of the full load, the incremental run and the floors per size (log-log)."""
    points = _measured(volume)
    fig, ax = plt.subplots(figsize=(8, 5))
    series: list[tuple[str, str, list[tuple[float, float]]]] = []
    for key in ("ingest_full", "ingest_incremental", "generate"):
        xy = [(p["size"], s["work_s"]) for p in points if (s := _ok(p, key))]
        series.append((STAGES[key][0], STAGES[key][1], xy))
    floor = [(p["size"], p["floor_s"]) for p in points if "floor_s" in p]
    raw = [(p["size"], p["raw_floor_s"]) for p in points if "raw_floor_s" in p]
    series.append(("raw floor: consume() + find()", "#7a8590", floor))
    series.append(("raw floor: consume() + raw BSON", "#b0b7bf", raw))
    for name, color, xy in series:
        if xy:
            ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", color=color, label=name)
    four = [(x, 4 * y) for x, y in floor]
    if four:
        ax.plot(
            [x for x, _ in four], [y for _, y in four], linestyle="--", color="black", linewidth=1, label="4x floor"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = [p["size"] for p in points]
    ax.set_xticks(sizes, [p["label"] for p in points])
    ax.minorticks_off()
    ax.set_xlabel("nominal landed rows")
    ax.set_ylabel("seconds of work (log scale)")
    ax.set_title("Ingest time against the raw read floor, same run")
    ax.legend(loc="upper left", fontsize=8)
    return _finish(fig, path)


def plot_rss(volume: dict[str, Any], path: Path) -> Path:
    """Peak RSS of each stage's process per size, with the 1 GiB target."""
    points = _measured(volume)
    keys = [k for k in STAGES if any(_ok(p, k) for p in points)]
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / max(1, len(keys))
    for i, key in enumerate(keys):
        xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(points))]
        ys = [(_ok(p, key) or {}).get("peak_rss_mib", 0) for p in points]
        ax.bar(xs, ys, width, color=STAGES[key][1], label=STAGES[key][0])
    ax.axhline(GIB_MIB, color="black", linestyle="--", linewidth=1, label="1 GiB target (ingest)")
    ax.set_xticks(range(len(points)), [f"{p['label']}\n{p.get('landed_rows', 0):,} landed" for p in points])
    tallest = max([GIB_MIB, *((_ok(p, k) or {}).get("peak_rss_mib", 0) for p in points for k in keys)])
    ax.set_ylim(0, tallest * 1.45)  # room for the legend above the bars and the target line
    ax.set_ylabel("peak RSS of the stage's process (MiB)")
    ax.set_title("Peak memory per stage and size (each stage its own process)")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    return _finish(fig, path)


def write_plots(volume: dict[str, Any] | None, out: Path) -> list[Path]:
    if not volume or not _measured(volume):
        return []
    return [plot_time(volume, out / "volume_time.png"), plot_rss(volume, out / "volume_rss.png")]


def _met(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[met]


def _fmt_s(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def stage_rows(point: dict[str, Any]) -> list[str]:
    rows = []
    floor = point.get("floor_s")
    for key, (name, _) in STAGES.items():
        stage = point["stages"].get(key)
        if stage is None:
            continue
        if "error" in stage:
            rows.append(f"| {point['label']} | {name} | failed: {stage['error'][:160]} | | | | |")
            continue
        ratio = stage.get("ratio_to_floor")
        ratio_text = f"**{ratio:.2f}x**" if ratio is not None else ""
        if key == "ingest_full" and ratio is not None:
            ratio_text += f" of {floor:.2f} s"
            if "ratio_to_raw_floor" in stage:
                ratio_text += f" ({stage['ratio_to_raw_floor']:.2f}x raw)"
        if key == "ingest_incremental" and "fraction_of_full_time" in stage:
            ratio_text = f"{stage['fraction_of_full_time']:.1%} of the full load's time"
        rows.append(
            f"| {point['label']} | {name} | {stage['rows']:,} | {_fmt_s(stage['work_s'])} | "
            f"{stage['rows_per_s']:,.0f} | {ratio_text} | {stage['peak_rss_mib']:,.0f} |"
        )
    return rows


def markdown(results: dict[str, Any], rel: Path) -> str:
    """The "Ingest at volume" section of ``docs/benchmarks.md``."""
    volume = results.get("volume")
    if not volume:
        return "## Ingest at volume\n\n_not run_ (`python -m bench.run --only volume --sizes 100k,1m,10m`)\n"
    targets = ["| Target (issue 7) | Result | Figures |", "|---|---|---|"]
    targets += [f"| {t['target']} | {_met(t['met'])} | {t['detail']} |" for t in volume["targets"]]
    table = [
        "| Size | Stage | Rows | Seconds | Rows/s | Ratio | Peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    notes = []
    for p in volume["points"]:
        if "skipped" in p:
            table.append(f"| {p['label']} | _skipped_: {p['skipped']} | | | | | |")
            continue
        table += stage_rows(p)
        src = p["source"]
        complete = p.get("completeness")
        accounted = ""
        if complete:
            accounted = (
                " Every record accounted for (landed or dead-lettered)."
                if complete["complete"]
                else f" **Counts differ**: Kafka {complete['kafka_accounted']:,}/{complete['kafka_expected']:,},"
                f" MongoDB {complete['mongo_accounted']:,}/{complete['mongo_expected']:,} accounted/expected."
            )
        landed = (
            f"landed as {p['landed_rows']:,} rows"
            if p.get("landed_rows")
            else "not landed (the full load failed, below)"
        )
        broker = (p.get("servers_at_end") or {}).get("broker", {})
        notes.append(
            f"- **{p['label']}** (generator scale {p['scale']}): {src['messages']:,} Kafka messages and "
            f"{src['documents']:,} MongoDB documents ({sum(src['children'].values()):,} nested list items) {landed}.{accounted} Broker RSS at the end {broker.get('rss_mib') or 0:,.0f} MiB."
        )
        notes += [f"  - {e}" for e in p["errors"]]
    images = [f"![{name}]({rel / f'{name}.png'})" for name in ("volume_time", "volume_rss")]
    base = volume["base"]
    sizes = ",".join(p["label"].lower() for p in volume["points"])
    note = f"\n**Note on this run:** {results['note']}\n" if results.get("note") else ""
    return f"""## Ingest at volume

Recorded with `{results["command"]}` (sizes {sizes}; the default `make bench` runs 100k only).
Each size runs on fresh services; every stage is its own process.

{chr(10).join(targets)}

{chr(10).join(table)}

Rows: landed rows (every `bronze` table dlt wrote, child tables and dead letters included) for the
ingest stages, source records (Kafka messages + MongoDB documents) for the floors and generators.
Ratio: the stage's time ÷ the raw read floor of the same size and run, floor = bare `consume()`
loop + pymongo `find()`; "raw" uses the raw-BSON read instead of `find()`.

{chr(10).join(notes)}
{note}
{chr(10).join(images)}

### How the volume benchmark measures

- **Data**: Millpond's generator with {base["customers"]} customers, {base["products"]} products,
  {base["orders_per_day"]} orders and {base["sessions_per_day"]} sessions per day over {base["days"]} days
  at scale 1, every volume knob multiplied by the size's scale (default fault rates: duplicate and
  malformed Kafka records included). A calibration run at scale {volume["calibration"]["scale"]} gives
  the source records per unit of scale; after each size the estimate is corrected by what it really landed.
  Sizes are nominal; the tables give the real counts.
- **Stages**, each a `python -m bench.child` process started through GNU `time`, so its peak RSS
  (`ru_maxrss` of exactly that process) is its own: the generator's first step; the floors
  ({volume["repeat_floors"]} run(s) each, median); a full `run_ingest` (MongoDB + Kafka) into a fresh
  warehouse; the generator's next day (about 1% more data, plus the updates of still-open orders); an
  incremental `run_ingest` on the same pipeline.
- **Floors**: one confluent-kafka consumer assigned to every partition of the three topics, a
  `consume(num_messages=1000, timeout=0.1)` loop until every partition reports its end
  (`fetch.wait.max.ms=10`, as the source), values touched but not parsed; pymongo `find()` of
  customers, products and orders decoded into dicts (batch 2,000); `find_raw_batches()` counted by
  their length prefixes without decoding. They write nothing and keep no state.
- **Seconds** are the work inside the process after its imports (`time.perf_counter()`); interpreter
  start-up and imports (1 to 3 s, more on a loaded machine) are in `wall_s` in `results.json`. The
  stages run with compiled bytecode, as the runner image does (`UV_COMPILE_BYTECODE=1`): a bytecode
  cache of the run's own (`PYTHONPYCACHEPREFIX`), filled by an untimed warm-up ingest of the
  calibration data, so modules a stage imports lazily (dlt's writers import pandas) are not compiled
  from source inside its timed work.
- Broker (Tansu, log in memory), mongod and the stage share the machine's {results["machine"]["nproc"]}
  cores; `results.json` records the 1-minute load average before and after each stage. Other work on
  the machine during a run slows the stage and the floor alike only if it overlaps both.
"""
