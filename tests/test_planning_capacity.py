"""Capacity planning: USL ceiling, Little's law, demand growth, trigger crossings, projections."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.analysis.series import FloatArray, Series
from agent.planning.capacity import (
    MAX_FIT_POINTS,
    GrowthFit,
    TriggerCrossing,
    UslFit,
    capacity_projections,
    fit_growth,
    fit_usl,
    little_concurrency,
    project,
    trigger_crossing,
)
from agent.store import MetricStore
from protocols.messages import ScalabilityProjections
from tests.strategies import epoch, finite, load_observations, plausible_load, series

T0 = 1_780_000_000.0
DAY = 86_400.0
TRIGGERS = {"cpu_utilization": 75.0, "memory_utilization": 80.0, "api_response_time": 100.0}


def usl(n: FloatArray, lam: float, sigma: float, kappa: float) -> FloatArray:
    result: FloatArray = lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))
    return result


def assert_all_finite(obj: Any) -> None:
    """No NaN or inf anywhere in a result: dataclass fields, dicts, lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for field in dataclasses.fields(obj):
            assert_all_finite(getattr(obj, field.name))
    elif isinstance(obj, dict):
        for value in obj.values():
            assert_all_finite(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            assert_all_finite(value)
    elif isinstance(obj, float):
        assert math.isfinite(obj), obj


# --- USL ------------------------------------------------------------------------------


def test_usl_recovers_known_parameters_peak_and_ceiling() -> None:
    rng = np.random.default_rng(7)
    n = np.arange(1.0, 201.0)
    x = usl(n, 100.0, 0.05, 0.001) * rng.lognormal(0.0, 0.03, n.size)
    fit = fit_usl(n, x)
    assert fit.model == "usl"
    assert fit.sigma == pytest.approx(0.05, rel=0.1)
    assert fit.kappa == pytest.approx(0.001, rel=0.1)
    assert fit.lambda_ == pytest.approx(100.0, rel=0.05)
    true_peak = math.sqrt(0.95 / 0.001)  # 30.8
    assert fit.peak_concurrency == pytest.approx(true_peak, rel=0.05)
    assert fit.ceiling == pytest.approx(
        float(usl(np.array([true_peak]), 100, 0.05, 0.001)[0]), rel=0.03
    )
    assert fit.r2 is not None
    assert fit.r2 > 0.98
    assert not fit.extrapolated
    report = msgspec.to_builtins(fit.to_report("test"))
    assert report["model"] == "usl"
    assert report["peak_is_extrapolated"] is False
    assert_all_finite(report)


def test_many_observations_are_binned_and_still_recover_the_curve() -> None:
    rng = np.random.default_rng(3)
    n = rng.uniform(1.0, 200.0, 5_000)
    x = usl(n, 100.0, 0.05, 0.001) * rng.lognormal(0.0, 0.03, n.size)
    fit = fit_usl(n, x)
    assert (fit.observations, fit.points) == (5_000, MAX_FIT_POINTS)
    assert fit.sigma == pytest.approx(0.05, rel=0.1)
    assert fit.kappa == pytest.approx(0.001, rel=0.1)


def test_no_coherency_term_gives_the_contention_asymptote() -> None:
    n = np.arange(1.0, 60.0)
    fit = fit_usl(n, usl(n, 50.0, 0.1, 0.0))
    assert fit.model == "usl"
    assert fit.peak_concurrency is None
    assert fit.ceiling == pytest.approx(500.0, rel=0.02)  # λ/σ


def test_too_few_levels_fall_back_to_a_line_and_say_why() -> None:
    n = np.array([1.0, 2.0, 4.0, 8.0, 8.0, 4.0])
    fit = fit_usl(n, 5.0 * n)
    assert fit.model == "linear"
    assert "4 distinct concurrency level(s)" in fit.reason
    assert fit.lambda_ == pytest.approx(5.0)
    assert fit.r2 == pytest.approx(1.0)
    assert (fit.sigma, fit.kappa, fit.ceiling, fit.peak_concurrency) == (None, None, None, None)


@pytest.mark.parametrize(
    ("n", "x", "model"),
    [
        (np.full(50, 10.0), np.linspace(90.0, 110.0, 50), "linear"),  # one level
        (np.arange(1.0, 50.0), np.zeros(49), "none"),  # no throughput at all
        (np.zeros(10), np.ones(10), "none"),  # no positive concurrency
        (np.empty(0), np.empty(0), "none"),
        (np.array([1.0, math.nan, math.inf]), np.array([-1.0, 2.0, 3.0]), "none"),
    ],
)
def test_degenerate_data_states_its_model(n: FloatArray, x: FloatArray, model: str) -> None:
    fit = fit_usl(n, x)
    assert fit.model == model
    assert fit.reason
    assert fit.ceiling is None
    assert_all_finite(msgspec.to_builtins(fit.to_report("test")))


def test_mismatched_lengths_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match="3 concurrency values for 2"):
        fit_usl(np.ones(3), np.ones(2))


