"""Benchmark of the pure analysis core (not a test): is a full analysis cheap next to the data?

A full domain analysis of all 20 metrics × 24 h at 10 s, plus 200 labelled endpoint series
(100 endpoints × request counter and latency), then the same data 10× denser. Prints the
time per analysis, ns per sample, and the ratio to one ``numpy.percentile`` pass over the
same samples measured in the same run (the goal: ≤ 10×, and cost linear in samples).
Results also go to ``--json`` (default reports/bench_analysis.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from agent.analysis.catalog import CATALOG
from agent.store import MetricStore
from agent.strategies import TaskContext
from agent.strategies.api_optimization import DOMAIN
from agent.strategies.domain import analyze_domain
from protocols import TaskParams, TaskType

T0 = 1_764_324_000.0


def build(step_s: float, endpoints: int, seed: int = 0) -> tuple[MetricStore, list[np.ndarray]]:
    """A store with every catalog metric and ``endpoints`` × (counter, latency) series."""
    rng = np.random.default_rng(seed)
    n = int(86_400 / step_s)
    ts = T0 + np.arange(n) * step_s
    store = MetricStore(max_samples_per_series=n, max_series=100_000, max_age_s=2 * 86_400)
    arrays: list[np.ndarray] = []
    for spec in CATALOG.values():
        # a throughput has no catalog target: a typical level stands in for one
        level = spec.target if spec.target is not None else 300.0
        base = level * (1.1 if spec.direction == "lower_is_better" else 0.999)
        values = base * (1 + 0.05 * rng.standard_normal(n)) + np.linspace(0, base * 0.05, n)
        if spec.unit == "%":
            values = np.clip(values, 0, 100)
        store.add_many(spec.name, ts, values)
        arrays.append(values)
    for i in range(endpoints // 2):
        labels = {"endpoint": f"/api/e{i}", "region": ("eu", "us", "ap")[i % 3]}
        rate = 1 + 20 * rng.random()
        counter = np.cumsum(rng.poisson(rate * step_s, n)).astype(float)
        latency = 40 + 30 * rng.random() + rng.gamma(2.0, 5.0, n)
        store.add_many("http_requests_total", ts, counter, labels)
        store.add_many("api_response_time", ts, latency, {"endpoint": labels["endpoint"]})
        arrays += [counter, latency]
    return store, arrays


def timed(fn: Any, repeat: int) -> float:
    """Median wall time of ``repeat`` runs, seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(step_s: float, endpoints: int, repeat: int) -> dict[str, Any]:
    store, arrays = build(step_s, endpoints)
    samples = sum(a.size for a in arrays)
    ctx = TaskContext(
        task_id="bench",
        task_type=TaskType.API_OPTIMIZATION,
        now=datetime.now(UTC),
        params=TaskParams(window="1d"),
        store=store,
    )
    analysis = timed(lambda: analyze_domain(ctx, DOMAIN), repeat)
    baseline = timed(lambda: [np.percentile(a, 95) for a in arrays], repeat)
    return {
        "step_s": step_s,
        "series": len(arrays),
        "samples": samples,
        "analysis_ms": round(analysis * 1000, 2),
        "ns_per_sample": round(analysis * 1e9 / samples, 1),
        "percentile_pass_ms": round(baseline * 1000, 2),
        "ratio_to_percentile": round(analysis / baseline, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--json", default="reports/bench_analysis.json")
    args = parser.parse_args()
    rows = [
        run(10.0, args.endpoints, args.repeat),
        run(1.0, args.endpoints, max(1, args.repeat // 2)),
    ]
    header = (
        f"{'data':<14}{'samples':>12}{'analysis ms':>13}{'ns/sample':>11}"
        f"{'pct pass ms':>13}{'ratio':>8}"
    )
    print(header)
    for row, name in zip(rows, ("24h @ 10s", "24h @ 1s (10x)"), strict=True):
        print(
            f"{name:<14}{row['samples']:>12,}{row['analysis_ms']:>13.1f}{row['ns_per_sample']:>11.1f}"
            f"{row['percentile_pass_ms']:>13.1f}{row['ratio_to_percentile']:>8.2f}"
        )
    growth = rows[1]["analysis_ms"] / rows[0]["analysis_ms"]
    print(f"cost growth for 10x samples: {growth:.1f}x (linear = 10x)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": rows, "growth_10x": round(growth, 2)}, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
