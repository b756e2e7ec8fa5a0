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
- robustness to the sampling rate: bucket medians make one scrape every second and
  one a minute say the same thing, and an outlier moves only its bucket's median.

**Autocorrelation.** Scraped metrics are autocorrelated: an AR(1) process with φ = 0.9
at 10 s still has φ ≈ 0.7 between 30 s bucket medians, and the plain Mann–Kendall
test then calls 40 % of flat hours a trend. The variance of S is corrected as Hamed &
Rao (1998) do, ``Var*(S) = Var(S) · n/n*`` with
``n/n* = 1 + 2/(n(n−1)(n−2)) · Σ_k (n−k)(n−k−1)(n−k−2) ρ_s(k)``, where the rank
autocorrelations ``ρ_s(k) = (6/π)·asin(r^k / 2)`` come from an AR(1) fitted to the
Theil–Sen residuals: ``r`` their lag-1 autocorrelation, bias-corrected by
``(1 + 4r)/n`` (Kendall 1954) and clipped to [0, 0.99]. Why not the textbook
estimate of every lag's ρ (``pymannkendall.hamed_rao_modification_test``): on 120
medians of AR(1) φ = 0.9 hours it still rejects 20–22 % of flat windows, because
each lag's estimate is biased low and the insignificant ones are dropped; pre-whitening
(``pre_whitening_modification_test``) holds 4 % but finds a 4σ drift only two times
in three. The AR(1) form holds 5 % and finds that drift every time (measured on 300
generated windows each; ``scripts/bench_judgment.py`` measures whole reports).

**Step or slope.** A level shift is no trend: when a dominant change point explains the
window better than a straight line (BIC of a level before it and a line after it against
one line, on the bucket medians), the shift is reported as such (``level_shift``) and the
trend is measured only over the samples after it. A segment shorter than
``MIN_SLOPE_SPAN_S`` carries no rate per hour: the trend is ``unknown`` and ``note``
says why.

**Many metrics at once.** One report tests up to 20 metrics; at p < 0.05 each, most
healthy reports would hold a false trend. ``control_false_discoveries`` applies
Benjamini–Hochberg (``scipy.stats.false_discovery_control``) across a report's tests
and decides every verdict on its q-value.

With n points (t_i, y_i), i < j, and sgn the sign function:

- slope = median{(y_j − y_i) / (t_j − t_i) : t_j ≠ t_i}, reported per hour, with Sen's
  (1968) 95 % interval from the ranks of the pairwise slopes at ±1.96·√Var*(S);
- S = Σ sgn(t_j − t_i)·sgn(y_j − y_i); Kendall's tau = S / (n(n − 1)/2);
- Var(S) = (v0 − vt − vu)/18 + v1/(2n(n − 1)) + v2/(9n(n − 1)(n − 2)), with
  v0 = n(n − 1)(2n + 5), vt = Σ t(t − 1)(2t + 5) over groups of t tied times,
  vu = the same over groups of u tied values, v1 = Σt(t − 1)·Σu(u − 1) and
  v2 = Σt(t − 1)(t − 2)·Σu(u − 1)(u − 2) (Kendall 1970; with distinct times, as
  after bucketing, only the usual Mann–Kendall tie term vu remains);
