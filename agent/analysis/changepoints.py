"""Level shifts (PELT over per-bucket medians) and single-sample outliers (robust z).

Why PELT and not e-divisive: PELT minimises the penalised least-squares cost over
every segmentation with a minimum segment length, exactly, in linear expected time,
and deterministically — e-divisive needs a permutation test per change, so the same
window could get two answers. The PELT here is ruptures' algorithm (a test checks the
two agree on random signals) vectorised over the candidate set with an O(1) segment
cost from prefix sums: ruptures' pure-Python inner loop cost ~40 ms per 200-point
series, which made change points 30× the price of the rest of an analysis.

Why on bucket medians: at most ``max_buckets`` points bound the O(n²) worst case,
and a median per bucket shrugs off a spike a mean would turn into a fake level.

All arithmetic is on values divided by their largest magnitude, so no sample near
±1.8e308 overflows; no NaN or inf leaves this module.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from agent.analysis.catalog import Direction
from agent.analysis.series import MAX_BUCKETS, FloatArray, Series, run_order_stats
from protocols.messages import ChangePoint, Outlier

IntArray = npt.NDArray[np.intp]

_MAD_TO_SD = 1.4826
"""MAD × this estimates the standard deviation of normal data."""
_MEAN_AD_TO_SD = math.sqrt(math.pi / 2.0)
"""Mean absolute deviation × this estimates it too (Iglewicz & Hoaglin's fallback for MAD 0)."""
_PEN_FACTOR = 3.0
_SIGMA_FLOOR = 1e-6
"""Noise floor relative to the medians' spread, so piecewise-constant data still segments."""
RATIO_CAP = 1e6
"""Largest |robust z| or |shift %| reported: beyond that the number means nothing more."""
_EPOCH_MIN = (datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
_EPOCH_MAX = (datetime(9999, 12, 31, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOAT_MAX = float(np.finfo(np.float64).max)


def _utc(ts: float) -> datetime:
    """An aware UTC time; a time outside datetime's years 1–9999 is clamped, not raised."""
    return _EPOCH + timedelta(seconds=min(max(ts, _EPOCH_MIN), _EPOCH_MAX))


def _sig(x: float) -> float:
    """Six significant digits (as ``TrendResult.to_detail``): noise beyond that is not data."""
    return float(f"{x:.6g}")


def _cap(x: float) -> float:
    return min(max(x, -RATIO_CAP), RATIO_CAP)


def pelt(signal: FloatArray, penalty: float, min_size: int) -> list[int]:
    """Exact PELT (Killick, Fearnhead & Eckley 2012) for the l2 cost.

    Minimises Σ cost(segment) + ``penalty`` per segment, every segment at least
    ``min_size`` long; cost = squared deviation from the segment mean, O(1) from prefix
    sums. Returns the segment ends, the last being ``len(signal)`` (ruptures' convention;
    a test checks the result equals ``ruptures.Pelt``). PELT's pruning (K = 0 for l2)
    keeps the candidate set to a handful, so plain floats beat numpy calls per point.
    """
    n = int(signal.size)
    s1 = np.concatenate(([0.0], np.cumsum(signal))).tolist()
    s2 = np.concatenate(([0.0], np.cumsum(signal * signal))).tolist()
    best = [math.inf] * (n + 1)
    best[0] = -penalty
    previous = [0] * (n + 1)
    candidates = [0]
    for end in range(min_size, n + 1):
        newest = end - min_size
        if newest >= min_size:
            candidates.append(newest)
        a1, a2 = s1[end], s2[end]
        reach = []
        for start in candidates:
            total = a1 - s1[start]
            cost = a2 - s2[start] - total * total / (end - start)
            reach.append(best[start] + (cost if cost > 0.0 else 0.0))
        i = min(range(len(reach)), key=reach.__getitem__)
        best[end] = reach[i] + penalty
        previous[end] = candidates[i]
        candidates = [c for c, r in zip(candidates, reach, strict=True) if r <= best[end]]
    ends: list[int] = []
    end = n
    while end > 0:
        ends.append(end)
        end = previous[end]
    return ends[::-1]


def _bucket_medians(series: Series, max_buckets: int) -> tuple[FloatArray, FloatArray, IntArray]:
    """Equal-width time buckets: (first time, median, first sample index) of each non-empty one.

    Values must already be scaled into [-1, 1] (a median of two is a mean of two).
    Private until ``series.bucketize`` takes over; the sample index maps a bucket
    range back to its raw samples.
    """
    ts, values = series.ts, series.values
    half_span = ts[-1] * 0.5 - ts[0] * 0.5  # halves: a span of extreme times cannot overflow
    if half_span > 0.0:
        pos = (ts * 0.5 - ts[0] * 0.5) / half_span * max_buckets
        idx = np.clip(np.floor(pos), 0, max_buckets - 1).astype(np.intp)
    else:
        idx = np.zeros(ts.size, dtype=np.intp)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])  # idx is sorted: ts is
    counts = np.diff(np.r_[starts, ts.size])
    low, high = run_order_stats(values, starts, counts)
    return ts[starts], (low + high) * 0.5, starts


def _mad(x: FloatArray) -> float:
    return float(np.median(np.abs(x - np.median(x))))


def _segment_median(values: FloatArray, starts: IntArray, lo: int, hi: int) -> float:
    """Median of the samples (not the bucket medians) in buckets ``lo:hi``."""
    end = starts[hi] if hi < starts.size else values.size
    return float(np.median(values[starts[lo] : end]))


def _raw_level(values: FloatArray, starts: IntArray, lo: int, hi: int, fallback: float) -> float:
    """The segment's median in the metric's unit, exactly as the samples have it.

    The median of two values near ±1.8e308 overflows: then the scaled median × scale.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        level = _segment_median(values, starts, lo, hi)
    return level if math.isfinite(level) else fallback


def _drop_weak(
    breaks: list[int], scaled: FloatArray, starts: IntArray, *, floor: float, pct: float
) -> tuple[list[int], list[float]]:
    """Merge away, weakest first, changes below ``floor`` or ``pct``·|before|.

    Returns the surviving breaks and the median level of each segment between them,
    re-measured after every merge so ``before``/``after`` describe the final segments.
    """
    breaks = list(breaks)
    known: dict[tuple[int, int], float] = {}  # a merge changes one segment: keep the others

    def level(a: int, b: int) -> float:
        if (a, b) not in known:
            known[a, b] = _segment_median(scaled, starts, a, b)
        return known[a, b]

    while True:
        bounds = [0, *breaks, starts.size]
        levels = [level(a, b) for a, b in itertools.pairwise(bounds)]
        shifts = [abs(after - before) for before, after in itertools.pairwise(levels)]
        weak = [
            (shift, i)
            for i, shift in enumerate(shifts)
            if shift < floor or shift < pct * abs(levels[i])
        ]
        if not weak:
            return breaks, levels
        del breaks[min(weak)[1]]


def detect_change_points(
    series: Series,
    direction: Direction,
    *,
    max_buckets: int = MAX_BUCKETS,
    min_segment: int = 5,
    min_shift_sigmas: float = 3.0,
    min_shift_pct: float = 5.0,
) -> list[ChangePoint]:
    """Level shifts in ``series``, oldest first; [] with fewer than 2·``min_segment`` buckets.

    Noise σ is the robust spread of the bucket medians' first differences
    (MAD × 1.4826 / √2: a level shift is one large difference, which MAD ignores).
    The penalty is 3σ²·ln n per change rather than BIC's 2σ²·ln n: on white noise
    BIC splits 4–8 % of windows of 60–200 points, 3× under 1.5 %, and any shift we
    would report (≥ 3σ with ≥ 5 buckets a side: a gain ≥ 22.5σ²) still beats it up
    to n = 1 800. A change is kept only if ``after − before`` (medians of the raw
    samples of the neighbouring segments) is at least ``min_shift_sigmas``·σ and
    ``min_shift_pct`` % of |before|; the weakest failing one is merged away and the
    rest re-measured until all pass.
    """
    if max_buckets < 2 or min_segment < 1:
        raise ValueError("max_buckets must be ≥ 2 and min_segment ≥ 1")
    n = len(series)
    if series.scalar or n < 2 * min_segment:
        return []
    scale = float(np.max(np.abs(series.values)))
    if scale == 0.0:
        return []
    scaled = series.values / scale
    ts = np.clip(series.ts, _EPOCH_MIN, _EPOCH_MAX)
    bucket_ts, medians, starts = _bucket_medians(Series(ts=ts, values=scaled), max_buckets)
    m = medians.size
    if m < 2 * min_segment:
        return []
    centred = medians - float(np.median(medians))
    spread = float(np.max(np.abs(centred)))
    if spread == 0.0:
        return []
    sigma = max(_mad(np.diff(medians)) * _MAD_TO_SD / math.sqrt(2.0), _SIGMA_FLOOR * spread)
    ends = pelt(centred / sigma, _PEN_FACTOR * math.log(m), min_segment)
    breaks = ends[:-1]  # the last "breakpoint" is the end of the signal

    breaks, levels = _drop_weak(
        breaks, scaled, starts, floor=min_shift_sigmas * sigma, pct=min_shift_pct / 100.0
    )
    bounds = [0, *breaks, m]
    points: list[ChangePoint] = []
    for i, b in enumerate(breaks):
        before_s, after_s = levels[i], levels[i + 1]
        before = _raw_level(series.values, starts, bounds[i], b, before_s * scale)
        after = _raw_level(series.values, starts, b, bounds[i + 2], after_s * scale)
        # Levels of opposite sign near ±1.8e308 differ by more than a float holds: clamp.
        shift = min(max(after - before, -_FLOAT_MAX), _FLOAT_MAX)
        rising = after_s > before_s
        points.append(
            ChangePoint(
                at=_utc(float(bucket_ts[b])),
                before=before,
                after=after,
                shift=shift,
                shift_pct=(
                    None
                    if before == 0.0 or before_s == 0.0
                    else _sig(_cap((after_s - before_s) / abs(before_s) * 100.0))
                ),
                worse=rising if direction == "lower_is_better" else not rising,
            )
        )
    return points


def find_outliers(
    series: Series, *, threshold: float = 5.0, max_reported: int = 10
) -> list[Outlier]:
    """Samples at least ``threshold`` robust SDs from the median, most extreme first.

    The SD is MAD × 1.4826. When more than half the samples share one value MAD is 0
    and every other sample would be infinitely far; Iglewicz & Hoaglin's fallback
    (mean absolute deviation × √(π/2)) gives a finite z instead, so a lone spike in
    a flat series is still reported with a number a report can carry. |z| is capped
    at ``RATIO_CAP``. A scalar has no time and no neighbours: [].
    """
    if series.scalar or len(series) == 0 or max_reported <= 0:
        return []
    scale = float(np.max(np.abs(series.values)))
    if scale == 0.0:
        return []
    scaled = series.values / scale
    deviation = scaled - float(np.median(scaled))
    absolute = np.abs(deviation)
    spread = float(np.median(absolute)) * _MAD_TO_SD  # MAD, reusing the median above
    if spread == 0.0:
        spread = float(np.mean(absolute)) * _MEAN_AD_TO_SD
    if spread == 0.0:
        return []
    with np.errstate(over="ignore"):  # a subnormal spread: inf, capped below
        z = np.clip(deviation / spread, -RATIO_CAP, RATIO_CAP)
    hits = np.flatnonzero(absolute >= threshold * spread)
    # Most extreme first; equal |z| in time order (stable sort on the time-sorted indices).
    hits = hits[np.argsort(-np.abs(z[hits]), kind="stable")][:max_reported]
    return [
        Outlier(
            at=_utc(float(series.ts[i])),
            value=float(series.values[i]),
            robust_z=_sig(float(z[i])),
        )
        for i in hits
    ]