@settings(max_examples=60, deadline=None)
@given(load_observations() | load_observations(plausible_load))
def test_fit_usl_never_raises_nor_returns_non_finite(pairs: tuple[FloatArray, FloatArray]) -> None:
    fit = fit_usl(*pairs)
    assert isinstance(fit, UslFit)
    assert fit.model in ("usl", "linear", "none")
    assert_all_finite(fit)
    assert_all_finite(msgspec.to_builtins(fit.to_report("test")))


def test_littles_law_is_rate_times_time_in_system() -> None:
    assert little_concurrency(200.0, 50.0) == 10.0
    assert little_concurrency(0.0, 80.0) == 0.0


# --- growth and projection ----------------------------------------------------------


def _growing(days: float, rate: float, noise: float, seed: int = 0, step: float = 3600.0) -> Series:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(0.0, days * DAY, step)
    values = 100.0 * (1.0 + rate) ** ((ts - T0) / DAY) * rng.lognormal(0.0, noise, ts.size)
    return Series(ts=ts, values=values)


def test_growth_recovers_two_percent_a_day_within_its_interval() -> None:
    growth = fit_growth(_growing(30.0, 0.02, 0.05))
    assert growth is not None
    assert growth.rate_per_day == pytest.approx(0.02, rel=0.1)
    assert growth.low <= 0.02 <= growth.high
    assert growth.points == 720
    assert growth.span_days == pytest.approx(30.0, abs=0.05)
    assert "only" not in growth.note
    assert growth.to_report("test").growth_pct_per_day == pytest.approx(2.0, rel=0.1)


def test_short_history_says_its_interval_is_wide() -> None:
    short = fit_growth(_growing(2.0, 0.02, 0.05))
    long = fit_growth(_growing(30.0, 0.02, 0.05))
    assert short is not None
    assert long is not None
    assert "interval is wide" in short.note
    assert short.high - short.low > 10 * (long.high - long.low)


@pytest.mark.parametrize(
    "data",
    [
        Series(ts=T0 + np.arange(7.0) * 3600, values=np.ones(7)),  # 7 points
        Series(ts=T0 + np.arange(30.0) * 60, values=np.ones(30)),  # 29 minutes
        Series(ts=T0 + np.arange(30.0) * 3600, values=np.zeros(30)),  # nothing positive
        Series(ts=np.array([math.nan]), values=np.array([5.0]), scalar=True),
    ],
)
def test_growth_needs_enough_positive_history(data: Series) -> None:
    assert fit_growth(data) is None


def test_projection_of_a_noiseless_growth_is_exact() -> None:
    growth = fit_growth(_growing(20.0, 0.03, 0.0))
    assert growth is not None
    assert growth.rate_per_day == pytest.approx(0.03, rel=1e-9)
    assert growth.stderr == pytest.approx(0.0, abs=1e-12)
    p = project(250.0, growth, 91.0)
    assert p.expected == pytest.approx(250.0 * 1.03**91, rel=1e-9)
    assert p.low == pytest.approx(p.expected, rel=1e-9)
    assert p.high == pytest.approx(p.expected, rel=1e-9)
    assert project(0.0, growth, 91.0).expected == 0.0


def test_projection_too_large_to_represent_is_none() -> None:
    growth = GrowthFit(
        rate_per_day=math.expm1(5.0),
        log_slope_per_day=5.0,
        stderr=0.0,
        low=0.0,
        high=0.0,
        log_low_per_day=0.0,
        log_high_per_day=5.0,
        r2=1.0,
        span_days=1.0,
        points=10,
        note="",
    )
    p = project(1e10, growth, 182.0)
    assert (p.expected, p.low, p.high) == (None, 1e10, None)


