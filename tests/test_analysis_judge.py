"""Miss ratio, severity and urgency: hand-computed cases and hypothesis properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given

from agent.analysis.bottlenecks import find_bottlenecks
from agent.analysis.catalog import CATALOG, MetricSpec
from agent.analysis.judge import MAX_RATIO, judge, meets_target, miss_ratio, severity, urgency
from agent.analysis.series import Series
from tests.strategies import finite, ratios, series, specs

_RANK = {None: 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def test_bounded_availability_is_judged_in_error_budget_space() -> None:
    # (100 − 99.5) / (100 − 99.9) = 0.5 / 0.1 = 5
    ratio = miss_ratio(CATALOG["api_availability"], 99.5, 99.9)
    assert ratio == pytest.approx(5.0)
    assert severity(ratio) == "critical"
    assert urgency(ratio, declining=False) == 100


def test_lower_is_better_150_vs_100() -> None:
    ratio = miss_ratio(CATALOG["api_response_time"], 150.0, 100.0)
    assert ratio == 1.5
    assert severity(ratio) == "high"
    assert urgency(ratio, declining=False) == 75


def test_unbounded_higher_is_better_is_target_over_current() -> None:
    assert miss_ratio(CATALOG["api_throughput"], 250.0, 500.0) == 2.0
    assert miss_ratio(CATALOG["api_throughput"], 1000.0, 500.0) == 0.5
    assert miss_ratio(CATALOG["api_throughput"], 0.0, 500.0) == MAX_RATIO


def test_declining_multiplies_urgency_by_one_and_a_half() -> None:
    # 1.2 × 50 = 60; × 1.5 = 90
    assert urgency(1.2, declining=False) == 60
    assert urgency(1.2, declining=True) == 90
    assert urgency(3.0, declining=True) == 100
    assert urgency(0.0, declining=False) == 1


@pytest.mark.parametrize(
    ("ratio", "level"),
    [(0.5, None), (1.0, None), (1.01, "low"), (1.2, "medium"), (1.5, "high"), (2.0, "critical")],
)
def test_severity_thresholds(ratio: float, level: str | None) -> None:
    assert severity(ratio) == level
    assert meets_target(ratio) is (level is None)


def test_zero_denominators_stay_finite() -> None:
    spec = CATALOG["error_rate"]
    assert miss_ratio(spec, 0.0, 0.0) == 0.0
    assert miss_ratio(spec, 0.5, 0.0) == MAX_RATIO
    bounded = CATALOG["api_availability"]
    assert miss_ratio(bounded, 100.0, 100.0) == 0.0
    assert miss_ratio(bounded, 99.0, 100.0) == MAX_RATIO
    assert miss_ratio(bounded, 100.5, 99.9) == 0.0


def test_urgency_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        urgency(math.nan, declining=False)


@given(specs, finite, finite)
def test_miss_ratio_is_finite_and_non_negative(
    spec: MetricSpec, current: float, target: float
) -> None:
    ratio = miss_ratio(spec, current, target)
    assert math.isfinite(ratio)
    assert 0.0 <= ratio <= MAX_RATIO


@given(finite)
def test_urgency_is_an_int_in_1_to_100(ratio: float) -> None:
    for declining in (False, True):
        u = urgency(ratio, declining)
        assert type(u) is int
        assert 1 <= u <= 100


@given(ratios, ratios)
def test_severity_and_urgency_are_monotone_in_the_ratio(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert _RANK[severity(lo)] <= _RANK[severity(hi)]
    assert urgency(lo, declining=False) <= urgency(hi, declining=False)
    assert urgency(lo, declining=False) <= urgency(lo, declining=True)


@given(series(), specs, finite)
def test_a_judgement_on_the_wire_is_always_finite(
    s: Series, spec: MetricSpec, target: float
) -> None:
    assume(len(s) > 0)
    j = judge(spec, s, target=target)
    perf = j.to_performance()
    assert math.isfinite(perf.current)
    assert math.isfinite(perf.miss_ratio)
    for finding in find_bottlenecks([j]):
        assert 1 <= finding.to_bottleneck().optimization_urgency <= 100
