"""Capacity planning: the throughput ceiling, demand growth and when scaling triggers are crossed.

Pure: every figure comes from the samples given, every time is epoch seconds from the
data or the caller's ``now``; no clock, no I/O. Each model says which model it is and
why (a stated simpler one when the data cannot carry the full one), and no output is
ever NaN or inf: a figure that cannot be computed is None with a reason.

- Ceiling: the Universal Scalability Law (Gunther), X(N) = λN / (1 + σ(N−1) + κN(N−1)),
  fitted to (concurrency, throughput) pairs. σ is contention, κ coherency; with κ > 0
  throughput peaks at N* = √((1−σ)/κ). Fewer than 6 concurrency levels cannot tell σ
  from κ, so a line through the origin X = λN is fitted instead, which has no ceiling.
- Concurrency: Little's law L = λW, from the request rate and the response time when
  no concurrency series is there.
- Demand: exponential growth, log(value) regressed on time, with a 95 % interval;
  projections carry the interval, which is wide when the history is short.
- Triggers: the Theil–Sen slope of the bucket medians, extrapolated linearly from the
  current level to the threshold, only when Mann–Kendall finds the trend significant.

Sources (docs/learning.md, "Provenance"): every figure from the samples is ``measured``
(a projection too: the measured growth, compounded); what only follows by assumption
(connections and users growing with requests) is ``assumed``; what the plan's expected
gain moves (the optimised ceiling) takes that gain's source, prior or calibrated.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

import numpy as np
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

from agent.analysis.catalog import CATALOG, Direction
from agent.analysis.series import (
    FloatArray,
    Series,
    bucket_means,
    finite,
    mean,
    median,
    sig,
    summed_counter_rate,
)
from agent.analysis.trend import ALPHA, MIN_SAMPLES, TrendResult, assess_trend, hours_to_reach
from agent.planning.provenance import measured, weakest
from agent.store.metric_store import MetricStore
from protocols import reports
from protocols.reports import (
    CapacityBaseline,
    CapacityModel,
    DemandGrowth,
    Figure,
    HorizonProjection,
    Projected,
    ProjectedUtilisation,
    Provenance,
    Runway,
    ScalabilityProjections,
    WindowSpan,
)
from protocols.types import Source

DAY = 86_400.0
MIN_USL_LEVELS = 6
"""Distinct concurrency levels below which σ and κ cannot be told apart: linear instead."""
NEGLIGIBLE = 1e-6
"""A USL term below this share of the denominator at the highest observed load is zero."""
MAX_FIT_POINTS = 120
"""Observations beyond this are binned (equal-count concurrency bins) so a fit costs the same."""
MIN_GROWTH_POINTS = 8
MIN_GROWTH_SPAN_S = 3600.0
SHORT_HISTORY_DAYS = 14.0
"""Growth fitted on less history than this is flagged: the interval is wide."""
BUCKETS = 120
"""Time buckets of the window: per-bucket means line rates, latency and users up."""
HORIZONS: Mapping[str, float] = MappingProxyType({"3_months": 91.0, "6_months": 182.0})
"""Report key → days ahead (13 and 26 weeks)."""

Model = Literal["usl", "linear", "none"]
CrossingStatus = Literal[
    "already_crossed", "expected", "not_within_horizon", "insufficient_data", "no_data"
]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(round(ts), UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


# --- Universal Scalability Law ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UslFit:
    """A throughput model fitted to (concurrency, throughput) and the ceiling it implies.

    ``model`` is ``usl``, ``linear`` (X = λN: too few levels or a failed USL fit, the
    ``reason`` says which) or ``none`` (nothing to fit). ``peak_concurrency`` is N*,
    ``ceiling`` the throughput there (or the λ/σ asymptote when κ = 0); both None when
    the model has none. ``extrapolated`` when N* lies beyond the highest observed load.
    """

    model: Model
    reason: str
    observations: int
    points: int
    lambda_: float | None = None
    sigma: float | None = None
    kappa: float | None = None
    r2: float | None = None
    peak_concurrency: float | None = None
    ceiling: float | None = None
    max_observed_concurrency: float | None = None

    @property
    def extrapolated(self) -> bool:
        peak, seen = self.peak_concurrency, self.max_observed_concurrency
        return peak is not None and seen is not None and peak > seen

    def to_report(self, concurrency_basis: str) -> CapacityModel:
        """The report form: figures to six significant digits; a fitted model is measured."""
        return CapacityModel(
            model=self.model,
            reason=self.reason,
            observations=self.observations,
            points=self.points,
            lambda_=sig(finite(self.lambda_)),
            sigma=sig(finite(self.sigma)),
            kappa=sig(finite(self.kappa)),
            r2=sig(finite(self.r2), 4),
            peak_concurrency=sig(finite(self.peak_concurrency)),
            ceiling=sig(finite(self.ceiling)),
            max_observed_concurrency=sig(finite(self.max_observed_concurrency)),
            peak_is_extrapolated=self.extrapolated,
            concurrency_basis=concurrency_basis,
            source=MEASURED if self.model != "none" else None,
        )


def _usl(n: FloatArray, lam: float, sigma: float, kappa: float) -> FloatArray:
    result: FloatArray = lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
    return result


def _r2(y: FloatArray, fitted: FloatArray) -> float | None:
    with np.errstate(all="ignore"):
        total = float(np.sum((y - y.mean()) ** 2))
        residual = float(np.sum((y - fitted) ** 2))
    if not (math.isfinite(total) and math.isfinite(residual)) or total <= 0.0:
        return None
    return 1.0 - residual / total


def _bin(n: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Medians of ``MAX_FIT_POINTS`` equal-count bins by concurrency (its quantile bins)."""
    order = np.argsort(n, kind="stable")
    groups = np.array_split(np.arange(n.size), MAX_FIT_POINTS)
    ns, xs = n[order], x[order]
    return (
        np.array([median(ns[g]) for g in groups]),
        np.array([median(xs[g]) for g in groups]),
    )