@settings(max_examples=80, deadline=None)
@given(series() | series(values=st.floats(min_value=1e-3, max_value=1e6)))
def test_fit_growth_never_raises_nor_returns_non_finite(data: Series) -> None:
    growth = fit_growth(data)
    if growth is not None:
        assert_all_finite(growth)
        assert_all_finite(msgspec.to_builtins(growth.to_report("test")))
        assert_all_finite(project(1.0, growth, 182.0))


# --- scaling triggers ---------------------------------------------------------------


def _linear_series(
    start: float, per_day: float, days: float, *, noise: float = 0.3, seed: int = 1
) -> Series:
    """Hourly samples over ``days`` ending at ``T0``, ``start`` at the end."""
    rng = np.random.default_rng(seed)
    ts = T0 - np.arange(days * 24, -1, -1) * 3600.0
    values = start + per_day * (ts - T0) / DAY + rng.normal(0.0, noise, ts.size)
    return Series(ts=ts, values=values)


def test_cpu_rising_a_point_a_day_from_60_crosses_75_in_15_days() -> None:
    crossing = trigger_crossing(_linear_series(60.0, 1.0, 14.0), 75.0, "lower_is_better", T0)
    assert crossing.status == "expected"
    assert crossing.days_from_now == pytest.approx(15.0, abs=1.0)
    assert crossing.slope_per_day == pytest.approx(1.0, rel=0.05)
    assert crossing.current == pytest.approx(60.0, abs=1.0)
    assert crossing.crossing_ts == pytest.approx(T0 + 15 * DAY, abs=DAY)
    report = msgspec.to_builtins(crossing.to_report("cpu_utilization"))
    assert report["expected_at"].startswith("2026-06-1")
    assert report["status"] == "expected"


def test_flat_series_is_not_within_horizon() -> None:
    crossing = trigger_crossing(_linear_series(60.0, 0.0, 14.0), 75.0, "lower_is_better", T0)
    assert crossing.status == "not_within_horizon"
    assert crossing.crossing_ts is None


def test_slow_rise_beyond_the_horizon_and_falling_are_not_within_horizon() -> None:
    slow = trigger_crossing(_linear_series(60.0, 0.05, 14.0), 75.0, "lower_is_better", T0)
    assert slow.status == "not_within_horizon"  # 300 days away
    assert "beyond 182 days" in slow.reason
    falling = trigger_crossing(_linear_series(60.0, -1.0, 14.0), 75.0, "lower_is_better", T0)
    assert falling.status == "not_within_horizon"
    assert "moving away" in falling.reason


def test_level_past_the_threshold_is_already_crossed() -> None:
    crossing = trigger_crossing(_linear_series(82.0, 0.0, 3.0), 75.0, "lower_is_better", T0)
    assert crossing.status == "already_crossed"
    assert crossing.current == pytest.approx(82.0, abs=0.5)


def test_higher_is_better_crosses_downwards() -> None:
    falling = trigger_crossing(_linear_series(95.0, -0.5, 14.0), 90.0, "higher_is_better", T0)
    assert falling.status == "expected"
    assert falling.days_from_now == pytest.approx(10.0, abs=1.0)
    rising = trigger_crossing(_linear_series(95.0, 0.5, 14.0), 90.0, "higher_is_better", T0)
    assert rising.status == "not_within_horizon"
    below = trigger_crossing(_linear_series(85.0, 0.0, 2.0), 90.0, "higher_is_better", T0)
    assert below.status == "already_crossed"


def test_too_little_data_is_said() -> None:
    empty = trigger_crossing(
        Series(ts=np.empty(0), values=np.empty(0)), 75.0, "lower_is_better", T0
    )
    assert (empty.status, empty.samples) == ("no_data", 0)
    few = Series(ts=T0 + np.arange(5.0) * 60, values=np.full(5, 50.0))
    assert trigger_crossing(few, 75.0, "lower_is_better", T0).status == "insufficient_data"


@settings(max_examples=80, deadline=None)
@given(
    series(),
    finite,
    st.sampled_from(["lower_is_better", "higher_is_better"]),
    epoch,
)
def test_trigger_crossing_never_raises_nor_returns_non_finite(
    data: Series, threshold: float, direction: Any, now: float
) -> None:
    crossing = trigger_crossing(data, threshold, direction, now)
    assert isinstance(crossing, TriggerCrossing)
    assert_all_finite(crossing)
    assert_all_finite(msgspec.to_builtins(crossing.to_report("cpu_utilization")))