- Z = (S − sgn S)/√Var*(S) (continuity correction), two-sided p = erfc(|Z|/√2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from scipy import stats

from agent.analysis.catalog import Direction
from agent.analysis.series import (
    MAX_BUCKETS,
    FloatArray,
    Series,
    bucketize,
    finite,
    median,
    sig,
)
from protocols.messages import ChangePoint, Trend, TrendDetail

METHOD = "theil_sen+mann_kendall"
MIN_SAMPLES = 8
"""Below this many samples the Mann–Kendall test cannot reach p < 0.05 with any margin."""
ALPHA = 0.05
MIN_SLOPE_SPAN_S = 900.0
"""A rate per hour from less than 15 minutes of data is an extrapolation ×4 and more of
whatever the last minutes did: below this span the trend is ``unknown``, said so."""
MAX_STEPS_FOR_SHIFT = 2
"""A window with more level changes than this is cyclic or volatile, not one step: its
trend is measured over the whole window (the autocorrelation correction covers cycles)."""
_SECONDS_PER_HOUR = 3600.0
_Z95 = 1.959963984540054
_MAX_AR1 = 0.99


@dataclass(frozen=True, slots=True)
class TrendTest:
    """One Theil–Sen + corrected Mann–Kendall test over points (offsets in seconds)."""

    slope: float
    """Per second; NaN when no two points are apart in time."""
    slope_low: float
    slope_high: float
    """Sen's 95 % interval of the slope, from the corrected variance."""
    s: float
    var: float
    """Var(S) as if the points were independent."""
    inflation: float
    """n/n*: how much the lag-1 autocorrelation ``r`` widens Var(S)."""
    r: float | None
    tau: float
    p: float

    @property
    def rising(self) -> bool | None:
        return None if self.s == 0.0 else self.s > 0.0


@dataclass(frozen=True, slots=True)
class TrendResult:
    """The verdict and the numbers behind it; ``slope_per_hour`` is in the metric's unit.

    ``samples`` counts the raw samples of the window; ``points`` how many the statistics
    ran on (bucket medians when ``bucketed``), None when they did not run. With a
    ``level_shift`` the statistics describe only the segment after it.
    """

    trend: Trend
    samples: int
    slope_per_hour: float | None = None
    kendall_tau: float | None = None
    p_value: float | None = None
    """Two-sided Mann–Kendall p, corrected for autocorrelation."""
    points: int | None = None
    bucketed: bool = False
    slope_low_per_hour: float | None = None
    slope_high_per_hour: float | None = None
    autocorrelation: float | None = None
    """Lag-1 autocorrelation of the residuals (AR(1) fit) the variance was corrected for."""
    variance_inflation: float = 1.0
    q_value: float | None = None
    """Benjamini–Hochberg q across the report's tests; the verdict follows it when set."""
    rising: bool | None = None
    direction: Direction = "lower_is_better"
    level_shift: ChangePoint | None = None
    span_s: float | None = None
    """Seconds of data the slope was measured over (after the shift, if any)."""
    note: str | None = None
    """Why there is no verdict or slope, when there is none."""

    @property
    def declining(self) -> bool:
        return self.trend == "declining"

    @property
    def method(self) -> str:
        """``METHOD`` and what it ran on: ``… over 120 bucket medians`` or ``… over 12 samples``."""
        if self.points is None:
            return METHOD
        kind = "bucket medians" if self.bucketed else "samples"
        after = " after the level shift" if self.level_shift is not None else ""
        return f"{METHOD} over {self.points} {kind}{after}"

    def decided(self, q: float, alpha: float = ALPHA) -> TrendResult:
        """The same test with its verdict decided on the report-wide q-value ``q``."""
        return dataclasses.replace(
            self, q_value=q, trend=_verdict(q, self.rising, self.direction, alpha)
        )

    def to_detail(self) -> TrendDetail:
        """The wire form, rounded to six significant digits (noise beyond that is not data)."""
        return TrendDetail(
            method=self.method,
            samples=self.samples,
            slope_per_hour=sig(self.slope_per_hour),
            kendall_tau=sig(self.kendall_tau),
            p_value=sig(self.p_value),
            q_value=sig(self.q_value),
            slope_low_per_hour=sig(self.slope_low_per_hour),
            slope_high_per_hour=sig(self.slope_high_per_hour),
            autocorrelation=sig(self.autocorrelation, 4),
            variance_inflation=sig(self.variance_inflation, 4),
            span_s=sig(self.span_s),
            level_shift=self.level_shift,
            note=self.note,
        )


def _verdict(p: float, rising: bool | None, direction: Direction, alpha: float) -> Trend:
    if not (math.isfinite(p) and p < alpha) or rising is None:
        return "stable"
    worse = rising if direction == "lower_is_better" else not rising
    return "declining" if worse else "improving"


def hours_to_reach(
    current: float,
    level: float,
    direction: Direction,
    slope_per_hour: float | None,
    interval: tuple[float | None, float | None] = (None, None),
) -> tuple[float, float | None, float | None] | None:
    """(expected, soonest, latest) hours until ``current`` reaches ``level`` at the slope.

    The one reading of "when will it get there" for breaches, triggers and alerts: a
    lower-is-better metric moving up towards ``level``, a higher-is-better one moving
    down; 0 when it is there already. None when the slope is missing, not finite or
    points away. ``interval`` is the slope's (low, high) per hour: soonest and latest
    come from its ends, latest None when the interval reaches a slope that never gets
    there (it may never).
    """
    if slope_per_hour is None or not (math.isfinite(slope_per_hour) and math.isfinite(current)):
        return None
    worse = 1.0 if direction == "lower_is_better" else -1.0
    gap = max((level - current) * worse, 0.0)
    rate = slope_per_hour * worse
    if not rate > 0.0:
        return None
    expected = gap / rate
    if not math.isfinite(expected):
        return None
    ends = [x * worse for x in interval if x is not None and math.isfinite(x)]
    fastest = max(ends, default=rate)
    slowest = min(ends, default=rate)
    return (
        expected,
        gap / fastest if fastest > 0.0 else None,
        gap / slowest if slowest > 0.0 else None,
    )


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

    ``t`` must be sorted, as a ``Series``' times are. The variance assumes independent
    points: ``trend_test`` corrects it for autocorrelation.
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


def _pair_slopes(t: FloatArray, y: FloatArray) -> FloatArray:
    """The slopes between every two points at distinct times (halved differences: no overflow)."""
    i, j = _pairs(y.size)
    dt = t[j] - t[i]
    apart = dt != 0.0
    with np.errstate(all="ignore"):
        dy = y[j] * 0.5 - y[i] * 0.5
        if not bool(apart.all()):
            dy, dt = dy[apart], dt[apart]
        slopes: FloatArray = dy / dt * 2.0
    return slopes


def theil_sen(t: FloatArray, y: FloatArray) -> float:
    """Median of the slopes between every two points at distinct times (NaN if none)."""
    slopes = _pair_slopes(t, y)
    if slopes.size == 0:
        return math.nan
    with np.errstate(all="ignore"):
        return median(slopes)


def _ar1(t: FloatArray, y: FloatArray, slope: float) -> float | None:
    """Bias-corrected lag-1 autocorrelation of the Theil–Sen residuals, in [0, 0.99].

    None when the residuals are all equal up to rounding (a perfect line: nothing to
    correct for) or not finite. Values are scaled by their largest magnitude first: r is
    scale-free and no residual of values near ±1.8e308 overflows.
    """
    n = y.size
    scale = float(np.max(np.abs(y)))
    if n < 3 or not math.isfinite(slope) or scale == 0.0 or not math.isfinite(scale):
        return None
    with np.errstate(all="ignore"):
        residual = y / scale - (slope / scale) * t
        residual = residual - median(residual)
        energy = float(np.dot(residual, residual))
        spread = y / scale - float(np.mean(y / scale))
        # Residuals at rounding level: a perfect line, whose "autocorrelation" is noise.
        if not (math.isfinite(energy) and energy > 1e-12 * float(np.dot(spread, spread))):
            return None
        r = float(np.dot(residual[1:], residual[:-1])) / energy
    if not math.isfinite(r):
        return None
    return min(max(r + (1.0 + 4.0 * r) / n, 0.0), _MAX_AR1)


def hamed_rao_inflation(n: int, r: float | None) -> float:
    """n/n* of Hamed & Rao (1998) for an AR(1) with lag-1 autocorrelation ``r`` (≥ 1)."""
    if r is None or r <= 0.0 or n < 3:
        return 1.0
    k = np.arange(1, n, dtype=np.float64)
    rank_rho = (6.0 / math.pi) * np.arcsin(r**k / 2.0)
    weights = (n - k) * (n - k - 1.0) * (n - k - 2.0)
    return max(1.0, 1.0 + 2.0 / (n * (n - 1.0) * (n - 2.0)) * float(np.dot(weights, rank_rho)))


def trend_test(points: Series) -> TrendTest:
    """Theil–Sen slope with Sen's interval and the autocorrelation-corrected Mann–Kendall test.

    ``points`` are the bucket medians (or few raw samples) of one window; times are taken
    as offsets from the first, so epoch seconds lose no precision.
    """
    with np.errstate(all="ignore"):  # extreme inputs give inf/NaN, reported as None upstream
        t = points.ts - points.ts[0]
        y = points.values
        slopes = np.sort(_pair_slopes(t, y))
        slope = median(slopes) if slopes.size else math.nan
        s, var, tau = mann_kendall(t, y)
    r = _ar1(t, y, slope)
    inflation = hamed_rao_inflation(y.size, r)
    corrected = var * inflation
    p = math.nan
    if corrected > 0.0 and math.isfinite(s):
        z = (s - math.copysign(1.0, s)) / math.sqrt(corrected) if s != 0.0 else 0.0
        p = math.erfc(abs(z) / math.sqrt(2.0))
    low = high = math.nan
    if slopes.size and corrected > 0.0:
        reach = _Z95 * math.sqrt(corrected)
        ranks = np.clip([(slopes.size - reach) / 2.0 - 1.0, (slopes.size + reach) / 2.0], 0, None)
        with np.errstate(all="ignore"):
            low, high = (float(x) for x in np.interp(ranks, np.arange(slopes.size), slopes))
    return TrendTest(
        slope=slope, slope_low=low, slope_high=high, s=s, var=var, inflation=inflation,
        r=r, tau=tau, p=p,
    )  # fmt: skip


def _bic(sse: float, m: int, k: int) -> float:
    return m * math.log(max(sse, 1e-300) / m) + k * math.log(m)


def explaining_shift(points: Series, change_points: Sequence[ChangePoint]) -> ChangePoint | None:
    """The level shift that explains the window better than a straight line, if one does.

    Candidates are the dominant change points (a shift at least half the largest one: a
    ramp after a step is cut by PELT into a staircase whose small treads are not steps);
    more than ``MAX_STEPS_FOR_SHIFT`` of them is a cycle or volatility, not a step. Each
    candidate is fitted on the bucket medians as a level before it and a line after it
    (4 parameters); the best of them is kept when it beats one line (2) by BIC. ``points``
    are the window's bucket medians (``bucketize``), as the trend uses them.
    """
    if not change_points:
        return None
    largest = max(abs(c.shift) for c in change_points)
    dominant = [c for c in change_points if abs(c.shift) >= 0.5 * largest]
    if len(dominant) > MAX_STEPS_FOR_SHIFT:
        return None
    m = len(points)
    scale = float(np.max(np.abs(points.values)))
    if m < 8 or scale == 0.0 or not math.isfinite(scale):
        return None
    y = points.values / scale
    with np.errstate(all="ignore"):
        t = (points.ts - points.ts[0]) / max(float(points.ts[-1] - points.ts[0]), 1e-9)
        line = float(np.sum((y - np.polyval(np.polyfit(t, y, 1), t)) ** 2))
    best: tuple[float, ChangePoint] | None = None
    for shift in dominant:
        after = points.ts >= shift.at.timestamp()
        if int(after.sum()) < 2 or int((~after).sum()) < 1:
            continue
        with np.errstate(all="ignore"):
            fit = np.full(m, float(y[~after].mean()))
            fit[after] = np.polyval(np.polyfit(t[after], y[after], 1), t[after])
            sse = float(np.sum((y - fit) ** 2))
        if math.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, shift)
    if best is None or not math.isfinite(line):
        return None
    return best[1] if _bic(best[0], m, 4) < _bic(line, m, 2) else None


