"""Entry point: ``python -m bench.run [--scale S] [--repeat N] [--sizes 100k,1m,10m] [--out DIR]`` (``make bench``).

Starts real services, generates data, runs the benchmarks, then writes ``DIR/results.json``,
``DIR/*.png`` and the markdown page ``DIR.md`` beside the directory (``docs/benchmarks.md``).
The volume benchmark (:mod:`bench.volume`) starts its own services for each size.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from millpond import logs
from millpond import settings as settings_mod
from millpond.envutil import scoped_env
from millpond.settings import Settings

BENCHMARKS = ("kafka", "mongo", "publish", "publish_postgres", "scaling", "volume")
DEFAULT_SIZES = "100k"
log = logs.get("bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="data volume multiplier (default 1.0, ~2 min)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats per measurement; the median is kept")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing (default 1)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"), help="output dir for JSON and PNGs")
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="run a subset of the benchmarks"
    )
    parser.add_argument(
        "--factors", type=lambda s: [int(f) for f in s.split(",")], default=[1, 2, 4], help="scaling factors (1,2,4)"
    )
    parser.add_argument(
        "--publish-orders", type=int, default=None, help="orders in the large publish case (default 500000 x scale)"
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"landed rows per volume run, comma-separated, e.g. 100k,1m,10m (default {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--per-source", action="store_true", help="volume: also ingest each source alone (its own ratio to its floor)"
    )
    parser.add_argument(
        "--note", default=None, help="a remark printed with the volume figures (kept in results.json, and re-rendered)"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="re-render plots and page from OUT/results.json, run nothing"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.scale <= 0 or args.warmup < 0:
        parser.error("--repeat must be >= 1, --scale > 0 and --warmup >= 0")
    try:
        from bench.sizes import parse_size

        sizes = sorted({parse_size(x) for x in args.sizes.split(",") if x.strip()})
    except ValueError:
        sizes = []
    if not sizes or sizes[0] <= 0:
        parser.error(f"--sizes: not a list of positive sizes: {args.sizes!r}")
    args.sizes = sizes
    if args.publish_orders is None:
        args.publish_orders = max(1000, round(500_000 * args.scale))
    return args


@contextmanager
def _quiet_logs(log_format: str) -> Iterator[None]:
    """Progress from ``bench`` only; restores the logger levels afterwards (the smoke test runs in-process)."""
    logs.configure("console" if log_format == "auto" else log_format, "WARNING")
    quiet = ("ingest", "millpond.stages.ingest")  # one dead-letter warning per run is expected here
    levels = {name: logging.getLogger(name).level for name in ("bench", *quiet)}
    logging.getLogger("bench").setLevel(logging.INFO)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_benchmarks(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Start the services (``settings``' binaries), generate the data, run the selected benchmarks; the results."""
    from bench.harness import BASE, END_DATE

    comparisons: list[dict[str, Any]] = []
    scaling_result: dict[str, Any] | None = None
    volume_result: dict[str, Any] | None = None
    ds = None
    small_error: str | None = None
    if "volume" in args.only:
        from bench import volume

        partial = args.out.resolve() / "results.partial.json"

        def progress(sofar: dict[str, Any]) -> None:  # what survives a crash of a later, larger size
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(sofar, indent=2) + "\n")

        with tempfile.TemporaryDirectory(prefix="millpond-bench-volume-") as root:
            volume_result = volume.run(
                settings, args.sizes, args.repeat, Path(root), per_source=args.per_source, progress=progress
            )
        partial.unlink(missing_ok=True)
        log.info("bench.done", benchmark="volume", targets={t["key"]: t["met"] for t in volume_result["targets"]})
    if set(args.only) - {"volume"}:
        try:
            ds, comparisons, scaling_result = _small_benchmarks(args, settings)
        except Exception as exc:  # the volume figures above are kept; the page names the failure
            small_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.error("bench.small.failed", error=small_error)
    return {
        "config": {
            "scale": args.scale,
            "repeat": args.repeat,
            "warmup": args.warmup,
            "factors": args.factors,
            "publish_orders": args.publish_orders,
            "sizes": args.sizes,
            "seed": BASE.seed,
            "days": BASE.days,
            "end_date": END_DATE.isoformat(),
            "base": {k: asdict(BASE)[k] for k in ("customers", "products", "orders_per_day", "sessions_per_day")},
            "messages": ds.messages if ds else None,
            "documents": ds.documents if ds else None,
        },
        "comparisons": comparisons,
        "scaling": scaling_result,
        "small_error": small_error,
        "volume": volume_result,
    }


