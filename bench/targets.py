"""Issue 7's speed and memory targets, judged from the volume benchmark's points: met, not met, not measured."""

from __future__ import annotations

from typing import Any

# the targets of issue 7 at the sizes they are stated for
TARGET_RATIO_AT = 1_000_000
TARGET_RATIO = 4.0
TARGET_RSS_MIB = 1024.0
TARGET_FLAT = 1.25  # "flat": the largest size's peak RSS at most this many times the smallest size's
TARGET_INCREMENTAL = 0.05
TARGET_GENERATOR_FLAT = 1.25


def _measured(points: list[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    return [p for p in points if "error" not in p["stages"].get(stage, {"error": "not run"})]


def targets(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 7's speed and memory targets, each met / not met / not measured, with the numbers behind it."""
    out: list[dict[str, Any]] = []
    ingested = _measured(points, "ingest_full")
    at = next(
        (p for p in ingested if p["size"] == TARGET_RATIO_AT and "ratio_to_floor" in p["stages"]["ingest_full"]), None
    )
    if at is None:
        out.append(
            _target(
                "ratio", f"end-to-end ingest within {TARGET_RATIO:g}x the raw floor at 1M", None, "not measured at 1M"
            )
        )
    else:
        full = at["stages"]["ingest_full"]
        out.append(
            _target(
                "ratio",
                f"end-to-end ingest within {TARGET_RATIO:g}x the raw floor at 1M",
                full["ratio_to_floor"] <= TARGET_RATIO,
                f"{full['ratio_to_floor']:.2f}x ({full['work_s']:.1f} s vs floor {at['floor_s']:.1f} s; "
                f"{full.get('ratio_to_raw_floor', float('nan')):.2f}x the raw-BSON floor)",
            )
        )
    if ingested:
        rss = [(p["label"], p["stages"]["ingest_full"]["peak_rss_mib"]) for p in ingested]
        incs = [
            (p["label"], p["stages"]["ingest_incremental"]["peak_rss_mib"])
            for p in _measured(points, "ingest_incremental")
        ]
        peak = max(r for _, r in rss + incs)
        listing = ", ".join(f"{lbl} {r:,.0f} MiB" for lbl, r in rss)
        out.append(
            _target("rss", "peak RSS of ingest under 1 GiB", peak < TARGET_RSS_MIB, f"max {peak:,.0f} MiB ({listing})")
        )
        if len(rss) >= 2:
            growth = rss[-1][1] / rss[0][1]
            out.append(
                _target(
                    "rss_flat",
                    f"peak RSS flat from {rss[0][0]} to {rss[-1][0]} (at most {TARGET_FLAT:g}x)",
                    growth <= TARGET_FLAT,
                    f"{growth:.2f}x over {ingested[-1]['landed_rows'] / ingested[0]['landed_rows']:.0f}x the rows",
                )
            )
        else:
            out.append(_target("rss_flat", "peak RSS flat across sizes", None, "only one size measured"))
    else:
        out.append(_target("rss", "peak RSS of ingest under 1 GiB", None, "ingest did not run"))
    incremental = _measured(points, "ingest_incremental")
    if incremental:
        parts = [
            f"{p['label']}: {p['stages']['ingest_incremental']['fraction_of_full_time']:.1%} of the time for "
            f"{p['stages']['ingest_incremental']['fraction_of_full_rows']:.1%} of the rows"
            for p in incremental
        ]
        largest = incremental[-1]["stages"]["ingest_incremental"]["fraction_of_full_time"]
        out.append(
            _target(
                "incremental",
                f"incremental run (~1% new data) at most {TARGET_INCREMENTAL:.0%} of the full load's time "
                f"(largest size: {incremental[-1]['label']})",
                largest <= TARGET_INCREMENTAL,
                "; ".join(parts),
            )
        )
    else:
        out.append(_target("incremental", "incremental run at most 5% of the full load's time", None, "not run"))
    generated = _measured(points, "generate")
    if len(generated) >= 2:
        first, last = generated[-2], generated[-1]
        g0, g1 = first["stages"]["generate"], last["stages"]["generate"]
        out.append(
            _target(
                "generator",
                f"generator memory bounded ({first['label']} vs {last['label']}, at most {TARGET_GENERATOR_FLAT:g}x)",
                g1["peak_rss_mib"] / g0["peak_rss_mib"] <= TARGET_GENERATOR_FLAT,
                f"{g0['peak_rss_mib']:,.0f} MiB for {first['source']['messages']:,} events vs "
                f"{g1['peak_rss_mib']:,.0f} MiB for {last['source']['messages']:,} events",
            )
        )
    else:
        out.append(_target("generator", "generator memory bounded", None, "fewer than two sizes generated"))
    return out


def _target(key: str, text: str, met: bool | None, detail: str) -> dict[str, Any]:
    return {"key": key, "target": text, "met": met, "detail": detail}
