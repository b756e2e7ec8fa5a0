"""Theil–Sen + Mann–Kendall trends read in the metric's own direction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from scipy import stats

from agent.analysis.bottlenecks import evidence
from agent.analysis.catalog import CATALOG, MetricSpec
from agent.analysis.judge import judge
from agent.analysis.series import Series, from_inline
from agent.analysis.trend import (
    METHOD,
    assess_trend,
    control_false_discoveries,
    mann_kendall,
    theil_sen,
)
from tests.strategies import long_series, series, specs

T0 = 1_780_000_000.0
FIVE_MINUTES = 300.0


def _series(values: list[float], step: float = FIVE_MINUTES) -> Series:
    return from_inline([(T0 + i * step, v) for i, v in enumerate(values)])


def test_strictly_rising_latency_is_declining_with_its_slope_per_hour() -> None:
    # +1 ms every 5 minutes = +12 ms/h
    result = assess_trend(_series([100.0 + i for i in range(12)]), "lower_is_better")
    assert result.trend == "declining"
    assert result.slope_per_hour == 12.0
    assert result.kendall_tau == pytest.approx(1.0)
    # S = 66 of 66 pairs; Var(S) = 12·11·29/18; Z = (66 − 1)/√Var (continuity corrected)
    z = 65 / math.sqrt(12 * 11 * 29 / 18)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert result.p_value == pytest.approx(8.3031e-06, rel=1e-4)
    detail = result.to_detail()
    assert detail.method == f"{METHOD} over 12 samples"
    assert detail.samples == 12


def test_rising_throughput_is_improving() -> None:
    result = assess_trend(_series([400.0 + 5 * i for i in range(12)]), "higher_is_better")
    assert result.trend == "improving"


def test_declining_trend_raises_urgency_one_and_a_half_times() -> None:
    # p95 of 100..111: rank 11 × 0.95 = 10.45 → 110.45; ratio 1.1045
    # urgency: 1.1045 × 50 = 55.2 → 55 flat; × 1.5 = 82.8 → 83 declining
    rising = judge(
        CATALOG["api_response_time"], _series([100.0 + i for i in range(12)]), target=100
    )
    assert rising.current == 110.45
    assert rising.severity == "low"
    assert rising.urgency == 83
    flat = judge(CATALOG["api_response_time"], from_inline(110.45), target=100)
    assert flat.urgency == 55


def test_noisy_flat_series_is_stable() -> None:
    values = [100.0, 103.0, 99.0, 102.0, 98.0, 101.0, 100.0, 97.0, 103.0, 99.0, 101.0, 100.0]
    assert assess_trend(_series(values), "lower_is_better").trend == "stable"


def test_constant_series_is_stable_without_warnings() -> None:
    result = assess_trend(_series([50.0] * 12), "lower_is_better")
    assert result.trend == "stable"
    assert result.slope_per_hour == 0.0
    assert result.p_value is None


def test_too_few_samples_is_unknown_with_the_count() -> None:
    result = assess_trend(_series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), "lower_is_better")
    assert (result.trend, result.samples, result.slope_per_hour) == ("unknown", 7, None)
    assert assess_trend(from_inline(5.0), "lower_is_better").trend == "unknown"


def test_samples_at_one_instant_have_no_trend() -> None:
    result = assess_trend(_series([float(i) for i in range(10)], step=0.0), "lower_is_better")
    assert result.trend == "unknown"


@given(series(), specs)
def test_trend_never_raises_nor_returns_non_finite(s: Series, spec: MetricSpec) -> None:
    result = assess_trend(s, spec.direction)
    assert result.samples == len(s)
    for x in (result.slope_per_hour, result.kendall_tau, result.p_value):
        assert x is None or math.isfinite(x)
    assert np.all(np.diff(s.ts) >= 0)


# --- bucketed trends on realistic windows ----------------------------------------------

DAY_AT_10S = 8_640


def _noisy(slope_per_hour: float, seed: int, n: int = DAY_AT_10S, step: float = 10.0) -> Series:
    """A day of 10 s samples: 50 ± 5 (normal) plus a linear drift."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.float64) * step
    values = 50.0 + rng.normal(0.0, 5.0, n) + slope_per_hour * (ts - T0) / 3600.0
    return Series(ts=ts.astype(np.float64), values=values.astype(np.float64))


@pytest.mark.parametrize(
    ("metric", "slope", "expected"),
    [
        ("api_response_time", +0.5, "declining"),  # latency rising: worse
        ("api_response_time", -0.5, "improving"),
        ("cache_hit_rate", -0.5, "declining"),  # hit rate falling: worse
        ("cache_hit_rate", +0.5, "improving"),
    ],
)
def test_noisy_drift_is_read_in_the_metric_direction(
    metric: str, slope: float, expected: str
) -> None:
    result = assess_trend(_noisy(slope, seed=7), CATALOG[metric].direction)
    assert result.trend == expected
    assert result.samples == DAY_AT_10S
    assert result.slope_per_hour == pytest.approx(slope, rel=0.1)
    assert result.to_detail().method == f"{METHOD} over 120 bucket medians"


