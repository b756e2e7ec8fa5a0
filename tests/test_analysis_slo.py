"""Availability and error rate as SLOs: budget left and the SRE workbook's burn-rate rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.series import Series, from_inline, parse_window
from agent.analysis.slo import BURN_RULES, RATIO_CAP, SloKind, slo_status
from agent.errors import InvalidParams
from protocols.messages import SloStatus
from tests.strategies import finite, series

T0 = 1_780_000_000.0
MINUTE = 60.0
DAY = 86_400.0
ALLOWED = (100 - 99.9) / 100  # 0.1 % of requests may fail


def _series(values: np.ndarray, step: float) -> Series:
    ts = T0 + step * np.arange(values.size, dtype=np.float64)
    return Series(ts=ts.astype(np.float64), values=values.astype(np.float64))


def _status(
    values: np.ndarray, step: float, *, kind: SloKind = "availability", target: float = 99.9
) -> SloStatus:
    status = slo_status(_series(values, step), kind=kind, target=target, window_s=3 * DAY)
    assert status is not None
    return status


def test_rules_are_the_workbooks_four() -> None:
    assert [(r.long_window, r.short_window, r.threshold, r.severity) for r in BURN_RULES] == [
        ("1h", "5m", 14.4, "page"),
        ("6h", "30m", 6.0, "page"),
        ("1d", "2h", 3.0, "ticket"),
        ("3d", "6h", 1.0, "ticket"),
    ]
    assert all(parse_window(r.long_window) > parse_window(r.short_window) for r in BURN_RULES)


def test_availability_steady_at_99_5_burns_five_times_the_budget() -> None:
    # three days at one sample per 10 minutes: 0.5 % bad against 0.1 % allowed
    status = _status(np.full(433, 99.5), 600.0)
    assert status.objective_pct == 99.9
    assert status.bad_fraction == pytest.approx(0.005)
    assert status.error_budget_remaining == pytest.approx(1 - 5)
    assert [(b.long_burn, b.short_burn, b.coverage) for b in status.burn_rates] == [
        (5.0, 5.0, 1.0)
    ] * 4
    assert [b.firing for b in status.burn_rates] == [False, False, True, True]


def test_error_rate_at_half_its_target_burns_half_the_budget() -> None:
    status = _status(np.full(433, 0.5), 600.0, kind="error_rate", target=1.0)
    assert status.objective_pct == 99.0
    assert status.bad_fraction == pytest.approx(0.005)
    assert status.error_budget_remaining == pytest.approx(0.5)
    assert {b.long_burn for b in status.burn_rates} == {0.5}
    assert {b.short_burn for b in status.burn_rates} == {0.5}
    assert not any(b.firing for b in status.burn_rates)


def test_fresh_incident_burns_each_window_by_its_share_of_bad_minutes() -> None:
    # one sample a minute, each standing for the minute before it: 4 321 minutes at
    # 100 %, then 10 at 50 %. Over a span of k minutes, 10 bad minutes × 0.5 → 5 / k.
    values = np.r_[np.full(4321, 100.0), np.full(10, 50.0)]
    status = _status(values, MINUTE)

    def burn(minutes: float) -> float:
        return min(10, minutes) * 0.5 / minutes / ALLOWED

    expected = [
        (burn(60), burn(5)),  # 83.3 and 500
        (burn(360), burn(30)),  # 13.9 and 167
        (burn(1440), burn(120)),  # 3.47 and 41.7
        (burn(4320), burn(360)),  # 1.157 and 13.9
    ]
    for rate, (long_burn, short_burn) in zip(status.burn_rates, expected, strict=True):
        assert rate.long_burn == pytest.approx(long_burn, rel=1e-5)
        assert rate.short_burn == pytest.approx(short_burn, rel=1e-5)
        assert rate.coverage == 1.0
    assert [b.firing for b in status.burn_rates] == [True, True, True, True]
    # the 3-day SLO window holds 4 320 minutes: 5 / 4320 bad, 1.157× the budget spent
    assert status.bad_fraction == pytest.approx(5 / 4320, rel=1e-5)
    assert status.error_budget_remaining == pytest.approx(1 - burn(4320), rel=1e-5)


def test_two_hours_of_data_cannot_fire_the_long_rules() -> None:
    # 120 one-minute samples at 50 %: every burn is 500, but only the 1 h rule is covered
    status = _status(np.full(120, 50.0), MINUTE)
    assert [b.long_burn for b in status.burn_rates] == [pytest.approx(500)] * 4
    assert [b.coverage for b in status.burn_rates] == [
        1.0,
        pytest.approx(2 / 6),
        pytest.approx(2 / 24),
        pytest.approx(2 / 72),
    ]
    assert [b.firing for b in status.burn_rates] == [True, False, False, False]


def test_a_scraping_gap_is_missing_coverage_not_a_stretched_sample() -> None:
    # an hour of samples, four hours of nothing, an hour again: 2 h of the 6 h covered
    ts = (T0 + MINUTE * np.r_[np.arange(60), 300 + np.arange(60)]).astype(np.float64)
    s = Series(ts=ts, values=np.r_[np.full(60, 100.0), np.full(60, 99.0)])
    status = slo_status(s, kind="availability", target=99.9, window_s=DAY)
    assert status is not None
    six_hours = status.burn_rates[1]
    assert six_hours.coverage == pytest.approx(2 / 6)
    # 60 good and 60 bad (1 %) minutes: 0.5 % bad, 5× the budget
    assert six_hours.long_burn == pytest.approx(5.0)


def test_samples_at_one_instant_are_averaged() -> None:
    ts = (T0 + MINUTE * np.repeat(np.arange(60), 2)).astype(np.float64)  # two regions at once
    s = Series(ts=ts, values=np.tile([100.0, 99.0], 60))
    status = slo_status(s, kind="availability", target=99.9, window_s=3600.0)
    assert status is not None
    assert status.bad_fraction == pytest.approx(0.005)
    assert status.burn_rates[0].long_burn == pytest.approx(5.0)


def test_bare_number_gives_the_budget_but_no_burn() -> None:
    status = slo_status(from_inline(99.5), kind="availability", target=99.9, window_s=3600.0)
    assert status is not None
    assert status.bad_fraction == pytest.approx(0.005)
    assert status.error_budget_remaining == pytest.approx(-4.0)
    assert all(
        b.long_burn is None and b.short_burn is None and b.coverage == 0.0 and not b.firing
        for b in status.burn_rates
    )
    empty = Series(ts=np.zeros(0), values=np.zeros(0))
    assert slo_status(empty, kind="availability", target=99.9, window_s=3600.0) is None


def test_an_objective_of_100_percent_never_divides_by_zero() -> None:
    perfect = _status(np.full(433, 100.0), 600.0, target=100.0)
    assert perfect.error_budget_remaining == 1.0
    assert {b.long_burn for b in perfect.burn_rates} == {0.0}
    failing = _status(np.full(433, 99.0), 600.0, target=100.0)
    assert failing.error_budget_remaining == 1 - RATIO_CAP
    assert {b.long_burn for b in failing.burn_rates} == {RATIO_CAP}
    assert all(b.firing for b in failing.burn_rates)
    no_errors_allowed = _status(np.full(433, 0.0), 600.0, kind="error_rate", target=0.0)
    assert no_errors_allowed.error_budget_remaining == 1.0


def test_a_target_outside_0_to_100_is_the_callers_error() -> None:
    s = _series(np.full(10, 99.0), MINUTE)
    with pytest.raises(InvalidParams):
        slo_status(s, kind="availability", target=101.0, window_s=3600.0)
    with pytest.raises(InvalidParams):
        slo_status(s, kind="error_rate", target=math.nan, window_s=3600.0)
    with pytest.raises(InvalidParams):
        slo_status(s, kind="error_rate", target=1.0, window_s=0.0)


@given(
    series(finite),
    st.sampled_from(["availability", "error_rate"]),
    st.floats(0.0, 100.0),
    st.floats(1.0, 1e9),
)
def test_slo_never_raises_nor_reports_non_finite(
    s: Series, kind: SloKind, target: float, window_s: float
) -> None:
    status = slo_status(s, kind=kind, target=target, window_s=window_s)
    if len(s) == 0:
        assert status is None
        return
    assert status is not None
    assert 0.0 <= status.bad_fraction <= 1.0
    assert 1 - RATIO_CAP <= status.error_budget_remaining <= 1.0
    for rate in status.burn_rates:
        assert 0.0 <= rate.coverage <= 1.0
        for burn in (rate.long_burn, rate.short_burn):
            assert burn is None or 0.0 <= burn <= RATIO_CAP
