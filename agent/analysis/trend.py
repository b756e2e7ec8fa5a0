"""Trend of a metric: Theil–Sen slope, Mann–Kendall significance, read in the metric's direction.

Theil–Sen (median of pairwise slopes) shrugs off outliers a least-squares fit would
chase; Mann–Kendall (Kendall's S of value against time) says whether the monotone
change is more than noise. ``declining`` means getting worse for the metric and
significant; too few samples give ``unknown`` with the count.

Both run on ``bucketize(series, 120)``, the medians of at most 120 equal-width time
buckets, not on the raw samples, because:

- cost: both statistics look at every pair of points, O(n²); 120 points are 7 140
  pairs whether the window holds 50 samples or 100 000, so a week at 10 s scrapes
  costs what an hour does (about one sort of the raw samples);
- robustness to the sampling rate: the test's power would otherwise grow with the
  scrape rate, and with it the chance that autocorrelated noise reads as a trend;
  bucket medians make one scrape every second and one a minute say the same thing,
  and an outlier moves only its bucket's median.

With n points (t_i, y_i), i < j, and sgn the sign function:

- slope = median{(y_j − y_i) / (t_j − t_i) : t_j ≠ t_i}, reported per hour;
- S = Σ sgn(t_j − t_i)·sgn(y_j − y_i); Kendall's tau = S / (n(n − 1)/2);
- Var(S) = (v0 − vt − vu)/18 + v1/(2n(n − 1)) + v2/(9n(n − 1)(n − 2)), with
  v0 = n(n − 1)(2n + 5), vt = Σ t(t − 1)(2t + 5) over groups of t tied times,
  vu = the same over groups of u tied values, v1 = Σt(t − 1)·Σu(u − 1) and
  v2 = Σt(t − 1)(t − 2)·Σu(u − 1)(u − 2) (Kendall 1970; with distinct times, as
  after bucketing, only the usual Mann–Kendall tie term vu remains);
- Z = (S − sgn S)/√Var(S) (continuity correction), two-sided p = erfc(|Z|/√2).

The normal approximation is what Mann–Kendall is used with from n ≈ 10 on; at
exactly ``min_samples`` points it is slightly conservative, which is the safe side
for raising urgency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from agent.analysis.catalog import Direction
from agent.analysis.series import MAX_BUCKETS, FloatArray, Series, bucketize, median
from protocols.messages import Trend, TrendDetail

METHOD = "theil_sen+mann_kendall"
MIN_SAMPLES = 8
"""Below this many samples the Mann–Kendall test cannot reach p < 0.05 with any margin."""
ALPHA = 0.05
_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class TrendResult:
    """The verdict and the numbers behind it; ``slope_per_hour`` is in the metric's unit.

    ``samples`` counts the raw samples; ``points`` how many the statistics ran on
    (bucket medians when ``bucketed``), None when they did not run.
    """

    trend: Trend
    samples: int
    slope_per_hour: float | None = None
    kendall_tau: float | None = None
    p_value: float | None = None
    points: int | None = None
    bucketed: bool = False

    @property
    def declining(self) -> bool:
        return self.trend == "declining"

    @property
    def method(self) -> str:
        """``METHOD`` and what it ran on: ``… over 120 bucket medians`` or ``… over 12 samples``."""
        if self.points is None:
            return METHOD
        kind = "bucket medians" if self.bucketed else "samples"
        return f"{METHOD} over {self.points} {kind}"

    def to_detail(self) -> TrendDetail:
        """The wire form, rounded to six significant digits (noise beyond that is not data)."""
        return TrendDetail(
            method=self.method,
            samples=self.samples,
            slope_per_hour=_sig(self.slope_per_hour),
            kendall_tau=_sig(self.kendall_tau),
            p_value=_sig(self.p_value),
        )


def _sig(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@cache
def _pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices (i, j) of every pair i < j; cached, as n is at most 120 after bucketing."""
    i, j = np.triu_indices(n, k=1)
    i.flags.writeable = False
    j.flags.writeable = False
    return i, j


