"""Level shifts (PELT over bucket medians) and robust-z outliers, on hand-made series.

The autocorrelated cases use what scraped metrics look like: AR(1) noise with φ = 0.9
between 10 s scrapes (≈ 0.76 between the 30 s bucket medians of an hour), lognormal
for latencies, so the noise grows with the level.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
import ruptures as rpt
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.changepoints import (
    RATIO_CAP,
    _mad,
    _Noise,
    _residual_phi,
    detect_change_points,
    find_outliers,
    pelt,
)
from agent.analysis.series import Series
from protocols.messages import ChangePoint
from tests.strategies import finite, series, wire_direction

T0 = 1_780_000_000.0
MINUTE = 60.0


def _series(values: np.ndarray, step: float = MINUTE) -> Series:
    ts = T0 + step * np.arange(values.size, dtype=np.float64)
    return Series(ts=ts.astype(np.float64), values=values.astype(np.float64))


def _at(i: int, step: float = MINUTE) -> datetime:
    return datetime.fromtimestamp(T0 + i * step, tz=UTC)


def _step(first: float, second: float, *, noise: float, seed: int, n: int = 60) -> Series:
    rng = np.random.default_rng(seed)
    return _series(np.r_[first + rng.normal(0, noise, n), second + rng.normal(0, noise, n)])


def _ar1(rng: np.random.Generator, n: int, phi: float = 0.9) -> np.ndarray:
    """A stationary AR(1) with unit marginal variance (φ = 0.9: 10 s scrapes)."""
    shocks = rng.standard_normal(n) * math.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    x = float(rng.standard_normal())
    for i, shock in enumerate(shocks.tolist()):
        x = phi * x + shock
        out[i] = x
    return out


def _hour_at_10s(rng: np.random.Generator, level: np.ndarray | float, noise: float) -> Series:
    """An hour of 10 s scrapes (360) around ``level``, lognormal AR(1) noise of log-SD ``noise``."""
    return _series(level * np.exp(noise * _ar1(rng, 360)), 10.0)


def _finite(point: ChangePoint) -> bool:
    numbers = [point.before, point.after, point.shift]
    if point.shift_pct is not None:
        numbers.append(point.shift_pct)
    return all(math.isfinite(x) for x in numbers)


def test_latency_step_up_is_one_worse_change_at_the_step() -> None:
    # 100 ms ± 2 for an hour, then 160 ms ± 2: one sample per bucket (120 < 200 buckets)
    [point] = detect_change_points(_step(100, 160, noise=2, seed=1), "lower_is_better")
    assert abs((point.at - _at(60)).total_seconds()) <= MINUTE
    assert point.before == pytest.approx(100, abs=1)
    assert point.after == pytest.approx(160, abs=1)
    assert point.shift == pytest.approx(60, abs=2)
    assert point.shift == pytest.approx(point.after - point.before)
    assert point.shift_pct == pytest.approx(60, abs=2)
    assert point.worse
    assert point.at.tzinfo is not None


def test_hit_rate_step_down_is_worse_and_step_up_is_not() -> None:
    [down] = detect_change_points(_step(95, 80, noise=0.5, seed=2), "higher_is_better")
    assert down.worse
    assert down.shift == pytest.approx(-15, abs=0.5)
    assert down.shift_pct == pytest.approx(-15 / 95 * 100, abs=0.6)
    [up] = detect_change_points(_step(80, 95, noise=0.5, seed=3), "higher_is_better")
    assert not up.worse
    assert abs((up.at - _at(60)).total_seconds()) <= MINUTE


def test_white_noise_rarely_gives_a_change() -> None:
    rng = np.random.default_rng(4)
    hits = sum(
        bool(detect_change_points(_series(100 + rng.normal(0, 2, 120)), "lower_is_better"))
        for _ in range(200)
    )
    assert hits < 20  # < 10 % of trials


@pytest.mark.parametrize(("n", "noise"), [(360, 0.10), (360, 0.25), (120, 0.10)])
def test_autocorrelated_noise_rarely_gives_a_change(n: int, noise: float) -> None:
    # 1 h at 10 s (bucket medians φ ≈ 0.76) and 20 min at 10 s (one sample a bucket,
    # φ = 0.9): the white-noise σ put change points in 144, 164 and 194 of these 200
    rng = np.random.default_rng(10)
    hits = sum(
        bool(
            detect_change_points(
                _series(100 * np.exp(noise * _ar1(rng, n)), 10.0), "lower_is_better"
            )
        )
        for _ in range(200)
    )
    assert hits <= 20  # ≤ 10 % of windows (measured: 0, 1 and 6 of 200)


@pytest.mark.parametrize(
    ("before", "after", "noise", "share"),
    [(100.0, 300.0, 0.10, 0.90), (60.0, 180.0, 0.25, 0.85)],
)
def test_incident_step_in_autocorrelated_noise_is_one_change_at_the_step(
    before: float, after: float, noise: float, share: float
) -> None:
    # latency × 3 for the last 20 minutes; the noise after it is 3× as large too
    rng = np.random.default_rng(11)
    at = 240  # 40 min into the hour
    level = np.where(np.arange(360) >= at, after, before)
    right = 0
    for _ in range(200):
        points = detect_change_points(_hour_at_10s(rng, level, noise), "lower_is_better")
        if len(points) == 1 and abs((points[0].at - _at(at, 10.0)).total_seconds()) <= MINUTE:
            [point] = points
            assert point.worse
            assert point.before == pytest.approx(before, rel=2 * noise)
            assert point.after == pytest.approx(after, rel=2 * noise)
            right += 1
    assert right >= share * 200  # measured: 97.5 % and 93.5 % (the white-noise σ: 1 %, 1.5 %)


def test_slow_ramp_in_autocorrelated_noise_is_not_cut_into_steps() -> None:
    # 50 → 88 ms over the hour in 25 % noise: a trend's business, not a staircase's
    rng = np.random.default_rng(12)
    hits = sum(
        bool(
            detect_change_points(
                _hour_at_10s(rng, np.linspace(50, 88, 360), 0.25), "lower_is_better"
            )
        )
        for _ in range(200)
    )
    assert hits <= 20  # measured 13 of 200 (the white-noise σ: 187)


def test_noise_memory_is_measured_around_the_steps() -> None:
    rng = np.random.default_rng(13)
    # 120 points of AR(1) φ = 0.9, with a 6σ step at 80 that the residuals leave out
    plain = [_residual_phi(_ar1(rng, 120), []) for _ in range(200)]
    stepped = [
        _residual_phi(_ar1(rng, 120) + np.where(np.arange(120) >= 80, 6.0, 0.0), [80])
        for _ in range(200)
    ]
    # ≈ 0.886 and 0.869 over 1 000 seeds; without the bias correction ≈ 0.86 and 0.81
    assert float(np.mean(plain)) == pytest.approx(0.9, abs=0.03)
    assert float(np.mean(stepped)) == pytest.approx(0.9, abs=0.05)
    # white noise: φ = 0 (below the 2/√n bound) in ≥ 95 % of windows, step or not
    white = [_residual_phi(rng.normal(0, 1, 120), []) for _ in range(200)]
    white_step = [
        _residual_phi(rng.normal(0, 1, 120) + np.where(np.arange(120) >= 60, 6.0, 0.0), [60])
        for _ in range(200)
    ]
    assert sum(phi == 0.0 for phi in white) >= 190
    assert sum(phi == 0.0 for phi in white_step) >= 190


def test_white_noise_keeps_the_white_noise_sigma() -> None:
    # φ = 0: σ = MAD(Δ)·1.4826/√2 as before, and the long-run σ is σ itself
    diffs = np.diff(np.random.default_rng(14).normal(0, 2, 120))
    diff_sd = _mad(diffs) * 1.4826
    white = _Noise(diff_sd, 0.0, 1e-12)
    assert white.sigma() == diff_sd / math.sqrt(2.0)
    assert white.long_run == white.sigma()
    # φ = 0.75: Var(Δ) = 2σ²(1 − φ) and σ_LR² = σ²(1 + φ)/(1 − φ)
    memory = _Noise(diff_sd, 0.75, 1e-12)
    assert memory.sigma() == pytest.approx(diff_sd / math.sqrt(0.5))
    assert memory.long_run == pytest.approx(memory.sigma() * math.sqrt(7.0))


def test_exact_level_shifts_are_found_with_no_noise_at_all() -> None:
    # MAD of the differences is 0: the σ floor still lets PELT cut at each step
    values = np.repeat([100.0, 150.0, 120.0], 20)
    points = detect_change_points(_series(values), "lower_is_better")
    assert [(p.at, p.before, p.after, p.shift) for p in points] == [
        (_at(20), 100.0, 150.0, 50.0),
        (_at(40), 150.0, 120.0, -30.0),
    ]
    assert [p.worse for p in points] == [True, False]
    assert points[1].shift_pct == pytest.approx(-20.0)


def test_shift_from_zero_has_no_percentage() -> None:
    [point] = detect_change_points(_series(np.repeat([0.0, 2.0], 20)), "lower_is_better")
    assert point.before == 0.0
    assert point.shift_pct is None


def test_small_steps_below_the_thresholds_are_not_reported() -> None:
    # 100 → 103 with no noise: 3 % < min_shift_pct 5 %
    assert detect_change_points(_series(np.repeat([100.0, 103.0], 30)), "lower_is_better") == []
    # a 1σ step in noise: significant for PELT maybe, below 3σ in any case
    assert detect_change_points(_step(100, 102, noise=2, seed=5), "lower_is_better") == []
    # with the thresholds lowered the same exact step is reported
    [point] = detect_change_points(
        _series(np.repeat([100.0, 103.0], 30)), "lower_is_better", min_shift_pct=1.0
    )
    assert point.shift == pytest.approx(3.0)


def test_constant_short_and_scalar_series_have_no_change() -> None:
    assert detect_change_points(_series(np.full(100, 42.0)), "lower_is_better") == []
    assert detect_change_points(_series(np.zeros(100)), "lower_is_better") == []
    few = _series(np.r_[np.full(5, 100.0), np.full(4, 200.0)])  # 9 < 2·min_segment
    assert detect_change_points(few, "lower_is_better") == []
    scalar = Series(ts=np.array([math.nan]), values=np.array([5.0]), scalar=True)
    assert detect_change_points(scalar, "lower_is_better") == []


def test_dense_series_is_bucketed_and_the_change_located_within_a_bucket() -> None:
    # one day at 10 s (8 640 samples) → 200 buckets of 432 s
    rng = np.random.default_rng(6)
    n, step = 8640, 10.0
    values = np.r_[100 + rng.normal(0, 5, n // 2), 130 + rng.normal(0, 5, n // 2)]
    [point] = detect_change_points(_series(values, step), "lower_is_better")
    assert abs((point.at - _at(n // 2, step)).total_seconds()) <= n * step / 200
    assert point.before == pytest.approx(100, abs=0.5)
    assert point.after == pytest.approx(130, abs=0.5)


def test_a_lone_spike_is_an_outlier_not_a_level_shift() -> None:
    rng = np.random.default_rng(7)
    values = 100 + rng.normal(0, 2, 120)
    values[70] = 1000.0
    s = _series(values)
    assert detect_change_points(s, "lower_is_better") == []
    [outlier] = find_outliers(s)
    assert outlier.at == _at(70)
    assert outlier.value == 1000.0
    assert outlier.robust_z > 100


def test_outliers_most_extreme_first_and_bounded_in_number() -> None:
    rng = np.random.default_rng(8)
    values = 100 + rng.normal(0, 2, 120)
    values[[10, 50, 90]] = [150.0, 20.0, 300.0]
    outliers = find_outliers(_series(values))
    assert [o.at for o in outliers] == [_at(90), _at(50), _at(10)]
    assert outliers[1].robust_z < 0  # below the median
    assert [o.at for o in find_outliers(_series(values), max_reported=1)] == [_at(90)]


def test_spike_in_a_flat_series_gets_a_finite_z_from_the_mean_deviation() -> None:
    # MAD is 0; mean |deviation| = 900 / 51, × √(π/2) → z = 51 / √(π/2) ≈ 40.69
    values = np.full(51, 100.0)
    values[20] = 1000.0
    [outlier] = find_outliers(_series(values))
    assert outlier.at == _at(20)
    assert outlier.robust_z == pytest.approx(51 / math.sqrt(math.pi / 2), rel=1e-5)
    assert find_outliers(_series(np.full(51, 100.0))) == []


@pytest.mark.parametrize("seed", range(40))
def test_pelt_equals_ruptures(seed: int) -> None:
    """Our vectorised PELT finds exactly ruptures' segmentation (l2 cost, same penalty)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 160))
    levels = np.repeat(rng.normal(0, 4, 5), n // 5 + 1)[:n]
    signal = levels + rng.normal(0, 1, n)
    min_size = int(rng.integers(1, 8))
    penalty = float(rng.uniform(1, 30))
    expected = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(signal).predict(pen=penalty)
    assert pelt(signal, penalty, min_size) == expected


_extremes = st.sampled_from([0.0, 1.0, -1.0, 5e-324, 1e-300, 1.7976931348623157e308, -1e308])


@given(series(finite | _extremes), wire_direction, st.integers(1, 6))
def test_change_points_never_raise_nor_report_non_finite(
    s: Series, direction: str, min_segment: int
) -> None:
    points = detect_change_points(
        s,
        "lower_is_better" if direction == "lower_is_better" else "higher_is_better",
        min_segment=min_segment,
    )
    assert all(_finite(p) for p in points)
    assert [p.at for p in points] == sorted(p.at for p in points)


@given(series(finite | _extremes), st.floats(0.5, 10))
def test_outliers_never_raise_nor_report_non_finite(s: Series, threshold: float) -> None:
    outliers = find_outliers(s, threshold=threshold)
    assert len(outliers) <= 10
    assert all(math.isfinite(o.robust_z) and abs(o.robust_z) <= RATIO_CAP for o in outliers)
    assert all(abs(o.robust_z) >= threshold for o in outliers)
