"""Windows, inline data and the statistics ``current`` is made of."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.catalog import CATALOG, DOMAINS
from agent.analysis.series import (
    Series,
    bucketize,
    counter_increase,
    counter_rate,
    from_inline,
    mean,
    mean_rate,
    p95,
    parse_window,
    window,
)
from agent.errors import InvalidParams
from tests.strategies import long_series


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("15m", 900.0), ("1h", 3600.0), ("7d", 604_800.0), ("2w", 1_209_600.0)],
)
def test_parse_window(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "0m", "1.5h", "1x", "h", " 1h", "1h ", "-1h", "1H"])
def test_parse_window_rejects(text: str) -> None:
    with pytest.raises(InvalidParams):
        parse_window(text)


def test_catalog_has_the_twenty_metrics_of_the_design() -> None:
    assert len(CATALOG) == 20
    assert sum(len(names) for names in DOMAINS.values()) == 20
    assert {n for n, s in CATALOG.items() if s.bounded} == {
        "api_availability",
        "connection_stability",
        "cache_hit_rate",
        "data_freshness",
        "redis_cache_hit",
    }
    assert all(s.statistic == "p95" for s in CATALOG.values() if s.unit == "ms")
    assert all(s.statistic == "mean" for s in CATALOG.values() if s.unit != "ms")


def test_from_inline_sorts_and_mixes_datetimes_with_epoch_seconds() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    s = from_inline([(t0.timestamp() + 60, 2.0), (t0, 1.0)])
    assert not s.scalar
    assert s.ts.tolist() == [t0.timestamp(), t0.timestamp() + 60]
    assert s.values.tolist() == [1.0, 2.0]


def test_from_inline_scalar_is_flagged() -> None:
    s = from_inline(42)
    assert s.scalar
    assert len(s) == 1
    assert s.values.tolist() == [42.0]
    assert window(s, 1.0) is s


def test_from_inline_rejects_naive_times_and_non_finite_values() -> None:
    with pytest.raises(InvalidParams):
        from_inline([(datetime(2026, 1, 1), 1.0)])  # naive on purpose
    with pytest.raises(InvalidParams):
        from_inline(float("nan"))
    with pytest.raises(InvalidParams):
        from_inline([(1.8e9, float("inf"))])


def test_window_is_measured_from_the_latest_sample_inclusive() -> None:
    s = from_inline([(1000.0, 1.0), (1100.0, 2.0), (1400.0, 3.0), (1700.0, 4.0)])
    w = window(s, 600.0)
    assert w.values.tolist() == [2.0, 3.0, 4.0]
    assert window(from_inline([]), 60.0).values.size == 0


def test_p95_with_linear_interpolation_by_hand() -> None:
    # n = 10: rank (n − 1) × 0.95 = 8.55 → 90 + 0.55 × (100 − 90) = 95.5
    values = np.arange(10.0, 101.0, 10.0)
    assert p95(values) == pytest.approx(95.5)
    assert mean(values) == pytest.approx(55.0)


# --- bucketize ---------------------------------------------------------------------------


def _s(ts: list[float], values: list[float]) -> Series:
    return Series(ts=np.array(ts, dtype=np.float64), values=np.array(values, dtype=np.float64))


def test_bucketize_takes_the_median_of_each_equal_width_bucket_by_hand() -> None:
    # span 0–90 s in 3 buckets of 30 s: [0, 30) [30, 60) [60, 90]
    # bucket 0: ts 0, 10, 20 → values 5, 1, 3 → median 3 at ts 10
    # bucket 1: ts 30, 40 → values 100, 2 → median 51 at ts 35
    # bucket 2: ts 80, 90 → values 7, 9 → median 8 at ts 85 (the last edge belongs to it)
    s = _s([0, 10, 20, 30, 40, 80, 90], [5, 1, 3, 100, 2, 7, 9])
    b = bucketize(s, max_buckets=3)
    assert b.ts.tolist() == [10.0, 35.0, 85.0]
    assert b.values.tolist() == [3.0, 51.0, 8.0]


def test_bucketize_drops_empty_buckets() -> None:
    # 4 buckets of 25 s over 0–100: nothing falls in [25, 50) nor [50, 75)
    s = _s([0, 1, 2, 99, 100], [1, 2, 30, 4, 6])
    b = bucketize(s, max_buckets=4)
    assert b.ts.tolist() == [1.0, 99.5]
    assert b.values.tolist() == [2.0, 5.0]


def test_bucketize_leaves_short_series_and_scalars_alone() -> None:
    s = _s([0, 1, 2], [1, 2, 3])
    assert bucketize(s, max_buckets=3) is s
    scalar = from_inline(7.0)
    assert bucketize(scalar, max_buckets=1) is scalar
    with pytest.raises(ValueError, match="max_buckets"):
        bucketize(s, max_buckets=0)


def test_bucketize_at_one_instant_is_one_median() -> None:
    b = bucketize(_s([5.0] * 5, [1, 9, 3, 7, 5]), max_buckets=2)
    assert (b.ts.tolist(), b.values.tolist()) == ([5.0], [5.0])


@given(long_series(), st.integers(1, 150))
def test_bucketize_shrinks_keeps_time_order_and_stays_in_range(s: Series, k: int) -> None:
    b = bucketize(s, max_buckets=k)
    assert len(b) <= len(s)
    assert len(b) <= k or b is s
    assert bool(np.all(np.diff(b.ts) > 0)) or b is s
    if len(s):
        assert b.values.min() >= s.values.min()
        assert b.values.max() <= s.values.max()
        assert b.ts[0] >= s.ts[0]
        assert b.ts[-1] <= s.ts[-1]


# --- counters ---------------------------------------------------------------------------


def test_counter_reset_counts_the_new_value_as_increase() -> None:
    # 0 → 10 → 20 → (reset) 5 → 15: 10 + 10 + 5 + 10 = 35
    s = _s([0, 10, 20, 30, 40], [0, 10, 20, 5, 15])
    assert counter_increase(s) == 35.0
    assert mean_rate(s) == pytest.approx(35.0 / 40.0)
    rate = counter_rate(s)
    assert rate.ts.tolist() == [10.0, 20.0, 30.0, 40.0]
    assert rate.values.tolist() == [1.0, 1.0, 0.5, 1.0]


def test_counter_edge_cases() -> None:
    empty = _s([], [])
    one = _s([10], [42])
    instant = _s([10, 10], [1, 3])
    assert counter_increase(empty) == counter_increase(one) == 0.0
    assert len(counter_rate(empty)) == len(counter_rate(one)) == 0
    assert mean_rate(empty) is None
    assert mean_rate(one) is None
    assert mean_rate(instant) is None  # no time passed: no rate, said as None
    assert len(counter_rate(instant)) == 0
    assert counter_increase(_s([0, 60, 120], [7, 7, 7])) == 0.0  # constant counter
    for fn in (counter_increase, counter_rate, mean_rate):
        with pytest.raises(InvalidParams):
            fn(from_inline(5.0))


def test_window_of_nothing_and_of_one_sample() -> None:
    one = _s([100.0], [3.0])
    assert window(one, 0.0).values.tolist() == [3.0]
    assert len(window(_s([], []), 10.0)) == 0


@pytest.mark.parametrize(("runs", "per_run"), [(120, 3), (120, 72), (50, 300), (7, 5000)])
def test_run_order_stats_gives_each_runs_median_on_both_paths(runs: int, per_run: int) -> None:
    from agent.analysis.series import run_order_stats

    rng = np.random.default_rng(runs * per_run)
    counts = rng.integers(1, 2 * per_run, runs)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    values = rng.normal(0, 10, int(counts.sum()))
    low, high = run_order_stats(values, starts, counts)
    expected = [np.median(values[s : s + c]) for s, c in zip(starts, counts, strict=True)]
    np.testing.assert_allclose((low + high) / 2, expected, rtol=0, atol=1e-12)