def _small_benchmarks(
    args: argparse.Namespace, settings: Settings
) -> tuple[Any, list[dict[str, Any]], dict[str, Any] | None]:
    """The in-process ratio benchmarks on one shared pair of services at ``--scale``."""
    from bench import kafka_ingest, mongo_ingest, publish, publish_postgres, scaling
    from bench.harness import make_dataset, postgres_cluster, services

    comparisons: list[dict[str, Any]] = []
    scaling_result: dict[str, Any] | None = None
    with services(settings) as svc:
        log.info("bench.services.up", mongo=svc.mongo.uri, kafka=svc.kafka.uri)
        ds = make_dataset(svc, args.scale, "main")
        log.info("bench.data.generated", messages=ds.messages, documents=ds.documents, orders=ds.orders)
        if "kafka" in args.only:
            comparisons.append(kafka_ingest.run(ds, args.repeat, args.warmup).as_dict())
            log.info("bench.done", benchmark="kafka", ratio=comparisons[-1]["ratio"])
        if "mongo" in args.only:
            comparisons.append(mongo_ingest.run(ds, args.repeat, args.warmup).as_dict())
            log.info("bench.done", benchmark="mongo", ratio=comparisons[-1]["ratio"])
        if "publish" in args.only:
            for label, orders in (("demo", ds.orders), ("large", args.publish_orders)):
                comparisons.append(publish.run(svc.root, orders, args.repeat, label, args.warmup).as_dict())
                log.info("bench.done", benchmark=f"publish_{label}", ratio=comparisons[-1]["ratio"])
        if "publish_postgres" in args.only:
            with postgres_cluster(svc.root, settings.pg_bin) as cluster:
                for label, orders in (("demo", ds.orders), ("large", args.publish_orders)):
                    comparisons.append(
                        publish_postgres.run(cluster, svc.root, orders, args.repeat, label, args.warmup).as_dict()
                    )
                    log.info("bench.done", benchmark=f"publish_postgres_{label}", ratio=comparisons[-1]["ratio"])
        if "scaling" in args.only:
            datasets = {f: (ds if f == 1 else make_dataset(svc, args.scale * f, f"x{f}")) for f in args.factors}
            scaling_result = scaling.run(datasets, args.repeat, args.warmup).as_dict()
            log.info("bench.done", benchmark="scaling", ratios=[p["ratio"] for p in scaling_result["points"]])
    return ds, comparisons, scaling_result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_mod.load()
    from bench import report
    from bench.machine import describe

    out = args.out.resolve()
    with _quiet_logs(settings.log_format), scoped_env({"RUNTIME__DLTHUB_TELEMETRY": "false"}):
        if args.render_only:
            results = json.loads((out / "results.json").read_text())
            if args.note is not None:
                results["note"] = args.note
        else:
            started = time.monotonic()
            results = {
                "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "command": shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]),
                "machine": describe(settings),
                "note": args.note,
                **run_benchmarks(args, settings),
            }
            results["wall_s"] = round(time.monotonic() - started, 1)
        json_path = report.write_json(results, out)
        plots = report.write_plots(results, out)
        md_path = out.parent / f"{out.name}.md"
        report.render_markdown(results, out, md_path, plots)
        print("\n".join(report.observations(results)))
        log.info("bench.written", json=str(json_path), markdown=str(md_path), plots=[p.name for p in plots])
        log.info("bench.finished", seconds=results.get("wall_s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