# --- the scalability_projections object ----------------------------------------------

LAMBDA, SIGMA, KAPPA = 100.0, 0.02, 2e-5
"""Per-request service rate 100/s (10 ms alone); N* = √(0.98/2e-5) ≈ 221, ceiling ≈ 3468."""


def _day_of_traffic(
    *, users: bool = True, counters: bool = False, seed: int = 1, n_days: int = 1
) -> tuple[MetricStore, FloatArray, FloatArray]:
    """A day of 1-minute samples: users swing 20–180 every 4 h and grow 2 %/day.

    Throughput follows the USL of the users, response time is Little's law of both,
    CPU rises a point a day from 60 %, memory stays at 50 %, three WebSocket nodes.
    """
    rng = np.random.default_rng(seed)
    ts = T0 + 60.0 * np.arange(1440 * n_days)
    days = (ts - T0) / DAY
    u = 100.0 * 1.02**days * (1.0 + 0.8 * np.sin(2 * np.pi * (ts - T0) / 14_400.0))
    x = usl(u, LAMBDA, SIGMA, KAPPA) * rng.lognormal(0.0, 0.02, ts.size)
    store = MetricStore()
    if counters:
        for k, share in enumerate((0.25, 0.75)):
            store.add_many(
                "http_requests_total", ts, np.cumsum(x * share * 60.0), {"endpoint": f"/{k}"}
            )
    else:
        store.add_many("api_throughput", ts, x)
    store.add_many("api_response_time", ts, 1000.0 * u / x * rng.lognormal(0.0, 0.02, ts.size))
    if users:
        store.add_many("concurrent_users", ts, u)
    for k, last in enumerate((1000.0, 1200.0, 1400.0)):
        noise = np.r_[rng.normal(0.0, 20.0, ts.size - 1), 0.0]
        store.add_many("websocket_connections", ts, last + noise, {"instance": f"node-{k}"})
    store.add_many("cpu_utilization", ts, 60.0 + days + rng.normal(0.0, 0.2, ts.size))
    store.add_many("memory_utilization", ts, 50.0 + rng.normal(0.0, 0.5, ts.size))
    return store, x, u


def _projections(store: MetricStore, window_s: float = DAY) -> dict[str, Any]:
    """The projections as the report's JSON carries them."""
    projections = capacity_projections(
        store, now=T0 + DAY, window_s=window_s, triggers=TRIGGERS, plan_gain_pct=50.0
    )
    out: dict[str, Any] = msgspec.to_builtins(projections)
    return out


def test_projections_from_a_day_of_traffic() -> None:
    store, x, u = _day_of_traffic()
    result = _projections(store)
    assert_all_finite(result)
    wire = msgspec.convert(result, ScalabilityProjections)  # the protocol's shape
    assert wire.three_months.days == 91.0

    base = result["current_baseline"]
    assert base["api_requests_per_s"]["value"] == pytest.approx(float(np.mean(x)), rel=1e-5)
    assert "api_throughput" in base["api_requests_per_s"]["basis"]
    assert base["websocket_connections"]["value"] == 3600.0
    assert base["concurrent_users"]["value"] == pytest.approx(float(np.mean(u)), rel=1e-5)
    model = base["capacity_model"]
    assert model["model"] == "usl"
    assert model["ceiling"] == pytest.approx(3468.0, rel=0.05)
    assert model["sigma"] == pytest.approx(SIGMA, rel=0.1)
    assert model["peak_is_extrapolated"] is True  # users never reached N* ≈ 221
    growth = base["demand_growth"]
    low, high = growth["ci95_pct_per_day"]
    assert low <= 2.0 <= high
    assert "interval is wide" in growth["note"]
    assert base["utilisation"]["current_system"] == pytest.approx(
        np.mean(x) / model["ceiling"], rel=1e-4
    )
    assert base["utilisation"]["optimised_system"] == pytest.approx(
        base["utilisation"]["current_system"] / 1.5, rel=1e-4
    )

    # one day cannot tell growth from the daily cycle: no projection is made up
    for key in ("3_months", "6_months"):
        assert "expected" not in result[key]["api_requests_per_s"]
        assert "daily cycle" in result[key]["api_requests_per_s"]["reason"]


