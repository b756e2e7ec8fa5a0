"""Time series as numpy arrays, windows and the statistics ``current`` is computed with.

Pure: a window is measured back from the latest sample, never from the clock, so
the same data always gives the same answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from agent.errors import InvalidParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
_FLOAT_MAX = float(np.finfo(np.float64).max)

_WINDOW = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNIT_SECONDS: Mapping[str, float] = MappingProxyType(
    {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
)


def parse_window(window: str) -> float:
    """Seconds in a duration such as ``30s``, ``15m``, ``1h``, ``7d``, ``2w`` (wire ``Window``).

    Raises ``InvalidParams`` for anything else, so a bad window is the caller's error.
    """
    match = _WINDOW.match(window)
    if match is None:
        raise InvalidParams(f"window {window!r} is not a duration like 15m, 1h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """Samples sorted by time: ``ts`` in epoch seconds, ``values`` in the metric's unit.

    A bare number given inline is one sample without a time: ``scalar`` is True and
    its ``ts`` is NaN, so nothing mistakes it for a point on a time axis.
    """

    ts: FloatArray
    values: FloatArray
    scalar: bool = False

    def __len__(self) -> int:
        return int(self.values.size)


InlineValue = float | Sequence[tuple[datetime | float, float]]


def epoch_seconds(ts: datetime | float) -> float:
    """Unix seconds of a wire timestamp: an aware ``datetime`` or epoch seconds already.

    A naive ``datetime`` raises ``InvalidParams``: it would be read in the host's zone.
    """
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise InvalidParams(f"timestamp {ts.isoformat()} has no UTC offset")
        return ts.timestamp()
    return float(ts)


def from_inline(value: InlineValue) -> Series:
    """A ``Series`` from one entry of ``params.metrics``: a number or ``[ts, value]`` pairs.

    Non-finite values or times raise ``InvalidParams``: the wire rejects them, and a
    caller passing them directly is told rather than handed a NaN report.
    """
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidParams(f"value {number!r} is not finite")
        return Series(ts=np.array([math.nan]), values=np.array([number]), scalar=True)
    ts = np.array([epoch_seconds(t) for t, _ in value], dtype=np.float64)
    values = np.array([float(v) for _, v in value], dtype=np.float64)
    if not (np.isfinite(ts).all() and np.isfinite(values).all()):
        raise InvalidParams("a sample's time or value is not finite")
    order = np.argsort(ts, kind="stable")
    return Series(ts=ts[order], values=values[order])


def window(series: Series, seconds: float) -> Series:
    """The samples no older than ``seconds`` before the latest one (a scalar is kept as is)."""
    if series.scalar or len(series) == 0:
        return series
    keep = series.ts >= series.ts[-1] - seconds
    return Series(ts=series.ts[keep], values=series.values[keep])


@overload
def sig(x: float, digits: int = 6) -> float: ...
@overload
def sig(x: float | None, digits: int = 6) -> float | None: ...


def sig(x: float | None, digits: int = 6) -> float | None:
    """``x`` to ``digits`` significant digits (noise beyond that is not data); None stays.

    The one rounding of reported figures (trends, change points, SLOs): six digits unless
    a caller asks for fewer. A NaN or an infinity stays what it is.
    """
    return None if x is None else float(f"{x:.{digits}g}")


def finite(x: float | None) -> float | None:
    """``x`` when finite, else None: the wire carries no inf or NaN."""
    return x if x is not None and math.isfinite(x) else None


def p95(values: FloatArray) -> float:
    """The 95th percentile with linear interpolation (numpy's default, Hyndman–Fan type 7).

    Interpolating between values near ±1.8e308 overflows; halving first cannot, and the
    percentile of the halves, doubled, is the same number.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        result = float(np.percentile(values, 95.0))
        if not math.isfinite(result):
            result = float(np.percentile(values * 0.5, 95.0)) * 2.0
    return result


def mean(values: FloatArray) -> float:
    """The arithmetic mean; a sum that would overflow is taken over values divided by n first."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = float(np.mean(values))
        if not math.isfinite(result):
            # The sum of the parts can still round past the largest float: clamp to it.
            result = float(np.clip(np.sum(values / values.size), -_FLOAT_MAX, _FLOAT_MAX))
    return result


def median(x: FloatArray) -> float:
    """The median by partition (``np.median`` costs several times more on a few thousand
    values); the middle pair is averaged by halves so values near ±1.8e308 cannot overflow."""
    half = x.size // 2
    if x.size % 2:
        return float(np.partition(x, half)[half])
    low, high = np.partition(x, (half - 1, half))[half - 1 : half + 1]
    return float(low * 0.5 + high * 0.5)


def last(values: FloatArray) -> float:
    """The latest sample (values are sorted by time)."""
    return float(values[-1])


STATISTICS: Mapping[str, Callable[[FloatArray], float]] = MappingProxyType(
    {"p95": p95, "mean": mean, "last": last}
)
"""Statistic name (as reported in ``MetricPerformance.statistic``) → its function."""


MAX_BUCKETS = 120
"""Default bucket count of ``bucketize``: 120 points keep a trend's cost flat at any rate."""


def _midpoint(a: FloatArray, b: FloatArray) -> FloatArray:
    """(a + b) / 2 element-wise without overflowing near ±1.8e308 (same rounding elsewhere)."""
    return np.where(a == b, a, a * 0.5 + b * 0.5)


PARTITION_RUN = 256
"""Samples per bucket from which a partition per bucket beats one sort of everything."""


def run_order_stats(
    values: FloatArray, starts: IntArray, counts: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper middle values of each contiguous run (their mean is the run's median).

    Long runs (dense data): one ``np.partition`` per run, O(n) in all. Short runs: one
    sort by value then stably by run (a radix sort on small integers), which beats the
    per-run call overhead. Same numbers either way.
    """
    lower, upper = starts + (counts - 1) // 2, starts + counts // 2
    if values.size >= PARTITION_RUN * starts.size:
        lo = np.empty(starts.size)
        hi = np.empty(starts.size)
        for k, (start, count) in enumerate(zip(starts.tolist(), counts.tolist(), strict=True)):
            a, b = (count - 1) // 2, count // 2
            part = np.partition(values[start : start + count], (a, b) if a != b else a)
            lo[k], hi[k] = part[a], part[b]
        return lo, hi
    run = np.repeat(np.arange(starts.size), counts)
    by_value_order = np.argsort(values)
    small = run.astype(np.min_scalar_type(max(starts.size - 1, 0)))
    by_value = values[by_value_order[np.argsort(small[by_value_order], kind="stable")]]
    return by_value[lower], by_value[upper]


def bucketize(series: Series, max_buckets: int = MAX_BUCKETS) -> Series:
    """At most ``max_buckets`` points: the median of each equal-width time bucket.

    Buckets split ``[first ts, last ts]`` into equal widths (the last one closed); each
    non-empty bucket gives one point, its median value at the median time of its
    samples, so the points stay strictly increasing in time. Medians, not means, so
    one wild sample moves its bucket no more than a few ordinary ones would. A series
    of at most ``max_buckets`` samples, or a scalar, is returned unchanged.
    """
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be at least 1, got {max_buckets}")
    n = len(series)
    if series.scalar or n <= max_buckets:
        return series
    ts, values = series.ts, series.values
    # Halves cannot overflow, so the span and each offset stay finite for any finite ts.
    half_span = ts[-1] * 0.5 - ts[0] * 0.5
    if half_span > 0.0:
        position = (ts * 0.5 - ts[0] * 0.5) / half_span * max_buckets
        bucket = np.minimum(position.astype(np.int64), max_buckets - 1)
    else:
        bucket = np.zeros(n, dtype=np.int64)
    # Samples are sorted by time, so each bucket is one contiguous run of indices.
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, n])
    lower = starts + (counts - 1) // 2
    upper = starts + counts // 2
    low_values, high_values = run_order_stats(values, starts, counts)
    return Series(
        ts=_midpoint(ts[lower], ts[upper]),
        values=_midpoint(low_values, high_values),
    )


# --- counters (Prometheus semantics) ------------------------------------------------
# A counter only grows; a drop means the process restarted and counted again from 0,
# so the sample after a drop counts in full as increase (Prometheus' ``increase``
# without its extrapolation to the window's edges: only what was observed counts).


def _increments(series: Series) -> FloatArray:
    if series.scalar:
        raise InvalidParams("a bare number is no counter: it needs samples over time")
    values = series.values
    with np.errstate(over="ignore", invalid="ignore"):
        step = np.diff(values)
        return np.where(step >= 0.0, step, values[1:])


def counter_increase(series: Series) -> float:
    """Total increase of a counter over the series, a reset counting the new value in full.

    ``[0, 10, 20, 5, 15]`` → 10 + 10 + 5 + 10 = 35. Fewer than two samples → 0.0.
    """
    if len(series) < 2 and not series.scalar:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sum(_increments(series)))


def counter_rate(series: Series) -> Series:
    """Per-second rate between consecutive samples, stamped at the later one.

    Pairs sharing one time have no rate and are left out; resets as ``counter_increase``.
    """
    if len(series) < 2 and not series.scalar:
        return Series(ts=np.empty(0), values=np.empty(0))
    increments = _increments(series)
    dt = np.diff(series.ts)
    apart = dt > 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        rate = increments[apart] / dt[apart]
    return Series(ts=series.ts[1:][apart], values=rate)


def mean_rate(series: Series) -> float | None:
    """Increase per second over the series' span; None when it spans no time.

    None rather than an error: one sample (or one instant) is too little data, which
    the caller reports as such, not a mistake in the request.
    """
    if series.scalar:
        raise InvalidParams("a bare number is no counter: it needs samples over time")
    if len(series) < 2:
        return None
    span = float(series.ts[-1] - series.ts[0])
    if not span > 0.0 or not math.isfinite(span):
        return None
    return counter_increase(series) / span


# --- common time grids -------------------------------------------------------------


def bucket_means(series: Series, edges: FloatArray) -> FloatArray:
    """Mean of the samples in each bucket of ``edges``; NaN where empty or not finite."""
    buckets = edges.size - 1
    out = np.full(buckets, np.nan)
    if series.scalar or len(series) == 0:
        return out
    idx = np.clip(np.searchsorted(edges, series.ts, side="right") - 1, 0, buckets - 1)
    with np.errstate(all="ignore"):
        sums = np.bincount(idx, weights=series.values, minlength=buckets)
        counts = np.bincount(idx, minlength=buckets)
        has = counts > 0
        out[has] = sums[has] / counts[has]
    out[~np.isfinite(out)] = np.nan
    return out


def summed_counter_rate(counters: Mapping[Any, Series], edges: FloatArray) -> FloatArray:
    """Per-bucket total rate of several counters (each series' mean rate, summed; NaN if none)."""
    total = np.zeros(edges.size - 1)
    seen = np.zeros(edges.size - 1, dtype=bool)
    for series in counters.values():
        rate = bucket_means(counter_rate(series), edges)
        has = np.isfinite(rate)
        total[has] += rate[has]
        seen |= has
    total[~seen] = np.nan
    return total