def assess_trend(
    series: Series,
    direction: Direction,
    *,
    min_samples: int = MIN_SAMPLES,
    alpha: float = ALPHA,
    change_points: Sequence[ChangePoint] = (),
) -> TrendResult:
    """Theil–Sen slope per hour and the corrected Mann–Kendall test over ``series``.

    ``unknown`` when there are fewer than ``min_samples`` raw samples, when the value
    is a bare number, when all samples share one time, or when the data (after a level
    shift that explains the window, see ``explaining_shift``) spans less than
    ``MIN_SLOPE_SPAN_S``. A constant series is ``stable`` with slope 0. Never emits
    warnings and never returns inf or NaN: a figure that is not finite is None.
    """
    n = len(series)
    base = TrendResult(trend="unknown", samples=n, direction=direction)
    if series.scalar or n < min_samples or n == 0:
        return base
    if bool(series.ts[-1] == series.ts[0]):  # sorted: first == last means one instant
        return base
    whole = bucketize(series, MAX_BUCKETS)
    shift = explaining_shift(whole, change_points) if change_points else None
    segment = series
    if shift is not None:
        keep = series.ts >= shift.at.timestamp()
        segment = Series(ts=series.ts[keep], values=series.values[keep])
    with np.errstate(all="ignore"):
        span = float(segment.ts[-1] - segment.ts[0]) if len(segment) else 0.0
    base = dataclasses.replace(base, level_shift=shift, span_s=finite(span))
    since = "since the level shift" if shift is not None else "in the window"
    if len(segment) < min_samples:
        why = f"{len(segment)} samples {since}: a trend needs {min_samples}"
        return dataclasses.replace(base, note=why)
    if not span >= MIN_SLOPE_SPAN_S:
        why = (
            f"{span / 60.0:.3g} min of data {since}: a rate per hour needs "
            f"{MIN_SLOPE_SPAN_S / 60.0:g} min"
        )
        return dataclasses.replace(base, note=why)
    points = whole if shift is None else bucketize(segment, MAX_BUCKETS)
    m = len(points)
    base = dataclasses.replace(base, points=m, bucketed=points is not segment)
    if bool(np.all(points.values == points.values[0])):
        return dataclasses.replace(base, trend="stable", slope_per_hour=0.0)
    test = trend_test(points)
    return dataclasses.replace(
        base,
        trend=_verdict(test.p, test.rising, direction, alpha),
        slope_per_hour=finite(test.slope * _SECONDS_PER_HOUR),
        slope_low_per_hour=finite(test.slope_low * _SECONDS_PER_HOUR),
        slope_high_per_hour=finite(test.slope_high * _SECONDS_PER_HOUR),
        kendall_tau=finite(test.tau),
        p_value=finite(test.p),
        autocorrelation=test.r,
        variance_inflation=test.inflation,
        rising=test.rising,
    )


def control_false_discoveries(
    trends: Mapping[str, TrendResult], alpha: float = ALPHA
) -> dict[str, TrendResult]:
    """Every trend with a p-value re-decided on its Benjamini–Hochberg q across ``trends``.

    One report tests up to 20 metrics: at p < 0.05 each, a healthy report would carry a
    false trend more often than not. The others are returned as they are.
    """
    tested = [name for name, t in trends.items() if t.p_value is not None and t.points]
    out = dict(trends)
    if not tested:
        return out
    ps = np.array([trends[name].p_value for name in tested], dtype=np.float64)
    qs = stats.false_discovery_control(np.clip(ps, 0.0, 1.0), method="bh")
    for name, q in zip(tested, qs.tolist(), strict=True):
        out[name] = trends[name].decided(float(q), alpha)
    return out
