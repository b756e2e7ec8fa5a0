"""Windows, inline data and the statistics ``current`` is made of."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from agent.analysis.catalog import CATALOG, DOMAINS, SCOPES
from agent.analysis.series import from_inline, mean, p95, parse_window, window
from agent.errors import InvalidParams


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
    assert set(SCOPES["api_optimization"]) >= {"api_response_time", "database_query_time"}
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
