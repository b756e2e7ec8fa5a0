"""Request patterns from labelled samples: when traffic peaks, where it goes, how slow each part is.

The specification's ``_analyze_request_patterns``, computed from data, never from constants.

Each request series becomes a cumulative count C(t) that is linear between samples (a
uniform rate within each scrape interval). Requests in any stretch of time are then
C(b) − C(a), so totals, hour-of-day buckets and per-label shares all come from the
same numbers, and a sparse series spreads its increase over the hours it covers
instead of piling it onto the hour of its next sample.

- Counters (``http_requests_total``): an increase is the difference of two samples;
  a drop is a counter reset and the new value counts from 0, as Prometheus's
  ``increase()`` reads it. The first sample is the baseline and adds nothing.
- Rates (req/s): each sample covers the interval that ends at it (how a range query
  of ``rate(...)`` is stamped); the first one covers the series' median step.
  Negative rates and counter values are clipped to 0, values above ``VALUE_CAP``
  to it: no real request count is near 1e15, and the cap keeps every sum finite.
- Scalars (a bare number) have no time to spread over and are ignored, as are samples
  stamped beyond ``TIME_BOUND``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from agent.analysis.series import FloatArray, Series
from protocols.messages import PeakPeriod, RequestPatterns, TrafficShare

Labels = tuple[tuple[str, str], ...]
"""Sorted label pairs of one series, e.g. ``(("endpoint", "/api/feed"), ("region", "eu"))``."""

PEAK_FACTOR = 1.25
"""An hour of day peaks when its mean rate is at least this × the mean over hours with data."""
MIN_PROFILE_HOURS = 2
"""With fewer distinct hours of day observed there is nothing to compare: no peak periods."""
PROFILE_MAX_SECONDS = 400 * 86_400.0
"""The hour-of-day profile looks at the most recent 400 days at most (bounded work)."""
VALUE_CAP = 1e15
"""Request counts and rates are clipped to [0, 1e15] (the wire's bound for a number)."""
TIME_BOUND = 1e12
"""Samples stamped beyond ±1e12 epoch seconds (±31 700 years) are a unit mistake: dropped."""
ENDPOINT_LABEL = "endpoint"
REGION_LABEL = "region"
_HOUR = 3600.0
_PERCENTILES = (50.0, 95.0, 99.0)


@dataclass(frozen=True, slots=True)
class _Cumulative:
    """Requests of one label set: C(xp[i]) = fp[i], linear in between, 0 before, total after."""

    xp: FloatArray
    fp: FloatArray

    @property
    def total(self) -> float:
        return float(self.fp[-1])

    def between(self, edges: FloatArray) -> FloatArray:
        """Requests in each interval ``[edges[i], edges[i+1])``."""
        return np.diff(np.interp(edges, self.xp, self.fp))


def _timed(series: Series) -> tuple[FloatArray, FloatArray] | None:
    if series.scalar:
        return None
    keep = (np.abs(series.ts) <= TIME_BOUND) & np.isfinite(series.values)
    if not keep.any():
        return None
    return series.ts[keep], np.clip(series.values[keep], 0.0, VALUE_CAP)


def _median_step(ts: FloatArray) -> float | None:
    steps = np.diff(ts)
    steps = steps[steps > 0.0]
    return float(np.median(steps)) if steps.size else None


def _from_counter(ts: FloatArray, values: FloatArray) -> _Cumulative:
    rises = np.diff(values)
    increments = np.where(rises >= 0.0, rises, values[1:])
    return _Cumulative(xp=ts, fp=np.concatenate(([0.0], np.cumsum(increments))))


def _from_rate(ts: FloatArray, rates: FloatArray, first_step: float) -> _Cumulative:
    covered = np.concatenate(([first_step], np.diff(ts)))
    return _Cumulative(
        xp=np.concatenate(([ts[0] - first_step], ts)),
        fp=np.concatenate(([0.0], np.cumsum(rates * covered))),
    )


def _cumulatives(
    requests: Mapping[Labels, Series], *, requests_are_counters: bool
) -> dict[Labels, _Cumulative]:
    timed = {labels: t for labels, s in requests.items() if (t := _timed(s)) is not None}
    if requests_are_counters:
        return {labels: _from_counter(ts, v) for labels, (ts, v) in timed.items()}
    steps = [step for ts, _ in timed.values() if (step := _median_step(ts)) is not None]
    # A rate series of one sample borrows the others' step; alone, it covers no time.
    fallback = float(np.median(steps)) if steps else 0.0
    return {
        labels: _from_rate(ts, v, _median_step(ts) or fallback) for labels, (ts, v) in timed.items()
    }


def _hour_profile(
    cumulatives: Iterable[_Cumulative], start: float, end: float
) -> tuple[FloatArray, FloatArray]:
    """Mean request rate per hour of day (UTC) and the seconds of each hour observed."""
    start = max(start, end - PROFILE_MAX_SECONDS)
    first = math.floor(start / _HOUR)
    last = max(math.ceil(end / _HOUR), first + 1)
    hours = np.arange(first, last, dtype=np.int64)
    edges = np.clip(np.arange(first, last + 1, dtype=np.float64) * _HOUR, start, end)
    counts = np.zeros(hours.size)
    for cumulative in cumulatives:
        counts += cumulative.between(edges)
    hour_of_day = hours % 24
    requests = np.bincount(hour_of_day, weights=counts, minlength=24).astype(np.float64)
    seconds = np.bincount(hour_of_day, weights=np.diff(edges), minlength=24).astype(np.float64)
    with np.errstate(over="ignore"):
        rates = np.divide(requests, seconds, out=np.zeros(24), where=seconds > 0.0)
    return np.minimum(rates, VALUE_CAP), seconds


def _peak_periods(rates: FloatArray, seconds: FloatArray) -> list[PeakPeriod]:
    """Runs of peak hours on the 24-hour circle; an hour without data breaks a run."""
    observed = seconds > 0.0
    if int(observed.sum()) < MIN_PROFILE_HOURS:
        return []
    overall = float(rates[observed].mean())
    if not overall > 0.0:
        return []
    peak = observed & (rates >= PEAK_FACTOR * overall)
    if not peak.any():
        return []
    # Some observed hour is below the mean, so a run never covers the whole circle:
    # start scanning just after a quiet hour and each run is seen whole, once.
    quiet = int(np.flatnonzero(~peak)[0])
    runs: list[list[int]] = []
    current: list[int] = []
    for step in range(1, 25):
        hour = (quiet + step) % 24
        if peak[hour]:
            current.append(hour)
        elif current:
            runs.append(current)
            current = []
    periods = []
    for run in runs:
        rate = float(rates[run].mean())
        periods.append(
            PeakPeriod(
                start_hour=run[0],
                end_hour=run[-1],
                mean_rate=rate,
                ratio_to_mean=rate / overall,
            )
        )
    periods.sort(key=lambda p: (-p.mean_rate, p.start_hour))
    return periods


def _percentiles(values: FloatArray) -> tuple[float, float, float] | None:
    """p50/p95/p99 (linear interpolation); halves first if extremes would overflow."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.percentile(values, _PERCENTILES)
        if not np.isfinite(result).all():
            result = np.percentile(values * 0.5, _PERCENTILES) * 2.0
    p50, p95, p99 = (float(x) for x in result)
    return p50, p95, p99


def _shares(
    key: str,
    cumulatives: Mapping[Labels, _Cumulative],
    latencies: Mapping[Labels, Series],
    total: float,
) -> list[TrafficShare]:
    """Requests and latency percentiles per value of label ``key``; unlabelled series left out."""
    requests: dict[str, float] = {}
    for labels, cumulative in cumulatives.items():
        name = dict(labels).get(key)
        if name is not None:
            requests[name] = requests.get(name, 0.0) + cumulative.total
    samples: dict[str, list[FloatArray]] = {}
    for labels, series in latencies.items():
        name = dict(labels).get(key)
        if name in requests:
            samples.setdefault(name, []).append(series.values)
    shares = []
    for name, count in requests.items():
        percentiles = _percentiles(np.concatenate(samples[name])) if name in samples else None
        p50, p95, p99 = percentiles if percentiles is not None else (None, None, None)
        shares.append(
            TrafficShare(
                name=name,
                share_pct=100.0 * count / total if total > 0.0 else 0.0,
                requests=count,
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
            )
        )
    shares.sort(key=lambda s: (-s.requests, s.name))
    return shares


def request_patterns(
    requests: Mapping[Labels, Series],
    latencies: Mapping[Labels, Series],
    *,
    requests_are_counters: bool,
) -> RequestPatterns | None:
    """Total and mean rate, peak periods of the day, endpoint and regional shares.

    ``requests`` are counters or rates (req/s) per label set, as the flag says;
    ``latencies`` are latency samples in ms per label set (raw observations or
    per-interval p95s: the percentiles are over the samples). The window runs from
    the earliest interval start to the latest sample; ``mean_rate`` = total / span.

    A peak hour is an hour of day (UTC) whose mean rate over the window is at least
    ``PEAK_FACTOR`` × the mean of the per-hour rates over hours with data; adjacent
    peak hours (wrapping past midnight) form one period with the mean of their rates.
    Fewer than ``MIN_PROFILE_HOURS`` observed hours of day give no periods.
    Endpoints and regions come from the ``endpoint`` and ``region`` labels; their
    shares need not add to 100 % when some series lack the label.

    None when there is no timed request sample at all.
    """
    cumulatives = _cumulatives(requests, requests_are_counters=requests_are_counters)
    if not cumulatives:
        return None
    start = min(float(c.xp[0]) for c in cumulatives.values())
    end = max(float(c.xp[-1]) for c in cumulatives.values())
    total = float(sum(c.total for c in cumulatives.values()))
    span = end - start
    peaks: list[PeakPeriod] = []
    if span > 0.0:
        peaks = _peak_periods(*_hour_profile(cumulatives.values(), start, end))
    return RequestPatterns(
        total_requests=total,
        mean_rate=min(total / span, VALUE_CAP) if span > 0.0 else 0.0,
        peak_periods=peaks,
        endpoints=_shares(ENDPOINT_LABEL, cumulatives, latencies, total),
        regions=_shares(REGION_LABEL, cumulatives, latencies, total),
    )