def _tie_sums(x: FloatArray) -> tuple[float, float, float]:
    """Σ t(t−1)(2t+5), Σ t(t−1) and Σ t(t−1)(t−2) over the groups of ``t`` equal values."""
    _, counts = np.unique(x, return_counts=True)
    t = counts[counts > 1].astype(np.float64)
    return (
        float(np.sum(t * (t - 1.0) * (2.0 * t + 5.0))),
        float(np.sum(t * (t - 1.0))),
        float(np.sum(t * (t - 1.0) * (t - 2.0))),
    )


def mann_kendall(t: FloatArray, y: FloatArray) -> tuple[float, float, float]:
    """S, its tie-corrected variance and Kendall's tau (S over all pairs) of ``y`` against ``t``.

    ``t`` must be sorted, as a ``Series``' times are.
    """
    n = y.size
    i, j = _pairs(n)
    s = float(np.sum(np.sign(t[j] - t[i]) * np.sign(y[j] - y[i])))
    vu, u1, u2 = _tie_sums(y)
    var = (n * (n - 1.0) * (2.0 * n + 5.0) - vu) / 18.0
    if n > 1 and bool(np.any(t[1:] == t[:-1])):  # tied times: Kendall's full correction
        vt, t1, t2 = _tie_sums(t)
        var += -vt / 18.0 + t1 * u1 / (2.0 * n * (n - 1.0))
        if n > 2:
            var += t2 * u2 / (9.0 * n * (n - 1.0) * (n - 2.0))
    return s, var, s / (n * (n - 1) / 2)


def theil_sen(t: FloatArray, y: FloatArray) -> float:
    """Median of the slopes between every two points at distinct times (NaN if none)."""
    i, j = _pairs(y.size)
    dt = t[j] - t[i]
    apart = dt != 0.0
    if not bool(np.any(apart)):
        return math.nan
    with np.errstate(all="ignore"):
        # Halved differences cannot overflow; the slope of extreme values may still be inf.
        dy = y[j] * 0.5 - y[i] * 0.5
        if not bool(apart.all()):
            dy, dt = dy[apart], dt[apart]
        return median(dy / dt) * 2.0


def assess_trend(
    series: Series,
    direction: Direction,
    *,
    min_samples: int = MIN_SAMPLES,
    alpha: float = ALPHA,
) -> TrendResult:
    """Theil–Sen slope per hour and a two-sided Mann–Kendall test over ``series``.

    ``unknown`` when there are fewer than ``min_samples`` raw samples, when the value
    is a bare number, or when all samples share one time. A constant series is
    ``stable`` with slope 0. Never emits warnings and never returns inf or NaN: a
    figure that is not finite is reported as None.
    """
    n = len(series)
    if series.scalar or n < min_samples or n == 0:
        return TrendResult(trend="unknown", samples=n)
    if bool(series.ts[-1] == series.ts[0]):  # sorted: first == last means one instant
        return TrendResult(trend="unknown", samples=n)
    points = bucketize(series, MAX_BUCKETS)
    m = len(points)
    bucketed = points is not series
    if bool(np.all(points.values == points.values[0])):
        return TrendResult(
            trend="stable", samples=n, slope_per_hour=0.0, points=m, bucketed=bucketed
        )
    with np.errstate(all="ignore"):  # extreme inputs give inf/NaN, reported as None below
        # Offsets from the first time: small numbers, exact differences for epoch seconds.
        t = points.ts - points.ts[0]
        y = points.values
        slope = theil_sen(t, y) * _SECONDS_PER_HOUR
        s, var, tau = mann_kendall(t, y)
    p = math.nan
    if var > 0.0 and math.isfinite(s):
        z = (s - math.copysign(1.0, s)) / math.sqrt(var) if s != 0.0 else 0.0
        p = math.erfc(abs(z) / math.sqrt(2.0))
    trend: Trend = "stable"
    if math.isfinite(p) and p < alpha and s != 0.0:
        rising = s > 0.0
        worse = rising if direction == "lower_is_better" else not rising
        trend = "declining" if worse else "improving"
    return TrendResult(
        trend=trend,
        samples=n,
        slope_per_hour=_finite(slope),
        kendall_tau=_finite(tau),
        p_value=_finite(p),
        points=m,
        bucketed=bucketed,
    )