@pytest.mark.parametrize(("n", "step"), [(40, 60.0), (2_000, 10.0)])
def test_white_noise_false_positive_rate_stays_near_alpha(n: int, step: float) -> None:
    # 200 seeded trials of pure noise: a trend in under 10 % of them (α = 0.05).
    trials = 200
    flagged = sum(
        assess_trend(_noisy(0.0, seed, n=n, step=step), "lower_is_better").trend != "stable"
        for seed in range(trials)
    )
    rate = flagged / trials
    print(f"white noise, n={n}: {flagged}/{trials} flagged = {rate:.1%}")
    assert rate < 0.10


def test_an_outlier_in_a_bucket_moves_neither_the_slope_nor_the_verdict() -> None:
    clean = _noisy(0.0, seed=3)
    values = clean.values.copy()
    values[-50:] = 10_000.0  # a burst at the very end, inside the last bucket
    spiked = assess_trend(Series(ts=clean.ts, values=values), "lower_is_better")
    base = assess_trend(clean, "lower_is_better")
    assert spiked.trend == base.trend == "stable"
    assert spiked.slope_per_hour == pytest.approx(base.slope_per_hour, abs=0.05)


def test_sampling_rate_changes_the_cost_not_the_reading() -> None:
    # The same drifting day sampled every 10 s and every 60 s: 120 points either way.
    fast = _noisy(0.5, seed=11, n=DAY_AT_10S, step=10.0)
    slow = _noisy(0.5, seed=11, n=DAY_AT_10S // 6, step=60.0)
    a = assess_trend(fast, "lower_is_better")
    b = assess_trend(slow, "lower_is_better")
    assert a.points == b.points == 120
    assert a.trend == b.trend == "declining"
    assert a.slope_per_hour == pytest.approx(0.5, rel=0.1)
    assert b.slope_per_hour == pytest.approx(0.5, rel=0.1)


# --- agreement with scipy on small inputs ------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_agrees_with_scipy_without_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 100))
    ts = np.sort(T0 + rng.choice(100_000, size=n, replace=False).astype(float))
    values = rng.normal(0.0, 1.0, n) + rng.normal(0.0, 0.05) * np.arange(n)
    result = assess_trend(Series(ts=ts, values=values), "lower_is_better")
    t = ts - ts[0]
    expected_slope = stats.theilslopes(values, t).slope * 3600.0
    assert result.slope_per_hour == pytest.approx(expected_slope, rel=1e-9, abs=1e-9)
    tau = stats.kendalltau(t, values)
    assert result.kendall_tau == pytest.approx(tau.statistic, rel=1e-12, abs=1e-12)
    # Without ties: S = tau·n(n−1)/2, Var(S) = n(n−1)(2n+5)/18, continuity corrected,
    # widened by the autocorrelation correction (1 when the residuals show none).
    s = round(tau.statistic * n * (n - 1) / 2)
    var = n * (n - 1) * (2 * n + 5) / 18 * result.variance_inflation
    z = (abs(s) - 1) / math.sqrt(var) if s else 0.0
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    if result.variance_inflation == 1.0:
        # scipy's exact p (small n) or its uncorrected normal p: same verdict away from α.
        assert result.p_value == pytest.approx(tau.pvalue, abs=0.05)


@pytest.mark.parametrize("seed", range(30))
def test_tie_corrected_variance_matches_scipy_asymptotic(seed: int) -> None:
    # Ties in values and in times: Kendall's full variance is scipy's asymptotic one.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 100))
    t = np.sort(rng.integers(0, n, size=n).astype(float))
    y = rng.integers(0, 6, size=n).astype(float)
    if np.all(y == y[0]) or np.all(t == t[0]):
        return
    s, var, _ = mann_kendall(t, y)
    ours = math.erfc(abs(s) / math.sqrt(var) / math.sqrt(2))
    assert ours == pytest.approx(stats.kendalltau(t, y, method="asymptotic").pvalue, rel=1e-9)


def test_theil_sen_ignores_pairs_at_one_instant() -> None:
    t = np.array([0.0, 0.0, 3600.0, 3600.0])
    y = np.array([1.0, 5.0, 3.0, 7.0])
    # slopes across instants: 2, 6, −2, 2 per hour → median 2
    assert theil_sen(t, y) * 3600.0 == pytest.approx(2.0)


@given(long_series(), specs)
def test_bucketed_trend_never_raises_nor_returns_non_finite(s: Series, spec: MetricSpec) -> None:
    result = assess_trend(s, spec.direction)
    assert result.samples == len(s)
    for x in (result.slope_per_hour, result.kendall_tau, result.p_value):
        assert x is None or math.isfinite(x)
    assert result.points is None or result.points <= 120


# --- autocorrelation, steps, several metrics at once -----------------------------------


def _ar1(seed: int, n: int = 360, phi: float = 0.9, step: float = 10.0) -> Series:
    """An hour of 10 s scrapes of AR(1) noise around 100 (σ of the level ≈ 5)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 5.0 * math.sqrt(1 - phi**2), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, 5.0)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return Series(ts=T0 + np.arange(n) * step, values=100.0 + x)


def test_autocorrelated_flat_hours_are_rarely_called_a_trend() -> None:
    # the plain Mann–Kendall test calls ~40 % of these a trend; corrected, about α
    trials = 200
    called = sum(
        assess_trend(_ar1(seed), "lower_is_better").trend != "stable" for seed in range(trials)
    )
    print(f"AR(1) φ=0.9: {called}/{trials} called a trend")
    assert called / trials < 0.10
    result = assess_trend(_ar1(0), "lower_is_better")
    assert result.autocorrelation is not None
    assert result.autocorrelation > 0.5
    assert result.variance_inflation > 2.0


def test_a_real_drift_in_autocorrelated_noise_is_still_found() -> None:
    found = 0
    for seed in range(50):
        s = _ar1(seed)
        drifting = Series(ts=s.ts, values=s.values + np.linspace(0.0, 40.0, len(s)))
        result = assess_trend(drifting, "lower_is_better")
        found += result.trend == "declining"
        assert result.slope_low_per_hour is not None
        assert result.slope_high_per_hour is not None
    assert found >= 45


def test_benjamini_hochberg_decides_on_q_across_the_report() -> None:
    weak = assess_trend(_noisy(0.5, seed=7, n=400), "lower_is_better")
    assert weak.p_value is not None
    flat = {f"m{i}": assess_trend(_noisy(0.0, seed=100 + i), "lower_is_better") for i in range(19)}
    decided = control_false_discoveries({"weak": weak, **flat})
    assert all(t.q_value is not None for t in decided.values())
    assert decided["weak"].q_value >= weak.p_value  # type: ignore[operator]
    assert sum(t.trend != "stable" for t in decided.values()) <= sum(
        t.trend != "stable" for t in {"weak": weak, **flat}.values()
    )
    untested = assess_trend(_series([1.0] * 3), "lower_is_better")
    assert control_false_discoveries({"x": untested}) == {"x": untested}


def test_a_window_too_short_for_a_rate_says_so() -> None:
    result = assess_trend(_series([100.0 + i for i in range(12)], step=10.0), "lower_is_better")
    assert (result.trend, result.slope_per_hour) == ("unknown", None)
    assert result.note == "1.83 min of data in the window: a rate per hour needs 15 min"


def test_a_level_shift_is_reported_as_a_step_and_the_slope_is_after_it() -> None:
    s = _ar1(3, phi=0.5)
    values = s.values.copy()
    values[240:] += 100.0  # +100 % twenty minutes before the end
    stepped = Series(ts=s.ts, values=values)
    j = judge(CATALOG["api_response_time"], stepped, target=150.0)
    shift = j.trend.level_shift
    assert shift is not None
    assert abs(shift.at.timestamp() - float(s.ts[240])) <= 60.0
    assert shift.before == pytest.approx(100.0, abs=5.0)
    assert shift.after == pytest.approx(200.0, abs=5.0)
    assert j.trend.span_s is not None
    assert j.trend.span_s <= 20 * 60.0
    detail = j.to_performance().trend_detail
    assert detail is not None
    assert detail.level_shift == shift
    assert "stepped" in evidence(j)


def test_a_worsening_metric_still_meeting_its_target_says_when_it_will_miss() -> None:
    # +20 ms/h from ~100 against 150 ms: about 2.5 h left (p95 is a little above the mean)
    s = _noisy(20.0, seed=4, n=720)
    shifted = Series(ts=s.ts, values=s.values + 50.0)
    j = judge(CATALOG["api_response_time"], shifted, target=200.0)
    assert j.meets_target
    assert j.trend.declining
    detail = j.to_performance().trend_detail
    assert detail is not None
    assert detail.hours_to_breach is not None
    assert 0.5 < detail.hours_to_breach < 6.0
    assert detail.hours_to_breach_low is not None
    assert detail.hours_to_breach_low <= detail.hours_to_breach
    far = judge(CATALOG["api_response_time"], shifted, target=90.0)  # already missing
    assert far.to_performance().trend_detail.hours_to_breach is None  # type: ignore[union-attr]
