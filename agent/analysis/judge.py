"""Judging a metric against its target: miss ratio, severity, urgency (DESIGN.md, "Judging")."""

from __future__ import annotations

import math
from dataclasses import dataclass

from agent.analysis.catalog import MetricSpec
from agent.analysis.series import STATISTICS, Series
from agent.analysis.trend import MIN_SAMPLES, TrendResult, assess_trend
from protocols.messages import MetricPerformance, Severity

MAX_RATIO = 1e6
"""Stands in for "infinitely far off" (a zero denominator): the wire carries no inf."""

_SEVERITY_FLOORS: tuple[tuple[float, Severity], ...] = (
    (2.0, "critical"),
    (1.5, "high"),
    (1.2, "medium"),
)


def _ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0.0:
        return 0.0 if numerator <= 0.0 else MAX_RATIO
    ratio = numerator / denominator
    if math.isnan(ratio):
        return MAX_RATIO
    return min(max(ratio, 0.0), MAX_RATIO)


def miss_ratio(spec: MetricSpec, current: float, target: float) -> float:
    """How far ``current`` is from ``target`` in the metric's own direction; ≤ 1 meets it.

    - lower-is-better: current / target;
    - higher-is-better and ``bounded`` at 100 %: (100 − current) / (100 − target),
      the ratio of error budgets spent (99.5 % against 99.9 % misses 5×, not 1.004×);
    - other higher-is-better: target / current.

    The result is always finite and in [0, ``MAX_RATIO``]: a zero or negative
    denominator gives 0 when the numerator is ≤ 0 too (nothing to miss), else
    ``MAX_RATIO``; overshooting the ceiling (current > 100 %) counts as 0.
    """
    if spec.direction == "lower_is_better":
        return _ratio(current, target)
    if spec.bounded:
        return _ratio(100.0 - current, 100.0 - target)
    return _ratio(target, current)


def meets_target(ratio: float) -> bool:
    """A metric meets its target when its miss ratio is at most 1."""
    return ratio <= 1.0


def severity(ratio: float) -> Severity | None:
    """The specification's thresholds: ≥ 2.0 critical, ≥ 1.5 high, ≥ 1.2 medium, > 1.0 low.

    None when the target is met (ratio ≤ 1) or the ratio is NaN.
    """
    for floor, level in _SEVERITY_FLOORS:
        if ratio >= floor:
            return level
    return "low" if ratio > 1.0 else None


def urgency(ratio: float, declining: bool) -> int:
    """Optimisation urgency 1–100 from the direction-aware miss ratio.

    ``int(round(min(100, ratio × 50 × (1.5 if declining else 1))))``, clamped to 1..100
    (Python's round: halves go to the even integer). A NaN ratio raises ``ValueError``:
    it is a bug upstream, not a verdict.
    """
    if math.isnan(ratio):
        raise ValueError("miss ratio is NaN")
    raw = min(100.0, max(ratio, 0.0) * 50.0 * (1.5 if declining else 1.0))
    return max(1, min(100, round(raw)))


@dataclass(frozen=True, slots=True)
class Judgement:
    """One metric judged over its window: the numbers a report and a bottleneck are made of."""

    spec: MetricSpec
    current: float
    statistic: str
    target: float
    target_source: str
    ratio: float
    trend: TrendResult

    @property
    def samples(self) -> int:
        return self.trend.samples

    @property
    def meets_target(self) -> bool:
        return meets_target(self.ratio)

    @property
    def severity(self) -> Severity | None:
        return severity(self.ratio)

    @property
    def urgency(self) -> int:
        return urgency(self.ratio, self.trend.declining)

    def to_performance(self) -> MetricPerformance:
        """The wire form: ``current`` to six significant digits, the ratio to four decimals."""
        return MetricPerformance(
            current=float(f"{self.current:.6g}"),
            target=self.target,
            unit=self.spec.unit,
            direction=self.spec.direction,
            meeting_target=self.meets_target,
            miss_ratio=round(self.ratio, 4),
            trend=self.trend.trend,
            samples=self.samples,
            statistic=self.statistic,
            severity=self.severity,
            trend_detail=self.trend.to_detail(),
            target_source=self.target_source,
        )


def judge(
    spec: MetricSpec,
    series: Series,
    *,
    target: float,
    target_source: str = "catalog",
    min_trend_samples: int = MIN_SAMPLES,
) -> Judgement:
    """Judge an already windowed, non-empty ``series`` of ``spec`` against ``target``.

    ``current`` is the catalog's statistic over the samples, or the number itself for a
    scalar (statistic ``value``).
    """
    if len(series) == 0:
        raise ValueError(f"{spec.name}: no samples to judge")
    if series.scalar:
        current, statistic = float(series.values[0]), "value"
    else:
        current, statistic = STATISTICS[spec.statistic](series.values), spec.statistic
    return Judgement(
        spec=spec,
        current=current,
        statistic=statistic,
        target=target,
        target_source=target_source,
        ratio=miss_ratio(spec, current, target),
        trend=assess_trend(series, spec.direction, min_samples=min_trend_samples),
    )
