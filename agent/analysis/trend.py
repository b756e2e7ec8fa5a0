"""Trend of a metric: Theil–Sen slope, Mann–Kendall significance, read in the metric's direction.

Theil–Sen (median of pairwise slopes) shrugs off outliers a least-squares fit would
chase; Mann–Kendall (Kendall's tau of value against time) says whether the
monotone change is more than noise. ``declining`` means getting worse for the
metric and significant; too few samples give ``unknown`` with the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from agent.analysis.catalog import Direction
from agent.analysis.series import Series
from protocols.messages import Trend, TrendDetail

METHOD = "theil_sen+mann_kendall"
MIN_SAMPLES = 8
"""Below this many samples the Mann–Kendall test cannot reach p < 0.05 with any margin."""
ALPHA = 0.05
_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class TrendResult:
    """The verdict and the numbers behind it; ``slope_per_hour`` is in the metric's unit."""

    trend: Trend
    samples: int
    slope_per_hour: float | None = None
    kendall_tau: float | None = None
    p_value: float | None = None

    @property
    def declining(self) -> bool:
        return self.trend == "declining"

    def to_detail(self) -> TrendDetail:
        """The wire form, rounded to six significant digits (noise beyond that is not data)."""
        return TrendDetail(
            method=METHOD,
            samples=self.samples,
            slope_per_hour=_sig(self.slope_per_hour),
            kendall_tau=_sig(self.kendall_tau),
            p_value=_sig(self.p_value),
        )


def _sig(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def assess_trend(
    series: Series,
    direction: Direction,
    *,
    min_samples: int = MIN_SAMPLES,
    alpha: float = ALPHA,
) -> TrendResult:
    """Theil–Sen slope per hour and a two-sided Mann–Kendall test over ``series``.

    ``unknown`` when there are fewer than ``min_samples`` samples, when the value is a
    bare number, or when all samples share one time. A constant series is ``stable``
    (scipy's tau is undefined there, so it is not asked). Never emits warnings and
    never returns inf or NaN: a figure that is not finite is reported as None.
    """
    n = len(series)
    if series.scalar or n < min_samples:
        return TrendResult(trend="unknown", samples=n)
    t = series.ts - series.ts[0]
    y = series.values
    if bool(np.all(t == t[0])):
        return TrendResult(trend="unknown", samples=n)
    if bool(np.all(y == y[0])):
        return TrendResult(trend="stable", samples=n, slope_per_hour=0.0)
    with np.errstate(all="ignore"):
        slope = float(stats.theilslopes(y, t).slope) * _SECONDS_PER_HOUR
        tau_result = stats.kendalltau(t, y)
    tau = float(tau_result.statistic)
    p = float(tau_result.pvalue)
    trend: Trend = "stable"
    if math.isfinite(tau) and math.isfinite(p) and p < alpha and tau != 0.0:
        rising = tau > 0.0
        worse = rising if direction == "lower_is_better" else not rising
        trend = "declining" if worse else "improving"
    return TrendResult(
        trend=trend,
        samples=n,
        slope_per_hour=_finite(slope),
        kendall_tau=_finite(tau),
        p_value=_finite(p),
    )
