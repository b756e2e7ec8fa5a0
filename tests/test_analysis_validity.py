"""Samples checked against what they can physically be; units that look wrong."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from agent.analysis.catalog import CATALOG, MetricSpec
from agent.analysis.series import Series, from_inline
from agent.analysis.validity import BOUNDS, screen, unit_suspicion
from tests.strategies import series, specs

T0 = 1_780_000_000.0


def _series(values: list[float]) -> Series:
    return from_inline([(T0 + 10.0 * i, v) for i, v in enumerate(values)])


def test_a_percentage_above_100_is_rejected_and_counted_not_averaged() -> None:
    screened = screen(CATALOG["api_availability"], _series([99.9, 150.0, 99.8, -2.0, 99.7]))
    assert screened.rejected == 2
    assert screened.reason == "outside [0, 100] %: 1 below, 1 above"
    assert screened.series.values.tolist() == [99.9, 99.8, 99.7]
    assert float(np.mean(screened.series.values)) <= 100.0


def test_a_negative_latency_is_rejected_and_a_scalar_can_be_rejected_whole() -> None:
    screened = screen(CATALOG["database_query_time"], _series([3.0, -1.0, 4.0]))
    assert (screened.rejected, screened.series.values.tolist()) == (1, [3.0, 4.0])
    assert screened.reason == "outside ≥ 0 ms: 1 below"
    gone = screen(CATALOG["api_availability"], from_inline(150.0))
    assert (gone.rejected, len(gone.series)) == (1, 0)


@given(series(), specs)
def test_what_is_kept_is_always_possible(s: Series, spec: MetricSpec) -> None:
    screened = screen(spec, s)
    low, high = BOUNDS.get(spec.unit, (-np.inf, np.inf))
    assert bool(np.all((screened.series.values >= low) & (screened.series.values <= high)))
    assert screened.rejected + len(screened.series) == len(s)


def test_a_latency_in_seconds_is_named_and_a_real_fast_one_is_not() -> None:
    spec = CATALOG["database_query_time"]
    said = unit_suspicion(spec, _series([0.004, 0.006, 0.005]), 50.0)
    assert said is not None
    assert "looks like seconds" in said
    assert unit_suspicion(spec, _series([0.9, 1.2, 0.8]), 50.0) is None  # 1 ms is plausible


def test_an_availability_sent_as_a_ratio_is_named_a_low_error_rate_is_not() -> None:
    said = unit_suspicion(CATALOG["api_availability"], _series([0.999, 0.998]), 99.9)
    assert said is not None
    assert "ratio" in said
    assert unit_suspicion(CATALOG["error_rate"], _series([0.2, 0.3, 0.25]), 1.5) is None
    assert unit_suspicion(CATALOG["api_availability"], _series([0.0, 0.0]), 99.9) is None
