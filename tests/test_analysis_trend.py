"""Theil–Sen + Mann–Kendall trends read in the metric's own direction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given

from agent.analysis.catalog import CATALOG, MetricSpec
from agent.analysis.judge import judge
from agent.analysis.series import Series, from_inline
from agent.analysis.trend import METHOD, assess_trend
from tests.strategies import series, specs

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
    # exact Mann–Kendall: only 2 of the 12! orderings are this extreme
    assert result.p_value == pytest.approx(2 / math.factorial(12))
    detail = result.to_detail()
    assert detail.method == METHOD
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
