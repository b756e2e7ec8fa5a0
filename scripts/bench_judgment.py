"""Benchmark of the agent's judgment (not a test): does it call healthy healthy and broken broken?

Every scenario of ``scripts/corpora.py`` (healthy AR(1) and heavy-tailed telemetry for
every task type, a level step, a ramp, two cascades in opposite orders, impossible
values, a latency sent in seconds, a small backend with no throughput target) is made
for N seeds (default 10) and run through the agent in-process: ``TaskParams`` decoded
with ``msgspec.convert``, the task type's strategy from ``agent.strategies.ROUTES``, the
report taken as JSON (``msgspec.to_builtins``). The truth each report is scored against
comes from ``scripts/corpora.py``, which imports nothing from the agent: it sets its own
targets (passed in ``params["targets"]``) and knows what it generated.

Measured, each with its goal (one Markdown row per measure, met or not met):

- healthy reports (healthy AR(1), heavy-tailed, impossible values, small backend): any
  metric called ``declining`` (≤ 10 %), a bottleneck above ``low`` severity (0), a metric
  not meeting the generator's target (0), a change point or a ``level_shift`` found in
  stationary noise (≤ 10 % each); healthy plans: a scaling trigger with a crossing
  dated or passed (0);
- cause accuracy of the two cascades: the true root ranked first and every symptom
  ``caused_by`` it, per order;
- the step: timing error of the nearest change point (minutes), how many change points
  the step metric got (1), and whether the report states it as a level shift
  (``trend_detail.level_shift``) rather than a slope per hour;
- impossible values counted in ``data_quality.rejected_samples``, a unit mistake named
  in ``data_quality.unit_suspects`` and no such flag on clean data, no throughput
  bottleneck without a throughput target, and the ramp called ``declining``.

A field the report lacks counts as not stated (the measure is not met); the bench never
crashes on a report's shape. Per-task-type false-trend rates follow the table. Results
also go to ``--json`` (default reports/bench_judgment.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
from corpora import HEALTHY_FAMILIES, SCENARIOS, Scenario, generate

from agent.strategies import ROUTES, TaskContext
from protocols import TaskParams, TaskType

BASE_END = 1_764_288_000.0
"""2025-11-28 00:00 UTC; each seed ends its data 5 h 17 min later in the day than the last,
so the planning task's daily cycle is seen at every phase."""
PHASE_STEP_S = 19_020
DAY_S = 86_400
SEVERE = frozenset({"critical", "high", "medium"})
"""Bottleneck severities above ``low``."""
CASCADES = ("cascade_cache_first", "cascade_db_first")
PLANNING = "strategic_backend_planning"


def end_epoch(seed: int) -> float:
    return BASE_END + float((seed * PHASE_STEP_S) % DAY_S)


@dataclass(slots=True)
class Run:
    scenario: Scenario
    seed: int
    seconds: float
    report: dict[str, Any] | None
    error: str | None = None


def run_one(scenario: Scenario, seed: int) -> Run:
    """The scenario's task through the agent's strategy, in-process; never raises."""
    started = time.perf_counter()
    try:
        params = msgspec.convert(scenario.params, TaskParams)
        task_type = TaskType(scenario.task_type)
        ctx = TaskContext(
            task_id=f"bench-{scenario.name}-{seed}",
            task_type=task_type,
            now=datetime.now(UTC),
            params=params,
        )
        report = msgspec.to_builtins(ROUTES[task_type](ctx))
    except Exception as exc:  # a failed judgment is a result of the bench, not its end
        last = traceback.format_exception_only(exc)[-1].strip()
        return Run(scenario, seed, time.perf_counter() - started, None, last)
    return Run(scenario, seed, time.perf_counter() - started, report)


# --- reading a report defensively -------------------------------------------------------


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def performance(report: Mapping[str, Any] | None) -> dict[str, Any]:
    return _dict((report or {}).get("performance"))


