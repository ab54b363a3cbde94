"""Scaling: full ingestion (MongoDB + Kafka) of 1x, 2x, 4x the data; the baseline is the 1x run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.harness import Dataset, scratch, time_once
from millpond.stages.ingest import run_ingest


@dataclass
class ScalePoint:
    factor: int
    scale: float
    rows: int
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Scaling:
    """Median ingest time per factor; ``ratio`` is time / time at 1x, ``efficiency`` = factor / ratio."""

    points: list[ScalePoint]

    def fit(self) -> tuple[float, float] | None:
        """Least-squares ``seconds = fixed + rows / marginal_rate`` over the medians: (fixed s, rows/s)."""
        if len(self.points) < 2:
            return None
        fit = statistics.linear_regression([p.rows for p in self.points], [p.median for p in self.points])
        return fit.intercept, (1 / fit.slope if fit.slope > 0 else float("inf"))

    def as_dict(self) -> dict[str, Any]:
        base = self.points[0]
        fit = self.fit()
        return {
            "fixed_cost_s": round(fit[0], 3) if fit else None,
            "marginal_rows_per_s": round(fit[1], 1) if fit else None,
            "name": "scaling",
            "title": "Ingest time vs data volume (MongoDB + Kafka, full load)",
            "baseline": f"the {base.factor}x run",
            "points": [
                {
                    "factor": p.factor,
                    "scale": p.scale,
                    "rows": p.rows,
                    "seconds": [round(s, 4) for s in p.seconds],
                    "median_s": round(p.median, 4),
                    "rows_per_s": round(p.rows / p.median, 1),
                    "ratio": round(p.median / base.median, 3),
                    "efficiency": round((p.factor / base.factor) / (p.median / base.median), 3),
                }
                for p in self.points
            ],
        }


def run(datasets: dict[int, Dataset], repeat: int, warmup: int = 1) -> Scaling:
    """Time a full ingest of each dataset into a fresh warehouse; factors are interleaved per repeat."""
    points = {f: ScalePoint(factor=f, scale=ds.scale, rows=ds.messages + ds.documents) for f, ds in datasets.items()}

    def ingest(ds: Dataset) -> None:
        with scratch(ds.svc.root, "scaling") as data_dir:
            run_ingest(ds.settings(data_dir))

    smallest = min(datasets)
    for _ in range(warmup):
        ingest(datasets[smallest])
    for i in range(repeat):
        order = sorted(datasets) if i % 2 == 0 else sorted(datasets, reverse=True)
        for factor in order:
            ds = datasets[factor]
            points[factor].seconds.append(time_once(lambda: ingest(ds)))  # noqa: B023 - called at once
    return Scaling(points=[points[f] for f in sorted(points)])