def _linear(n: FloatArray, x: FloatArray, why: str, observations: int) -> UslFit:
    """X = λN by least squares through the origin, computed on scaled values (no overflow)."""
    n_scale, x_scale = float(np.max(n)), float(np.max(np.abs(x)))
    with np.errstate(all="ignore"):
        u, v = n / n_scale, (x / x_scale if x_scale > 0.0 else x)
        slope = float(np.sum(u * v) / np.sum(u * u))
        lam = slope * (x_scale / n_scale) if x_scale > 0.0 else 0.0
        r2 = _r2(v, slope * u)
    if not math.isfinite(lam):
        return UslFit(
            model="none",
            reason=f"{why}; the linear fit is not representable either (extreme values)",
            observations=observations,
            points=int(n.size),
        )
    return UslFit(
        model="linear",
        reason=f"{why}: fitted X = λN through the origin, which shows no ceiling",
        observations=observations,
        points=int(n.size),
        lambda_=lam,
        r2=r2,
        max_observed_concurrency=n_scale,
    )


def _initial_guess(n: FloatArray, x: FloatArray) -> tuple[float, float, float]:
    """λ from the lowest-load points; σ, κ from λN/X − 1 = σ(N−1) + κN(N−1) (least squares)."""
    sigma, kappa = 0.01, 1e-6
    with np.errstate(all="ignore"):
        low = n <= np.quantile(n, 0.1)
        lam = float(np.median(x[low] / n[low]))
        if not (math.isfinite(lam) and lam > 0.0):
            lam = float(np.max(x) / np.max(n))
        if not (math.isfinite(lam) and lam > 0.0):
            lam = 1.0
        lhs = lam * n / np.maximum(x, 1e-12 * float(np.max(x))) - 1.0
        design = np.column_stack((n - 1.0, n * (n - 1.0)))
        if np.isfinite(lhs).all() and np.isfinite(design).all():
            try:
                (s, k), *_ = np.linalg.lstsq(design, lhs, rcond=None)
                if math.isfinite(s) and math.isfinite(k):
                    sigma, kappa = float(s), float(k)
            except np.linalg.LinAlgError:
                pass
    eps = 1e-9
    return lam, min(max(sigma, eps), 1.0 - eps), min(max(kappa, eps), 1.0 - eps)