def bottlenecks(report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [_dict(b) for b in _list((report or {}).get("bottlenecks"))]


def data_quality(report: Mapping[str, Any] | None) -> dict[str, Any]:
    return _dict((report or {}).get("data_quality"))


def declining(report: Mapping[str, Any] | None) -> list[str]:
    return sorted(m for m, p in performance(report).items() if _dict(p).get("trend") == "declining")


def severe(report: Mapping[str, Any] | None) -> list[str]:
    return [str(b.get("metric")) for b in bottlenecks(report) if b.get("severity") in SEVERE]


def missed_targets(report: Mapping[str, Any] | None) -> list[str]:
    return sorted(
        m for m, p in performance(report).items() if _dict(p).get("meeting_target") is False
    )


def projected_triggers(report: Mapping[str, Any] | None) -> list[str]:
    """Scaling triggers the plan dates: status ``expected``/``already_crossed`` or a date."""
    projections = _dict((report or {}).get("scalability_projections"))
    out = []
    for t in map(_dict, _list(projections.get("scaling_triggers"))):
        dated = t.get("expected_ts") is not None or t.get("days_from_now") is not None
        if dated or t.get("status") in ("expected", "already_crossed"):
            out.append(str(t.get("metric")))
    return out


def cause_right(report: Mapping[str, Any] | None, root: str, symptoms: Iterable[str]) -> bool:
    """The root is the first bottleneck and every symptom is a bottleneck ``caused_by`` it."""
    found = bottlenecks(report)
    if not found or found[0].get("metric") != root:
        return False
    by_metric = {b.get("metric"): b for b in found}
    return all(root in _list(_dict(by_metric.get(s)).get("caused_by")) for s in symptoms)


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def change_points(report: Mapping[str, Any] | None, metric: str) -> list[dict[str, Any]]:
    return [_dict(c) for c in _list(_dict((report or {}).get("change_points")).get(metric))]


def step_error_min(report: Mapping[str, Any] | None, metric: str, at: float) -> float | None:
    """|reported − true| step time in minutes, for the worsening change point of ``metric``
    nearest the true step (any change point when none worsens); None when none was reported.
    Extra change points are not charged here: ``change_points_count`` and the healthy rows
    count them."""
    points = change_points(report, metric)
    worse = [c for c in points if c.get("worse")] or points
    times = [t for t in (_epoch(c.get("at")) for c in worse) if t is not None]
    return min(abs(t - at) for t in times) / 60.0 if times else None


def metrics_with_change_points(report: Mapping[str, Any] | None) -> list[str]:
    return sorted(m for m, cps in _dict((report or {}).get("change_points")).items() if cps)


def metrics_with_level_shift(report: Mapping[str, Any] | None) -> list[str]:
    return sorted(m for m in performance(report) if states_level_shift(report, m))


def flagged_metrics(report: Mapping[str, Any] | None) -> list[str]:
    return sorted(set(rejected_counts(report)) | unit_suspects(report))


def states_level_shift(report: Mapping[str, Any] | None, metric: str) -> bool:
    detail = _dict(_dict(performance(report).get(metric)).get("trend_detail"))
    return bool(detail.get("level_shift"))


def _count(x: Any) -> int | None:
    """A count however a report shapes it: a number, ``{"count": n}``, a list of samples."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return int(x)
    if isinstance(x, list):
        return len(x)
    if isinstance(x, dict):
        for key in ("count", "total", "samples", "rejected"):
            if isinstance(x.get(key), int | float) and not isinstance(x.get(key), bool):
                return int(x[key])
        numbers = [v for v in x.values() if isinstance(v, int) and not isinstance(v, bool)]
        return sum(numbers) if numbers else None
    return None


def rejected_counts(report: Mapping[str, Any] | None) -> dict[str, int | None]:
    rejected = data_quality(report).get("rejected_samples")
    if isinstance(rejected, dict):
        return {str(m): _count(v) for m, v in rejected.items()}
    return {}


def unit_suspects(report: Mapping[str, Any] | None) -> set[str]:
    suspects = data_quality(report).get("unit_suspects")
    if isinstance(suspects, dict):
        return {str(m) for m in suspects}
    names = set()
    for s in _list(suspects):
        if isinstance(s, str):
            names.add(s)
        elif isinstance(s, dict) and s.get("metric") is not None:
            names.add(str(s["metric"]))
    return names


# --- the measures ------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    measure: str
    value: str
    n: int
    goal: str
    met: bool
    detail: dict[str, Any] = field(default_factory=dict)


def _pct(k: int, n: int) -> str:
    return f"{100.0 * k / n:.1f} % ({k}/{n})" if n else "n/a (0 reports)"


def share_row(
    measure: str,
    runs: list[Run],
    hit: Callable[[Run], bool],
    *,
    goal: str,
    ok: Callable[[float], bool],
    names: Callable[[Run], Iterable[str]] | None = None,
) -> Row:
    """A row for the share of ``runs`` where ``hit`` holds; ``names`` (the metrics behind a
    hit) are counted over the hits and listed after the share. A failed run is a hit when
    ``hit`` says so (measures with a goal of 0 count it against the agent)."""
    hits = [r for r in runs if hit(r)]
    n = len(runs)
    value = _pct(len(hits), n)
    named: Counter[str] = Counter()
    if names is not None:
        for r in hits:
            named.update(names(r))
        if named:
            value += ": " + ", ".join(f"{m} ×{k}" for m, k in named.most_common())
    if any(r.report is None for r in hits):
        value += f" ({sum(r.report is None for r in hits)} failed)"
    detail = {"hits": len(hits), "metrics": dict(named.most_common())}
    return Row(measure, value, n, goal, bool(n) and ok(len(hits) / n), detail)


def rate_below(limit: float) -> Callable[[float], bool]:
    return lambda share: share <= limit + 1e-12


def rate_above(limit: float) -> Callable[[float], bool]:
    return lambda share: share >= limit - 1e-12


def failed(r: Run) -> bool:
    return r.report is None


def measures(runs: list[Run]) -> list[Row]:
    by_family: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_family[r.scenario.family].append(r)
    healthy = [r for r in runs if r.scenario.family in HEALTHY_FAMILIES]
    clean = [r for r in healthy if r.scenario.family != "impossible_values"]
    plans = [r for r in healthy if r.scenario.task_type == PLANNING]
    rows = [
        share_row(
            "false-trend rate: healthy reports with any metric `declining`",
            healthy,
            lambda r: failed(r) or bool(declining(r.report)),
            goal="≤ 10 %",
            ok=rate_below(0.10),
            names=lambda r: declining(r.report),
        ),
        share_row(
            "false-bottleneck rate: healthy reports with a bottleneck above `low`",
            healthy,
            lambda r: failed(r) or bool(severe(r.report)),
            goal="0",
            ok=rate_below(0.0),
            names=lambda r: severe(r.report),
        ),
        share_row(
            "false breaches: healthy reports with a metric not meeting its target",
            healthy,
            lambda r: failed(r) or bool(missed_targets(r.report)),
            goal="0",
            ok=rate_below(0.0),
            names=lambda r: missed_targets(r.report),
        ),
        share_row(
            "scaling triggers projected on healthy plans (a crossing dated or passed)",
            plans,
            lambda r: failed(r) or bool(projected_triggers(r.report)),
            goal="0",
            ok=rate_below(0.0),
            names=lambda r: projected_triggers(r.report),
        ),
        share_row(
            "spurious change points: healthy reports with any change point",
            healthy,
            lambda r: failed(r) or bool(metrics_with_change_points(r.report)),
            goal="≤ 10 %",
            ok=rate_below(0.10),
        ),
        share_row(
            "spurious level shifts: healthy reports stating a `level_shift`",
            healthy,
            lambda r: failed(r) or bool(metrics_with_level_shift(r.report)),
            goal="≤ 10 %",
            ok=rate_below(0.10),
            names=lambda r: metrics_with_level_shift(r.report),
        ),
    ]
    rows += cause_rows(by_family)
    rows += step_rows(by_family["step"])

    def counted(r: Run) -> bool:
        counts = rejected_counts(r.report)
        return all(counts.get(m) == k for m, k in r.scenario.truth["impossible"].items())

    rows += [
        share_row(
            "impossible values counted per metric (`data_quality.rejected_samples`)",
            by_family["impossible_values"],
            counted,
            goal="100 %",
            ok=rate_above(1.0),
        ),
        share_row(
            "unit mistake named (`data_quality.unit_suspects`)",
            by_family["unit_seconds"],
            lambda r: r.scenario.truth["unit_mistake"] in unit_suspects(r.report),
            goal="100 %",
            ok=rate_above(1.0),
        ),
        share_row(
            "false data flags: clean healthy reports with a rejected sample or unit suspect",
            clean,
            lambda r: bool(flagged_metrics(r.report)),
            goal="0",
            ok=rate_below(0.0),
            names=lambda r: flagged_metrics(r.report),
        ),
        share_row(
            "throughput: small backend (30 req/s, no target) with an api_throughput bottleneck",
            by_family["small_backend"],
            lambda r: (
                failed(r) or any(b.get("metric") == "api_throughput" for b in bottlenecks(r.report))
            ),
            goal="0",
            ok=rate_below(0.0),
        ),
        share_row(
            "ramp: the ramped latency called `declining`",
            by_family["ramp"],
            lambda r: all(m in declining(r.report) for m in r.scenario.truth["declining"]),
            goal="≥ 90 %",
            ok=rate_above(0.90),
        ),
    ]
    return rows


def cause_rows(by_family: Mapping[str, list[Run]]) -> list[Row]:
    """Cause accuracy over both cascades and per order, with what the agent ranked first."""

    def right(r: Run) -> bool:
        t = r.scenario.truth
        return cause_right(r.report, t["root"], t["symptoms"])

    def first(group: list[Run]) -> str:
        named = Counter(
            str(bottlenecks(r.report)[0].get("metric")) for r in group if bottlenecks(r.report)
        )
        return "; ranked first: " + ", ".join(f"{m} ×{k}" for m, k in named.most_common())

    groups = [("both cascades", [r for f in CASCADES for r in by_family.get(f, [])])]
    for family in CASCADES:
        group = by_family.get(family, [])
        root = group[0].scenario.truth["root"] if group else "?"
        groups.append((f"{family} (root {root})", group))
    rows = []
    for label, group in groups:
        row = share_row(
            f"cause accuracy, {label}: root first, symptoms `caused_by` it",
            group,
            right,
            goal="≥ 90 %",
            ok=rate_above(0.90),
        )
        if group and label != "both cascades":
            row.value += first(group)
        rows.append(row)
    return rows


def step_rows(steps: list[Run]) -> list[Row]:
    """Change-point timing of the step, how many change points it got, level shift stated."""
    errors = [
        step_error_min(r.report, r.scenario.truth["step_metric"], r.scenario.truth["step_at"])
        for r in steps
    ]
    found = [e for e in errors if e is not None]
    missing = len(errors) - len(found)
    median = statistics.median(found) if found else None
    worst = max(found) if found else None
    counts = [len(change_points(r.report, r.scenario.truth["step_metric"])) for r in steps]
    return [
        Row(
            "step: median timing error of the nearest change point (min)",
            "none reported" if median is None else f"{median:.2f}",
            len(steps),
            "≤ 1 min",
            median is not None and median <= 1.0,
            {"errors_min": errors},
        ),
        Row(
            "step: max timing error of the nearest change point (min)",
            ("none reported" if worst is None else f"{worst:.2f}")
            + (f", {missing} step(s) with no change point" if missing else ""),
            len(steps),
            "≤ 3 min, every step found",
            worst is not None and worst <= 3.0 and not missing,
        ),
        Row(
            "step: change points reported on the step metric (median count, range)",
            f"{statistics.median(counts):g} ({min(counts)}–{max(counts)})" if counts else "n/a",
            len(steps),
            "1",
            bool(counts) and max(counts) == 1,
            {"counts": counts},
        ),
        share_row(
            "step: stated as a level shift (`trend_detail.level_shift`), not a slope",
            steps,
            lambda r: states_level_shift(r.report, r.scenario.truth["step_metric"]),
            goal="≥ 90 %",
            ok=rate_above(0.90),
        ),
    ]


def per_task_type(runs: list[Run]) -> list[dict[str, Any]]:
    """False-trend rate of the healthy reports of each task type, and which metrics."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        if r.scenario.family in HEALTHY_FAMILIES:
            groups[r.scenario.task_type].append(r)
    out = []
    for task_type, group in sorted(groups.items()):
        metrics: Counter[str] = Counter()
        hits = 0
        for r in group:
            names = declining(r.report)
            metrics.update(names)
            hits += bool(names) or r.report is None
        out.append(
            {
                "task_type": task_type,
                "n": len(group),
                "false_trend_reports": hits,
                "rate_pct": round(100.0 * hits / len(group), 1),
                "declining_metrics": dict(metrics.most_common()),
            }
        )
    return out


def markdown(rows: list[Row]) -> str:
    lines = ["| measure | measured | n | goal | result |", "|---|---|---:|---|---|"]
    lines += [
        f"| {r.measure} | {r.value} | {r.n} | {r.goal} | {'met' if r.met else 'NOT met'} |"
        for r in rows
    ]
    return "\n".join(lines)


def markdown_tasks(table: list[dict[str, Any]]) -> str:
    lines = [
        "| task type (healthy reports) | n | false-trend rate | metrics called declining |",
        "|---|---:|---|---|",
    ]
    for t in table:
        named = ", ".join(f"{m} ×{k}" for m, k in t["declining_metrics"].items()) or "—"
        rate = _pct(t["false_trend_reports"], t["n"])
        lines.append(f"| {t['task_type']} | {t['n']} | {rate} | {named} |")
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, set | frozenset):
        return sorted(x)
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def run_summary(r: Run) -> dict[str, Any]:
    """What one report said, for the JSON file."""
    t = r.scenario.truth
    summary: dict[str, Any] = {
        "scenario": r.scenario.name,
        "seed": r.seed,
        "seconds": round(r.seconds, 4),
        "error": r.error,
        "declining": declining(r.report),
        "bottlenecks": [
            {k: b.get(k) for k in ("metric", "severity", "caused_by")}
            for b in bottlenecks(r.report)
        ],
        "missed_targets": missed_targets(r.report),
        "change_point_metrics": metrics_with_change_points(r.report),
        "level_shift_metrics": metrics_with_level_shift(r.report),
        "data_flags": flagged_metrics(r.report),
    }
    if r.scenario.task_type == PLANNING:
        summary["projected_triggers"] = projected_triggers(r.report)
    if t["step_metric"]:
        summary["step_error_min"] = step_error_min(r.report, t["step_metric"], t["step_at"])
        summary["level_shift_stated"] = states_level_shift(r.report, t["step_metric"])
        summary["step_change_points"] = change_points(r.report, t["step_metric"])
    if t["impossible"]:
        summary["rejected_samples"] = rejected_counts(r.report)
    if t["unit_mistake"]:
        summary["unit_suspects"] = sorted(unit_suspects(r.report))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds per scenario (default 10)")
    parser.add_argument("--json", default="reports/bench_judgment.json", help="output file")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    started = time.perf_counter()
    runs: list[Run] = []
    generating = 0.0
    for seed in range(1, args.seeds + 1):
        for name in SCENARIOS:
            t = time.perf_counter()
            scenario = generate(name, seed, end_epoch(seed))
            generating += time.perf_counter() - t
            runs.append(run_one(scenario, seed))
    elapsed = time.perf_counter() - started

    rows = measures(runs)
    tasks = per_task_type(runs)
    failures = [r for r in runs if r.error is not None]
    per_report = [r.seconds for r in runs]
    print(
        f"{len(runs)} reports: {len(SCENARIOS)} scenarios × {args.seeds} seeds "
        "(truth from scripts/corpora.py, which imports nothing from the agent)\n"
    )
    print(markdown(rows))
    print()
    print(markdown_tasks(tasks))
    print()
    if failures:
        print(f"{len(failures)} report(s) failed:")
        for r in failures[:10]:
            print(f"  {r.scenario.name} seed {r.seed}: {r.error}")
        print()
    met = sum(r.met for r in rows)
    print(
        f"{met}/{len(rows)} measures met; {elapsed:.1f} s in all ({generating:.1f} s generating), "
        f"per report median {1000 * statistics.median(per_report):.0f} ms, "
        f"max {1000 * max(per_report):.0f} ms"
    )

    out_doc = {
        "benchmark": "judgment",
        "run_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seeds": args.seeds,
        "scenarios": list(SCENARIOS),
        "elapsed_s": round(elapsed, 3),
        "measures": [
            {
                "measure": r.measure,
                "measured": r.value,
                "n": r.n,
                "goal": r.goal,
                "met": r.met,
                **r.detail,
            }
            for r in rows
        ],
        "per_task_type": tasks,
        "runs": [_jsonable({**run_summary(r), "truth": r.scenario.truth}) for r in runs],
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(out_doc, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
