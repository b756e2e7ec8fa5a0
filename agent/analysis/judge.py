"""Judging a metric against its target: miss ratio, severity, urgency, trend and level shifts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from agent.analysis.catalog import MetricSpec
from agent.analysis.changepoints import MIN_CHANGE_SAMPLES, detect_change_points
from agent.analysis.series import STATISTICS, Series, finite, mean, sig
from agent.analysis.trend import MIN_SAMPLES, TrendResult, assess_trend, hours_to_reach
from protocols.messages import (
    ChangePoint,
    MeasuredMetric,
    MetricPerformance,
    Severity,
    TrendDetail,
)

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


def hours_to_breach(
    spec: MetricSpec, current: float, target: float, trend: TrendResult
) -> tuple[float, float | None, float | None] | None:
    """(expected, soonest, latest) hours until a metric meeting ``target`` misses it.

    Only for a ``declining`` trend with a slope, and a target not reached yet
    (``hours_to_reach``: the slope and both ends of its 95 % interval). None otherwise.
    """
    if not trend.declining or current == target:
        return None
    return hours_to_reach(
        current,
        target,
        spec.direction,
        trend.slope_per_hour,
        (trend.slope_low_per_hour, trend.slope_high_per_hour),
    )


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
    change_points: tuple[ChangePoint, ...] = ()
    flags: tuple[str, ...] = ()
    """Units that look wrong (``validity.unit_suspicion``): said in every report, and a
    flagged metric is never made a bottleneck."""
    statistic_note: str | None = None
    """Why ``statistic`` is not the catalog's (a source measured a mean instead)."""
    rejected: int = 0
    """Impossible samples left out before judging (``validity.screen``)."""

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

    @property
    def breach(self) -> tuple[float, float | None, float | None] | None:
        """Hours to a breach of a metric still meeting its target (``hours_to_breach``)."""
        if not self.meets_target:
            return None
        return hours_to_breach(self.spec, self.current, self.target, self.trend)

    def trend_detail(self) -> TrendDetail:
        detail = self.trend.to_detail()
        breach = self.breach
        if breach is None:
            return detail
        expected, soonest, latest = breach
        return msgspec.structs.replace(
            detail,
            hours_to_breach=sig(finite(expected)),
            hours_to_breach_low=sig(finite(soonest)) if soonest is not None else None,
            hours_to_breach_high=sig(finite(latest)) if latest is not None else None,
        )

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
            trend_detail=self.trend_detail(),
            target_source=self.target_source,
            flags=list(self.flags),
            rejected_samples=self.rejected,
            statistic_note=self.statistic_note,
        )


@dataclass(frozen=True, slots=True)
class Measurement:
    """A metric's level, trend and level shifts over its window, before any target."""

    spec: MetricSpec
    current: float
    statistic: str
    trend: TrendResult
    change_points: tuple[ChangePoint, ...] = ()

    def to_measured(self, reason: str) -> MeasuredMetric:
        """The wire form of a metric measured but not judged (``reason`` says why)."""
        return MeasuredMetric(
            current=float(f"{self.current:.6g}"),
            unit=self.spec.unit,
            direction=self.spec.direction,
            statistic=self.statistic,
            samples=self.trend.samples,
            trend=self.trend.trend,
            trend_detail=self.trend.to_detail(),
            reason=reason,
        )


def measure(
    spec: MetricSpec,
    series: Series,
    *,
    min_trend_samples: int = MIN_SAMPLES,
    statistic: str | None = None,
) -> Measurement:
    """Level, level shifts and trend of an already windowed, non-empty ``series``.

    ``current`` is the catalog's statistic over the samples, or ``statistic`` when the
    samples are something else already (``rate`` for a derived counter rate, ``mean``
    when a source could only measure a mean: both averaged), or the number itself for a
    scalar (statistic ``value``). Level shifts are looked for from ``MIN_CHANGE_SAMPLES``
    samples on, and the trend is read after a shift that explains the window.
    """
    if len(series) == 0:
        raise ValueError(f"{spec.name}: no samples to judge")
    if series.scalar:
        current, statistic = float(series.values[0]), "value"
    else:
        statistic = statistic or spec.statistic
        current = STATISTICS.get(statistic, mean)(series.values)
    shifts: tuple[ChangePoint, ...] = ()
    if not series.scalar and len(series) >= MIN_CHANGE_SAMPLES:
        shifts = tuple(detect_change_points(series, spec.direction))
    trend = assess_trend(
        series, spec.direction, min_samples=min_trend_samples, change_points=shifts
    )
    return Measurement(
        spec=spec, current=current, statistic=statistic, trend=trend, change_points=shifts
    )


def judge(
    spec: MetricSpec,
    series: Series,
    *,
    target: float,
    target_source: str = "catalog",
    min_trend_samples: int = MIN_SAMPLES,
    statistic: str | None = None,
    flags: tuple[str, ...] = (),
) -> Judgement:
    """``measure`` ``series`` and judge it against ``target`` (see ``measure`` for how)."""
    m = measure(spec, series, min_trend_samples=min_trend_samples, statistic=statistic)
    return Judgement(
        spec=spec,
        current=m.current,
        statistic=m.statistic,
        target=target,
        target_source=target_source,
        ratio=miss_ratio(spec, m.current, target),
        trend=m.trend,
        change_points=m.change_points,
        flags=flags,
    )
