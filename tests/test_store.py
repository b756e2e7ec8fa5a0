"""The metric store: bounds that count what they throw away, label selection and windows."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgspec
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent.errors import InvalidParams
from agent.store import MetricStore, label_set, store_from_params
from protocols import TaskParams

T0 = 1_780_000_000.0


def _invariant(store: MetricStore) -> None:
    c = store.stats()
    assert (
        c["accepted"] == c["samples"] + c["dropped_full"] + c["pruned_old"] + c["evicted_samples"]
    )


def test_a_full_series_drops_its_oldest_samples_and_counts_them() -> None:
    store = MetricStore(max_samples_per_series=100)
    accepted = store.add_many("latency", T0 + np.arange(250.0), np.arange(250.0))
    assert accepted == 250
    s = store.series("latency")
    assert s.ts.tolist() == (T0 + np.arange(150.0, 250.0)).tolist()
    assert store.stats()["dropped_full"] == 150
    for i in range(250, 1_000):  # one by one, through many slides of the buffer
        assert store.add("latency", T0 + i, float(i))
    s = store.series("latency")
    assert s.values.tolist() == list(np.arange(900.0, 1000.0))
    assert store.stats()["dropped_full"] == 900
    _invariant(store)


def test_a_new_series_beyond_the_bound_evicts_the_least_recently_written() -> None:
    store = MetricStore(max_series=3)
    for region in ("eu", "us", "ap"):
        store.add_many("rps", [T0, T0 + 1], [1.0, 2.0], {"region": region})
    store.add("rps", T0 + 2, 3.0, {"region": "eu"})  # eu is now the most recent
    store.add("rps", T0 + 2, 3.0, {"region": "sa"})  # evicts us, the least recent
    assert store.label_sets("rps") == [
        (("region", "ap"),),
        (("region", "eu"),),
        (("region", "sa"),),
    ]
    stats = store.stats()
    assert (stats["evicted_series"], stats["evicted_samples"], stats["series"]) == (1, 2, 3)
    _invariant(store)


def test_samples_older_than_the_age_horizon_are_pruned_on_the_data_clock() -> None:
    store = MetricStore(max_age_s=3600.0)
    store.add_many("cpu", T0 + np.arange(0.0, 3600.0, 60.0), np.ones(60))  # T0 … T0+59 min
    store.add("mem", T0, 1.0)
    assert store.stats()["pruned_old"] == 0
    store.add("cpu", T0 + 3600.0 + 600.0, 2.0)  # horizon moves to T0 + 10 min
    assert store.prune() == 0  # the write swept already: cpu 0–9 min and mem
    stats = store.stats()
    assert stats["pruned_old"] == 10 + 1
    assert store.series("cpu").ts[0] == T0 + 600.0
    assert "mem" not in store.metrics()  # emptied series are forgotten
    # an explicit now prunes against it; a sample already too old is not taken in
    assert store.prune(now=T0 + 3600.0 + 1200.0) == 10
    assert not store.add("cpu", T0, 5.0)
    assert store.stats()["pruned_old"] == 10 + 1 + 10 + 1
    _invariant(store)


def test_non_finite_samples_are_rejected_and_counted() -> None:
    store = MetricStore()
    assert not store.add("x", T0, math.nan)
    assert not store.add("x", math.inf, 1.0)
    assert store.add_many("x", [T0, T0 + 1, T0 + 2], [1.0, math.inf, 3.0]) == 2
    assert not store.set_scalar("y", math.nan)
    assert store.stats()["rejected"] == 4
    assert store.stats()["accepted"] == 2
    with pytest.raises(ValueError, match="times for"):
        store.add_many("x", [T0], [1.0, 2.0])


def test_out_of_order_samples_are_kept_sorted() -> None:
    store = MetricStore()
    store.add_many("q", [T0 + 5, T0 + 1, T0 + 3], [5.0, 1.0, 3.0])
    store.add("q", T0 + 2, 2.0)
    store.add_many("q", [T0 + 4, T0 + 0, T0 + 6], [4.0, 0.0, 6.0])
    s = store.series("q")
    assert s.ts.tolist() == [T0 + i for i in range(7)]
    assert s.values.tolist() == [float(i) for i in range(7)]


def test_a_late_sample_in_a_full_series_is_dropped_as_the_oldest() -> None:
    store = MetricStore(max_samples_per_series=3)
    store.add_many("q", [T0 + 1, T0 + 2, T0 + 3], [1.0, 2.0, 3.0])
    assert store.add("q", T0, 0.0)  # taken in, then the oldest of four: dropped at once
    assert store.series("q").values.tolist() == [1.0, 2.0, 3.0]
    store.add("q", T0 + 2.5, 2.5)
    assert store.series("q").values.tolist() == [2.0, 2.5, 3.0]
    assert store.stats()["dropped_full"] == 2


def test_labels_select_and_merge() -> None:
    store = MetricStore()
    store.add_many("lat", [T0, T0 + 2], [10.0, 30.0], {"endpoint": "/a", "region": "eu"})
    store.add_many("lat", [T0 + 1], [20.0], {"region": "us", "endpoint": "/a"})
    store.add_many("lat", [T0 + 3], [40.0], {"endpoint": "/b", "region": "eu"})
    assert store.label_sets("lat") == [
        label_set({"endpoint": "/a", "region": "eu"}),
        label_set({"endpoint": "/a", "region": "us"}),
        label_set({"endpoint": "/b", "region": "eu"}),
    ]
    # label order never matters, and a mapping or the pair tuple name the same series
    a_eu = store.series("lat", {"region": "eu", "endpoint": "/a"})
    assert a_eu.values.tolist() == [10.0, 30.0]
    assert store.series("lat", (("region", "eu"), ("endpoint", "/a"))).values.tolist() == [
        10.0,
        30.0,
    ]
    assert len(store.series("lat", {"endpoint": "/a"})) == 0  # exact label set only
    eu = store.select("lat", region="eu")
    assert [dict(k)["endpoint"] for k in eu] == ["/a", "/b"]
    assert set(store.select("lat", endpoint="/a", region="us")) == {
        label_set({"endpoint": "/a", "region": "us"})
    }
    assert store.select("lat", region="ap") == {}
    merged = store.merged("lat")
    assert merged.values.tolist() == [10.0, 20.0, 30.0, 40.0]
    assert store.source("lat", {"endpoint": "/a", "region": "eu"}) == "inline"
    with pytest.raises(KeyError):
        store.source("nope")


def test_windows_run_back_from_the_metric_newest_sample_or_from_end() -> None:
    store = MetricStore()
    store.add_many("r", T0 + np.arange(0.0, 600.0, 60.0), np.arange(10.0), {"i": "a"})
    store.add("r", T0 + 900.0, 99.0, {"i": "b"})  # the metric's newest sample
    store.add("other", T0 + 5_000.0, 1.0)  # another metric's time does not matter
    # 0..540 for a, 900 for b: the window is [900 − 400, 900] for every label set
    assert store.series("r", {"i": "a"}, window_s=400.0).ts.tolist() == [T0 + 540.0]
    assert len(store.select("r", window_s=300.0)) == 1  # a has nothing in [600, 900]
    assert store.series("r", {"i": "a"}, window_s=120.0, end=T0 + 300.0).values.tolist() == [
        3.0,
        4.0,
        5.0,
    ]
    assert store.merged("r", window_s=0.0).values.tolist() == [99.0]
    assert len(store.merged("r", window_s=10.0, end=T0 - 100)) == 0  # an empty window
    with pytest.raises(ValueError, match="window_s"):
        store.series("r", window_s=-1.0)


def test_bare_numbers_are_kept_apart_from_series() -> None:
    store = MetricStore()
    assert store.set_scalar("availability", 99.5, source="task")
    assert store.scalar("availability") == 99.5
    assert store.scalar("nope") is None
    # never mistaken for a point in time: series queries do not return it
    assert len(store.series("availability")) == 0
    assert len(store.merged("availability")) == 0
    assert store.source("availability") == "task"
    assert store.metrics() == set()
    assert store.scalar_metrics() == {"availability"}
    assert store.newest_ts() is None
    assert len(store.series("missing")) == 0


def test_store_from_params_loads_inline_metrics_and_labelled_samples() -> None:
    at = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    params = msgspec.convert(
        {
            "source": "kpi",
            "metrics": {
                "error_rate": 0.5,
                "api_response_time": [[at.isoformat(), 120.0], [at.timestamp() - 60, 110.0]],
            },
            "samples": [
                {
                    "metric": "http_requests_total",
                    "value": 5,
                    "ts": at.timestamp(),
                    "labels": {"endpoint": "/feed", "region": "eu"},
                },
                {
                    "metric": "http_requests_total",
                    "value": 3,
                    "ts": at.isoformat(),
                    "labels": {"region": "us", "endpoint": "/feed"},
                },
                {
                    "metric": "http_requests_total",
                    "value": 2,
                    "ts": at.timestamp() - 30,
                    "labels": {"region": "eu", "endpoint": "/feed"},
                },
            ],
        },
        TaskParams,
    )
    store = store_from_params(params)
    assert store.metrics() == {"api_response_time", "http_requests_total"}
    assert store.scalar_metrics() == {"error_rate"}
    assert store.scalar("error_rate") == 0.5
    latency = store.series("api_response_time")
    assert latency.values.tolist() == [110.0, 120.0]
    eu = store.series("http_requests_total", {"region": "eu", "endpoint": "/feed"})
    assert eu.ts.tolist() == [at.timestamp() - 30, at.timestamp()]
    assert eu.values.tolist() == [2.0, 5.0]
    assert len(store.select("http_requests_total", endpoint="/feed")) == 2
    assert store.source("http_requests_total", {"region": "us", "endpoint": "/feed"}) == "kpi"
    assert store.newest_ts() == at.timestamp()
    assert store.stats()["samples"] == 5


def test_store_from_params_refuses_naive_times() -> None:
    params = TaskParams(metrics={"x": [(datetime(2026, 1, 1), 1.0)]})  # naive on purpose
    with pytest.raises(InvalidParams):
        store_from_params(params)


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MetricStore(max_series=0)
    with pytest.raises(ValueError, match="max_age_s"):
        MetricStore(max_age_s=0.0)


_ops = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from([(), (("k", "1"),), (("k", "2"),)]),
        st.lists(st.floats(0, 500) | st.just(math.nan), min_size=1, max_size=30),
    ),
    max_size=30,
)


@given(_ops, st.integers(1, 20), st.integers(1, 5), st.floats(1.0, 400.0))
@example(  # a series whose samples all fell past the horizon before a prune pass
    [("a", (), [338.0]), ("b", (), [0.0, 241.0]), ("a", (), [339.0])], 1, 2, 97.0
)
def test_store_never_exceeds_its_bounds(
    ops: list[tuple[str, tuple[tuple[str, str], ...], list[float]]],
    per_series: int,
    max_series: int,
    max_age: float,
) -> None:
    store = MetricStore(max_samples_per_series=per_series, max_series=max_series, max_age_s=max_age)
    for metric, labels, offsets in ops:
        ts = T0 + np.array(offsets)
        store.add_many(metric, ts, np.arange(ts.size, dtype=np.float64), labels)
        stats = store.stats()
        assert stats["series"] <= max_series
        newest = store.newest_ts()
        for m in store.metrics():
            for ls in store.label_sets(m):
                s = store.series(m, ls)
                assert 0 < len(s) <= per_series
                assert bool(np.all(np.diff(s.ts) >= 0))
                assert newest is not None
                assert s.ts[0] >= newest - max_age
        _invariant(store)