def fit_usl(concurrency: FloatArray, throughput: FloatArray) -> UslFit:
    """Fit the Universal Scalability Law X(N) = λN / (1 + σ(N−1) + κN(N−1)) for the ceiling.

    Pairs that are not finite, with N ≤ 0 or X < 0, are left out. More than
    ``MAX_FIT_POINTS`` pairs are binned first (median per equal-count concurrency bin)
    so the fit costs the same at any volume. With fewer than ``MIN_USL_LEVELS``
    distinct levels, or when ``curve_fit`` fails or warns (a singular, degenerate
    fit), the stated simpler model X = λN is fitted instead and the reason kept.
    Bounds λ > 0, 0 ≤ σ ≤ 1, 0 ≤ κ ≤ 1; residuals are relative (noise on throughput
    is multiplicative) and throughput is scaled to 1 so the optimiser sees sane numbers.
    """
    n = np.asarray(concurrency, dtype=np.float64).ravel()
    x = np.asarray(throughput, dtype=np.float64).ravel()
    if n.shape != x.shape:
        raise ValueError(f"{n.size} concurrency values for {x.size} throughputs")
    keep = np.isfinite(n) & np.isfinite(x) & (n > 0.0) & (x >= 0.0)
    n, x = n[keep], x[keep]
    observations = int(n.size)
    if observations == 0:
        return UslFit(
            model="none",
            reason="no (concurrency > 0, throughput ≥ 0) pairs to fit",
            observations=0,
            points=0,
        )
    if not float(np.max(x)) > 0.0:
        return UslFit(
            model="none",
            reason="throughput is zero at every load: nothing to scale",
            observations=observations,
            points=observations,
            max_observed_concurrency=float(np.max(n)),
        )
    if n.size > MAX_FIT_POINTS:
        n, x = _bin(n, x)
    levels = int(np.unique(n).size)
    if levels < MIN_USL_LEVELS:
        why = f"{levels} distinct concurrency level(s), the USL needs {MIN_USL_LEVELS}"
        return _linear(n, x, why, observations)
    scale = float(np.max(x))
    y = x / scale
    lam0, sigma0, kappa0 = _initial_guess(n, y)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("error", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(
                _usl,
                n,
                y,
                p0=(lam0, sigma0, kappa0),
                sigma=np.maximum(y, 1e-3),
                bounds=((1e-300, 0.0, 0.0), (np.inf, 1.0, 1.0)),
                maxfev=2000,
            )
    except (OptimizeWarning, RuntimeError, ValueError, FloatingPointError) as error:
        return _linear(n, x, f"USL fit failed ({type(error).__name__}: {error})", observations)
    lam, sigma, kappa = float(params[0]) * scale, float(params[1]), float(params[2])
    top = float(np.max(n))
    # A term adding under 1e-6 to the denominator at the highest load seen is not in the
    # data: zero, so that a κ of 1e-19 does not announce a peak at N = 2·10⁹.
    if sigma * (top - 1.0) < NEGLIGIBLE:
        sigma = 0.0
    if kappa * top * (top - 1.0) < NEGLIGIBLE:
        kappa = 0.0
    with np.errstate(all="ignore"):
        r2 = _r2(y, _usl(n, lam / scale, sigma, kappa))
    if not (math.isfinite(lam) and lam > 0.0):
        return _linear(n, x, "USL fit gave a non-finite λ", observations)
    peak, ceiling = _peak(lam, sigma, kappa)
    return UslFit(
        model="usl",
        reason=f"USL fitted over {levels} concurrency levels",
        observations=observations,
        points=int(n.size),
        lambda_=lam,
        sigma=sigma,
        kappa=kappa,
        r2=r2,
        peak_concurrency=peak,
        ceiling=ceiling,
        max_observed_concurrency=top,
    )


def _peak(lam: float, sigma: float, kappa: float) -> tuple[float | None, float | None]:
    """N* = √((1−σ)/κ) (at least 1: below it the curve only falls) and X(N*); λ/σ if κ = 0."""
    with np.errstate(all="ignore"):
        if kappa > 0.0:
            peak = max(math.sqrt((1.0 - sigma) / kappa), 1.0)
            ceiling = float(_usl(np.array([peak]), lam, sigma, kappa)[0])
            return finite(peak), finite(ceiling)
        if sigma > 0.0:
            return None, finite(lam / sigma)
    return None, None


def little_concurrency(rate_per_s: float, latency_ms: float) -> float:
    """Little's law L = λ·W: requests in flight from arrival rate and time in system (ms)."""
    return rate_per_s * latency_ms / 1000.0


# --- demand growth ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrowthFit:
    """Exponential growth per day with its standard error and 95 % interval.

    ``rate_per_day`` is g = e^{b·86400} − 1 for the log slope b per second; ``low`` and
    ``high`` bound g (t interval on b, mapped through the exponential); ``stderr`` is
    g's by the delta method. ``note`` says how far the history can be trusted.
    """

    rate_per_day: float
    log_slope_per_day: float
    stderr: float
    low: float
    high: float
    log_low_per_day: float
    log_high_per_day: float
    r2: float
    span_days: float
    points: int
    note: str

    def to_report(self, basis: str, significance: str | None = None) -> DemandGrowth:
        """The report form: rates in % per day, six significant digits."""
        return DemandGrowth(
            model="exponential",
            growth_pct_per_day=sig(finite(self.rate_per_day * 100.0)),
            stderr_pct_per_day=sig(finite(self.stderr * 100.0)),
            ci95_pct_per_day=[sig(finite(self.low * 100.0)), sig(finite(self.high * 100.0))],
            r2=sig(finite(self.r2), 4),
            span_days=sig(finite(self.span_days), 4),
            points=self.points,
            note=self.note,
            basis=basis,
            source=MEASURED,
            significance=significance,
        )


MIN_PROJECTION_DAYS = 3.0
"""History needed before a growth rate is projected months ahead: shorter spans are
dominated by the daily cycle (a fitted "48 %/day" from one day is the evening peak)."""


def _growth(series: Series) -> GrowthFit | str:
    """The fit, or why there is none."""
    if series.scalar or len(series) == 0:
        return "no samples over time"
    positive = series.values > 0.0
    t, v = series.ts[positive], series.values[positive]
    if t.size < MIN_GROWTH_POINTS:
        return f"{t.size} positive point(s), growth needs {MIN_GROWTH_POINTS}"
    with np.errstate(all="ignore"):
        span_s = float(t[-1] - t[0])
    if not math.isfinite(span_s):
        return "times too far apart to represent the span"
    if span_s < MIN_GROWTH_SPAN_S:
        return f"history spans {span_s / 3600.0:.2g} h, growth needs at least 1 h"
    with np.errstate(all="ignore"):
        days = (t - t[0]) / DAY
        y = np.log(v)
        dm = days - days.mean()
        sxx = float(np.sum(dm * dm))
        b = float(np.sum(dm * (y - y.mean())) / sxx)
        fitted = y.mean() + b * dm
        ssr = float(np.sum((y - fitted) ** 2))
        dof = t.size - 2
        se_b = math.sqrt(ssr / dof / sxx)
        q = float(stats.t.ppf(0.975, dof))
        lo_b, hi_b = b - q * se_b, b + q * se_b
        figures = [b, se_b, lo_b, hi_b]
        if not all(math.isfinite(f) for f in figures) or max(abs(lo_b), abs(hi_b)) > 700.0:
            return "log-linear fit is not representable (extreme values)"
        g = math.expm1(b)
        r2 = _r2(y, fitted)
    span_days = span_s / DAY
    if span_days < SHORT_HISTORY_DAYS:
        note = (
            f"only {span_days:.3g} days of history: the 95 % interval is wide and a "
            "projection months ahead extrapolates far beyond what was observed"
        )
    else:
        note = f"fitted over {span_days:.3g} days of history"
    return GrowthFit(
        rate_per_day=g,
        log_slope_per_day=b,
        stderr=math.exp(b) * se_b,
        low=math.expm1(lo_b),
        high=math.expm1(hi_b),
        log_low_per_day=lo_b,
        log_high_per_day=hi_b,
        r2=1.0 if r2 is None else r2,  # constant log-values: a perfect flat fit
        span_days=span_days,
        points=int(t.size),
        note=note,
    )


def fit_growth(series: Series) -> GrowthFit | None:
    """Exponential demand growth from observed history: least squares of log(value) on time.

    Only positive values enter (a log needs them). None with fewer than 8 of them, a
    span under an hour, or figures too extreme to represent. Short history gives a
    wide 95 % interval; the result's ``note`` says so, and projections carry it.
    """
    result = _growth(series)
    return result if isinstance(result, GrowthFit) else None


@dataclass(frozen=True, slots=True)
class Projection:
    """A value ``days`` ahead at the expected growth and at both ends of its 95 % interval."""

    days: float
    expected: float | None
    low: float | None
    high: float | None

    def to_report(self, basis: str, source: Source) -> Projected:
        return Projected(
            expected=sig(finite(self.expected)),
            low=sig(finite(self.low)),
            high=sig(finite(self.high)),
            basis=basis,
            source=source,
        )


def _grow(value: float, log_rate_per_day: float, days: float) -> float | None:
    """value · e^{rate·days}; None when it would overflow."""
    exponent = log_rate_per_day * days
    with np.errstate(all="ignore"):
        if exponent <= 700.0:
            grown = value * math.exp(exponent)
            if math.isfinite(grown):
                return grown
    return None


def project(value_now: float, growth: GrowthFit, days: float) -> Projection:
    """``value_now`` compounded at the fitted growth for ``days`` (expected, low, high).

    Equal to value·(1 + g)^days; a figure too large to represent is None.
    """
    return Projection(
        days=days,
        expected=_grow(value_now, growth.log_slope_per_day, days),
        low=_grow(value_now, growth.log_low_per_day, days),
        high=_grow(value_now, growth.log_high_per_day, days),
    )


# --- scaling triggers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerCrossing:
    """When a metric is expected to cross a scaling threshold, and the numbers behind it.

    ``current`` is the level at ``current_at`` (median of the last 10 % of the window),
    ``slope_per_day`` the Theil–Sen slope, ``p_value`` Mann–Kendall's; ``crossing_ts`` and
    ``days_from_now`` are set for ``expected`` (and for a projected ``already_crossed``).
    """

    status: CrossingStatus
    reason: str
    threshold: float
    direction: Direction
    horizon_days: float
    samples: int
    current: float | None = None
    current_at: float | None = None
    slope_per_day: float | None = None
    p_value: float | None = None
    span_days: float | None = None
    crossing_ts: float | None = None
    days_from_now: float | None = None
    range_days: tuple[float | None, float | None] = (None, None)
    """(soonest, latest) days from now, from the slope's 95 % interval (latest None: maybe
    never)."""

    def to_report(self, metric: str) -> reports.TriggerCrossing:
        """The report form; a crossing with a level says it is measured, and from what."""
        measured_level = self.current is not None
        return reports.TriggerCrossing(
            metric=metric,
            status=self.status,
            reason=self.reason,
            threshold=sig(finite(self.threshold)),
            direction=self.direction,
            current=sig(finite(self.current)),
            slope_per_day=sig(finite(self.slope_per_day)),
            p_value=sig(finite(self.p_value), 4),
            expected_at=_iso(self.crossing_ts),
            expected_ts=sig(finite(self.crossing_ts), 10),
            days_from_now=sig(finite(self.days_from_now), 4),
            days_from_now_range=[sig(finite(d), 4) for d in self.range_days],
            horizon_days=sig(finite(self.horizon_days)),
            samples=self.samples,
            span_days=sig(finite(self.span_days), 4),
            source=MEASURED if measured_level else None,
            basis=f"level, slope and date from {self.samples} samples of the fleet; "
            "the threshold is the configured scaling trigger"
            if measured_level
            else None,
        )


def _beyond(level: float, threshold: float, direction: Direction) -> bool:
    return level >= threshold if direction == "lower_is_better" else level <= threshold


def trigger_crossing(
    series: Series,
    threshold: float,
    direction: Direction,
    now: float,
    horizon_days: float = 182.0,
    trend: TrendResult | None = None,
) -> TriggerCrossing:
    """When ``series`` is expected to cross ``threshold`` (CPU 75 %, response time 100 ms…).

    ``lower_is_better`` crosses upwards, ``higher_is_better`` downwards. The current
    level is the median of the last 10 % of the span (a single scrape would make it
    jitter), dated at the median time of those samples; from there the trend's
    Theil–Sen slope is extrapolated linearly, and the ends of its 95 % interval give the
    range of dates. ``trend`` is the metric's judged trend (in a report: decided on its
    false-discovery-controlled q); without one the series is tested alone. Only a trend
    whose verdict is ``declining`` sets a date: noise and autocorrelation must not.
    """
    n = len(series)
    result = TriggerCrossing(
        status="no_data",
        reason="no samples over time",
        threshold=threshold,
        direction=direction,
        horizon_days=horizon_days,
        samples=n,
    )
    if series.scalar or n == 0:
        return result
    ts, values = series.ts, series.values
    with np.errstate(all="ignore"):  # times near ±1.8e308 overflow a span: then the last instant
        span_s = float(ts[-1] - ts[0])
        recent = ts >= ts[-1] - 0.1 * span_s if math.isfinite(span_s) else ts == ts[-1]
    current, current_at = median(values[recent]), median(ts[recent])
    result = replace(
        result,
        current=finite(current),
        current_at=finite(current_at),
        span_days=finite(span_s / DAY),
    )
    if not math.isfinite(current):
        return replace(result, status="insufficient_data", reason="current level not finite")
    if _beyond(current, threshold, direction):
        why = f"current level {current:.6g} is past {threshold:.6g}"
        return replace(result, status="already_crossed", reason=why)
    if trend is None:
        trend = assess_trend(series, direction)
    per_hour = trend.slope_per_hour
    if trend.trend == "unknown" or per_hour is None:
        why = trend.note or f"{n} sample(s) over {span_s:.3g} s: a slope needs {MIN_SAMPLES}"
        return replace(result, status="insufficient_data", reason=why)
    slope = per_hour * 24.0
    p = trend.q_value if trend.q_value is not None else trend.p_value
    test = "q" if trend.q_value is not None else "p"
    result = replace(result, slope_per_day=finite(slope), p_value=trend.p_value)
    if not trend.declining:
        towards = slope > 0.0 if direction == "lower_is_better" else slope < 0.0
        way = "moving away from" if slope != 0.0 and not towards else "no significant trend towards"
        shown = "n/a" if p is None else f"{p:.3g}"
        why = f"{way} the threshold (slope {slope:.3g}/day, Mann–Kendall {test} {shown})"
        return replace(result, status="not_within_horizon", reason=why)
    reach = hours_to_reach(
        current,
        threshold,
        direction,
        per_hour,
        (trend.slope_low_per_hour, trend.slope_high_per_hour),
    )

    def days_from_now(hours: float | None) -> float | None:
        return None if hours is None else finite((current_at + hours * 3600.0 - now) / DAY)

    days = days_from_now(reach[0]) if reach is not None else None
    if reach is None or days is None or days > horizon_days:
        why = f"at {slope:.3g}/day the threshold is beyond {horizon_days:g} days"
        return replace(result, status="not_within_horizon", reason=why)
    result = replace(
        result,
        crossing_ts=current_at + reach[0] * 3600.0,
        days_from_now=days,
        range_days=(days_from_now(reach[1]), days_from_now(reach[2])),
    )
    if days <= 0.0:
        why = f"at {slope:.3g}/day the level has passed the threshold by now (projected)"
        return replace(result, status="already_crossed", reason=why)
    why = f"linear at {slope:.3g}/day from {current:.6g}"
    return replace(result, status="expected", reason=why)


# --- the scalability_projections object ----------------------------------------------


MEASURED: Source = "measured"
"""The ``source`` of a figure computed from the samples (``Provenance.source``)."""


@dataclass(frozen=True, slots=True)
class _Figure:
    value: float | None
    basis: str

    def to_report(self) -> Figure:
        if self.value is None:
            return Figure(value=None, reason=self.basis)
        return Figure(value=sig(finite(self.value)), basis=self.basis, source=MEASURED)


def _planned(plan_gain: Provenance | None, what: str) -> Provenance | None:
    """The source of ``what``, a measured figure moved by the plan's expected gain: the
    gain's own (prior or calibrated); None (the source unknown) when it was not given."""
    if plan_gain is None:
        return None
    basis = f"{what}: measured, moved by the plan's expected gain ({plan_gain.source})"
    return weakest((measured(what), plan_gain), basis)


def _request_rate(
    store: MetricStore, window_s: float, end: float, edges: FloatArray
) -> tuple[FloatArray, _Figure]:
    """Per-bucket request rate and the baseline: api_throughput, else http_requests_total."""
    own = store.merged("api_throughput", window_s=window_s, end=end)
    if len(own):
        value = finite(mean(own.values))
        basis = f"mean of {len(own)} api_throughput samples over the window"
        return bucket_means(own, edges), _Figure(value, basis)
    counters = store.select("http_requests_total", window_s=window_s, end=end)
    rate = summed_counter_rate(counters, edges) if counters else np.full(edges.size - 1, np.nan)
    if np.isfinite(rate).any():
        basis = (
            f"summed rate of {len(counters)} http_requests_total counter series "
            "(mean of the per-bucket totals)"
        )
        with np.errstate(all="ignore"):
            return rate, _Figure(finite(float(np.nanmean(rate))), basis)
    return rate, _Figure(None, "no api_throughput samples nor http_requests_total counters")


def _connections(store: MetricStore, window_s: float, end: float) -> _Figure:
    parts = store.select("websocket_connections", window_s=window_s, end=end)
    if not parts:
        return _Figure(None, "no websocket_connections samples in the window")
    with np.errstate(all="ignore"):
        total = float(sum(float(s.values[-1]) for s in parts.values()))
    return _Figure(finite(total), f"sum over {len(parts)} instance(s) of each one's latest sample")


def _concurrency_buckets(
    store: MetricStore, window_s: float, end: float, edges: FloatArray, rate: FloatArray
) -> tuple[FloatArray, _Figure]:
    """Concurrency per bucket and the concurrent-users baseline, each saying its basis.

    The ``concurrent_users`` series when there is one; else Little's law per bucket,
    req/s × mean api_response_time, whose mean is the time-averaged number in flight
    (the product of the window's two means would miss their covariance).
    """
    users = store.merged("concurrent_users", window_s=window_s, end=end)
    if len(users):
        value = finite(mean(users.values))
        basis = "mean of the concurrent_users samples"
        return bucket_means(users, edges), _Figure(value, basis)
    latency = bucket_means(store.merged("api_response_time", window_s=window_s, end=end), edges)
    with np.errstate(all="ignore"):
        little = rate * latency / 1000.0
    little[~np.isfinite(little)] = np.nan
    if not np.isfinite(little).any():
        why = "no concurrent_users series, and Little's law needs req/s and api_response_time"
        return little, _Figure(None, why)
    basis = "Little's law per bucket: mean of req/s × api_response_time (requests in flight)"
    with np.errstate(all="ignore"):
        return little, _Figure(finite(float(np.nanmean(little))), basis)


def _utilisation(demand: float | None, ceiling: float) -> float | None:
    """Demand as a share of a ceiling; None without a positive, finite ceiling."""
    if demand is None or not (ceiling > 0.0 and math.isfinite(ceiling)):
        return None
    return finite(demand / ceiling)


def _runway_days(rate: float, ceiling: float, growth: GrowthFit) -> float | None:
    """Days until demand growing at the expected rate meets ``ceiling`` (None: not growing)."""
    if not (rate > 0.0 and ceiling > 0.0 and growth.log_slope_per_day > 0.0):
        return None
    if rate >= ceiling:
        return 0.0
    with np.errstate(all="ignore"):
        return finite(float(np.log(ceiling) - np.log(rate)) / growth.log_slope_per_day)


def _horizon(
    days: float,
    rate: _Figure,
    connections: _Figure,
    users: _Figure,
    growth: GrowthFit | str,
    ceiling: float | None,
    ceiling_reason: str,
    plan_gain_pct: float,
    plan_gain: Provenance | None,
) -> HorizonProjection:
    if isinstance(growth, str):
        missing = Projected(reason=f"demand growth unknown: {growth}")
        return HorizonProjection(
            days=days,
            api_requests_per_s=missing,
            websocket_connections=missing,
            concurrent_users=missing,
            utilisation=ProjectedUtilisation(reason=missing.reason),
        )
    basis = (
        f"baseline compounded at the measured {growth.rate_per_day * 100:+.3g} %/day "
        f"for {days:g} days"
    )
    # Connections and users: nothing measured says they grow like requests (assumed).
    assumed_basis = basis + " (assumed to grow with requests)"
    figures: dict[str, Projected] = {}
    projected: Projection | None = None
    for key, figure, source in (
        ("api_requests_per_s", rate, MEASURED),
        ("websocket_connections", connections, "assumed"),
        ("concurrent_users", users, "assumed"),
    ):
        if figure.value is None:
            figures[key] = Projected(reason=f"no baseline: {figure.basis}")
            continue
        p = project(figure.value, growth, days)
        figures[key] = p.to_report(basis if source == MEASURED else assumed_basis, source)
        if key == "api_requests_per_s":
            projected = p
    if ceiling is None or projected is None:
        why = ceiling_reason if ceiling is None else "no request-rate baseline"
        utilisation = ProjectedUtilisation(reason=why)
    else:
        utilisation = _projected_utilisation(projected, ceiling, plan_gain_pct, plan_gain)
    return HorizonProjection(
        days=days,
        api_requests_per_s=figures["api_requests_per_s"],
        websocket_connections=figures["websocket_connections"],
        concurrent_users=figures["concurrent_users"],
        utilisation=utilisation,
    )


def _share(projected: Projection, ceiling: float) -> Projected:
    return Projected(
        expected=sig(finite(_utilisation(projected.expected, ceiling))),
        low=sig(finite(_utilisation(projected.low, ceiling))),
        high=sig(finite(_utilisation(projected.high, ceiling))),
    )


def _projected_utilisation(
    projected: Projection, ceiling: float, plan_gain_pct: float, plan_gain: Provenance | None
) -> ProjectedUtilisation:
    optimised = ceiling * (1.0 + plan_gain_pct / 100.0)
    provenance = {
        "ceiling_req_per_s": measured("throughput ceiling fitted to the samples"),
        "current_system": measured("projected req/s over the fitted ceiling"),
    }
    if plan_gain is not None:
        provenance["plan_gain_pct"] = plan_gain
    for key, what in (
        ("optimised_ceiling_req_per_s", "fitted ceiling × (1 + plan gain)"),
        ("optimised_system", "projected req/s over the optimised ceiling"),
    ):
        if (source := _planned(plan_gain, what)) is not None:
            provenance[key] = source
    return ProjectedUtilisation(
        ceiling_req_per_s=sig(finite(ceiling)),
        optimised_ceiling_req_per_s=sig(finite(optimised)),
        plan_gain_pct=sig(finite(plan_gain_pct)),
        current_system=_share(projected, ceiling),
        optimised_system=_share(projected, optimised),
        basis="projected req/s ÷ fitted throughput ceiling (1.0 = at the ceiling)",
        provenance=provenance,
    )


MIN_TESTED_DAYS = 5
"""Whole days of history a demand trend is tested over: Mann–Kendall on fewer daily means
cannot reach p < 0.05 (four points give p ≥ 0.08 at best)."""


def daily_means(demand: Series, end: float) -> Series:
    """The mean request rate of each whole day back from ``end`` (oldest first)."""
    days = int((end - float(demand.ts[0])) // DAY) if len(demand) else 0
    edges = end - DAY * np.arange(days, -1, -1, dtype=np.float64)
    if days < 1:
        return Series(ts=np.empty(0), values=np.empty(0))
    means = bucket_means(demand, edges)
    has = np.isfinite(means)
    centres = (edges[:-1] + edges[1:]) / 2.0
    return Series(ts=centres[has], values=means[has])


def _unproven_growth(growth: GrowthFit, demand: Series, end: float) -> str | None:
    """Why the fitted growth is no basis for a projection, or None when it is one.

    The log-linear fit's interval assumes independent buckets, but demand cycles daily:
    within a day the evening peak looks like growth. So growth is projected only when the
    whole-day mean rates (the cycle averaged out) show a trend that survives the trend
    module's autocorrelation-corrected Mann–Kendall test, over ``MIN_TESTED_DAYS`` days
    or more.
    """
    days = daily_means(demand, end)
    if len(days) < MIN_TESTED_DAYS:
        return (
            f"demand growth of {growth.rate_per_day * 100:+.3g} %/day cannot be tested: "
            f"{len(days)} whole days of history, the test needs {MIN_TESTED_DAYS}; not projected"
        )
    trend = assess_trend(days, "higher_is_better", min_samples=MIN_TESTED_DAYS)
    if trend.p_value is not None and trend.p_value < ALPHA:
        return None
    shown = "n/a" if trend.p_value is None else f"{trend.p_value:.2g}"
    return (
        f"demand growth of {growth.rate_per_day * 100:+.3g} %/day is not significant over "
        f"{len(days)} daily means (Mann–Kendall p {shown}, corrected for autocorrelation): "
        "not projected"
    )


def capacity_projections(
    store: MetricStore,
    *,
    now: float,
    window_s: float,
    triggers: Mapping[str, float],
    plan_gain_pct: float,
    plan_gain_source: Provenance | None = None,
    horizon_days: float = 182.0,
    trends: Mapping[str, TrendResult] | None = None,
) -> ScalabilityProjections:
    """The ``scalability_projections`` of a plan: baseline, 3 and 6 months, scaling triggers.

    Every figure is computed from the store over ``window_s`` back from its newest
    sample (the data's clock; ``now`` dates the trigger crossings). The window is cut
    into ``BUCKETS`` time buckets so rate, latency and users line up: the USL is fitted
    on per-bucket (concurrency, req/s), demand growth on per-bucket req/s. The fitted
    model and growth sit in ``current_baseline`` (``capacity_model``, ``demand_growth``);
    what cannot be computed has a ``reason`` instead of its figures, never an exception.
    Trigger levels are the fleet's merged samples (all instances), as an autoscaler's
    average would see them; ``trends`` are the report's judged trends of those metrics
    (decided across the report), so a trigger is dated only from a trend that survived.
    Each figure carries its ``source`` (a ``provenance`` map in the utilisation objects);
    ``plan_gain_source`` is that of ``plan_gain_pct`` (``infrastructure_roi``'s), without
    which the figures the plan moves carry none.
    """
    if not (math.isfinite(window_s) and window_s > 0.0):
        raise ValueError(f"window_s must be positive and finite, got {window_s}")
    newest = store.newest_ts()
    end = now if newest is None else newest
    edges = np.linspace(end - window_s, end, BUCKETS + 1)
    centres = edges[:-1] * 0.5 + edges[1:] * 0.5

    rate_buckets, rate = _request_rate(store, window_s, end, edges)
    connections = _connections(store, window_s, end)
    concurrency, users = _concurrency_buckets(store, window_s, end, edges, rate_buckets)
    pairs = np.isfinite(concurrency) & np.isfinite(rate_buckets)
    usl = fit_usl(concurrency[pairs], rate_buckets[pairs])
    ceiling = usl.ceiling
    ceiling_reason = f"no throughput ceiling: {usl.reason}" if ceiling is None else "fitted ceiling"

    has_rate = np.isfinite(rate_buckets)
    demand = Series(ts=centres[has_rate], values=rate_buckets[has_rate])
    growth = _growth(demand)
    unproven = _unproven_growth(growth, demand, end) if isinstance(growth, GrowthFit) else None
    demand_growth = (
        DemandGrowth(reason=f"request rate: {growth}")
        if isinstance(growth, str)
        else growth.to_report("per-bucket req/s over the window", significance=unproven)
    )
    # A growth the data does not establish dates no runway and projects nothing.
    runway_growth = growth if isinstance(growth, GrowthFit) and unproven is None else None
    baseline = CapacityBaseline(
        window=WindowSpan(start=_iso(end - window_s), end=_iso(end), seconds=window_s),
        api_requests_per_s=rate.to_report(),
        websocket_connections=connections.to_report(),
        concurrent_users=users.to_report(),
        capacity_model=usl.to_report(users.basis),
        demand_growth=demand_growth,
        utilisation=_runway(
            rate, ceiling, ceiling_reason, runway_growth, plan_gain_pct, plan_gain_source
        ),
    )
    if isinstance(growth, GrowthFit) and growth.span_days < MIN_PROJECTION_DAYS:
        growth = (
            f"{growth.span_days:.3g} days of history cannot separate growth from the daily "
            f"cycle; projections need at least {MIN_PROJECTION_DAYS:g} days"
        )
    elif isinstance(growth, GrowthFit) and unproven is not None:
        growth = unproven
    three, six = (
        _horizon(
            days,
            rate,
            connections,
            users,
            growth,
            ceiling,
            ceiling_reason,
            plan_gain_pct,
            plan_gain_source,
        )
        for days in HORIZONS.values()
    )

    scaling = scaling_crossings(
        store,
        triggers,
        window_s=window_s,
        end=end,
        now=now,
        horizon_days=horizon_days,
        trends=trends,
    )
    return ScalabilityProjections(
        current_baseline=baseline, three_months=three, six_months=six, scaling_triggers=scaling
    )


def scaling_crossings(
    store: MetricStore,
    triggers: Mapping[str, float],
    *,
    window_s: float,
    end: float,
    now: float,
    horizon_days: float,
    trends: Mapping[str, TrendResult] | None = None,
) -> list[reports.TriggerCrossing]:
    """Each trigger's crossing (``trigger_crossing``) from the fleet's merged samples over
    ``window_s`` back from ``end``; a metric the catalog does not know is lower-is-better.
    A plan's projections and the monitor's capacity-runway rule both read these."""
    out: list[reports.TriggerCrossing] = []
    for metric, threshold in triggers.items():
        spec = CATALOG.get(metric)
        direction: Direction = spec.direction if spec is not None else "lower_is_better"
        series = store.merged(metric, window_s=window_s, end=end)
        trend = (trends or {}).get(metric)
        crossing = trigger_crossing(series, threshold, direction, now, horizon_days, trend)
        out.append(crossing.to_report(metric))
    return out


def _runway(
    rate: _Figure,
    ceiling: float | None,
    ceiling_reason: str,
    growth: GrowthFit | None,
    plan_gain_pct: float,
    plan_gain: Provenance | None,
) -> Runway:
    """Utilisation of the fitted ceiling now, and the days until demand growing at the
    measured rate meets it (only when the growth is established)."""
    if ceiling is None or rate.value is None:
        return Runway(
            reason=ceiling_reason if ceiling is None else f"no request-rate baseline: {rate.basis}"
        )
    optimised = ceiling * (1.0 + plan_gain_pct / 100.0)
    provenance = {"current_system": measured("req/s over the fitted throughput ceiling")}
    if growth is not None:
        provenance["days_to_ceiling"] = measured(
            "measured growth of req/s up to the fitted ceiling"
        )
    for key, what in (
        ("optimised_system", "req/s over the optimised ceiling"),
        ("days_to_optimised_ceiling", "measured growth of req/s up to the optimised ceiling"),
    ):
        source = _planned(plan_gain, what)
        if source is not None and (growth is not None or key == "optimised_system"):
            provenance[key] = source
    return Runway(
        current_system=sig(finite(_utilisation(rate.value, ceiling))),
        optimised_system=sig(finite(_utilisation(rate.value, optimised))),
        days_to_ceiling=None
        if growth is None
        else sig(finite(_runway_days(rate.value, ceiling, growth)), 4),
        days_to_optimised_ceiling=None
        if growth is None
        else sig(finite(_runway_days(rate.value, optimised, growth)), 4),
        runway_basis=None
        if growth is None
        else "days until req/s at the expected growth meets the ceiling; null: not growing",
        provenance=provenance,
    )