def test_four_days_of_a_daily_cycle_are_not_projected_months_ahead() -> None:
    store, _, _ = _day_of_traffic(n_days=4)
    result = msgspec.to_builtins(
        capacity_projections(
            store, now=T0 + 4 * DAY, window_s=4 * DAY, triggers=TRIGGERS, plan_gain_pct=50.0
        )
    )
    assert_all_finite(result)
    growth = result["current_baseline"]["demand_growth"]
    # the newest sample is one step short of the 4th day: 3 whole days back from it
    assert "cannot be tested: 3 whole days of history" in growth["significance"]
    for key in ("3_months", "6_months"):
        rate = result[key]["api_requests_per_s"]
        assert "expected" not in rate
        assert "not projected" in rate["reason"]


def test_projections_from_six_days_of_traffic() -> None:
    store, _, _ = _day_of_traffic(n_days=6)
    result = msgspec.to_builtins(
        capacity_projections(
            store, now=T0 + 6 * DAY, window_s=6 * DAY, triggers=TRIGGERS, plan_gain_pct=50.0
        )
    )
    assert "significance" not in result["current_baseline"]["demand_growth"]
    assert_all_finite(result)
    model = result["current_baseline"]["capacity_model"]
    growth = result["current_baseline"]["demand_growth"]
    low, high = growth["ci95_pct_per_day"]
    assert low < 2.0 < high  # the generator's 2 %/day
    for key in ("3_months", "6_months"):
        horizon = result[key]
        for figure in ("api_requests_per_s", "websocket_connections", "concurrent_users"):
            projected = horizon[figure]
            assert projected["low"] <= projected["expected"] <= projected["high"]
        util = horizon["utilisation"]
        assert util["optimised_ceiling_req_per_s"] == pytest.approx(
            1.5 * model["ceiling"], rel=1e-5
        )
        expected_rate = horizon["api_requests_per_s"]["expected"]
        assert util["current_system"]["expected"] == pytest.approx(
            expected_rate / model["ceiling"], rel=1e-4
        )

    triggers = {t["metric"]: t for t in result["scaling_triggers"]}
    assert list(triggers) == list(TRIGGERS)
    cpu = triggers["cpu_utilization"]
    assert cpu["status"] == "expected"
    assert cpu["days_from_now"] == pytest.approx(9.0, abs=1.0)  # 66 % now, +1/day to 75
    low, high = cpu["days_from_now_range"]
    assert low <= cpu["days_from_now"] <= high
    assert triggers["memory_utilization"]["status"] == "not_within_horizon"
    assert triggers["api_response_time"]["current"] < 100.0


def test_without_a_users_series_concurrency_comes_from_littles_law() -> None:
    store, _, u = _day_of_traffic(users=False)
    base = _projections(store)["current_baseline"]
    assert "Little's law" in base["concurrent_users"]["basis"]
    # per-minute L = X·W = u exactly (up to noise); bucket means of the product track it
    assert base["concurrent_users"]["value"] == pytest.approx(float(np.mean(u)), rel=0.05)
    assert "Little's law" in base["capacity_model"]["concurrency_basis"]
    assert base["capacity_model"]["ceiling"] == pytest.approx(3468.0, rel=0.05)


def test_request_rate_from_counters_when_no_throughput_series() -> None:
    store, x, _ = _day_of_traffic(counters=True)
    rate = _projections(store)["current_baseline"]["api_requests_per_s"]
    assert "http_requests_total" in rate["basis"]
    assert rate["value"] == pytest.approx(float(np.mean(x)), rel=0.01)


def test_empty_store_gives_nulls_with_reasons() -> None:
    result = _projections(MetricStore())
    msgspec.convert(result, ScalabilityProjections)
    base = result["current_baseline"]
    for key in ("api_requests_per_s", "websocket_connections", "concurrent_users"):
        assert base[key]["value"] is None
        assert base[key]["reason"]
    assert base["capacity_model"]["model"] == "none"
    assert "growth_pct_per_day" not in base["demand_growth"]
    assert base["demand_growth"]["reason"]
    assert "current_system" not in base["utilisation"]
    assert base["utilisation"]["reason"]
    for key in ("3_months", "6_months"):
        assert result[key]["api_requests_per_s"]["reason"].startswith("demand growth unknown")
        assert "current_system" not in result[key]["utilisation"]
    assert [t["status"] for t in result["scaling_triggers"]] == ["no_data"] * 3


def test_a_bad_window_is_the_callers_error() -> None:
    with pytest.raises(ValueError, match="window_s"):
        _projections(MetricStore(), window_s=0.0)
