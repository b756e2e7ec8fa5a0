"""The Prometheus source: parsing and retries without a server, then a real Prometheus.

The real one scrapes an exporter of known figures (tests/prometheus_fixture.py) every
second; the checks compare what the source stores with what the exporter was made to
produce (a p95 within the histogram bucket that holds the true p95). Two more, each
scraping one database histogram, show the saturation check: OTel SDK default buckets
give the mean (not a 4 750 ms bucket artefact), sensible buckets keep the p95.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from nats.aio.client import Client

from agent.analysis.catalog import AUXILIARY, CATALOG
from agent.config import Settings
from agent.errors import SourceUnavailable
from agent.runtime.embedded import free_port
from agent.runtime.node import AgentNode
from agent.sources.prometheus import (
    DEFAULT_QUERIES,
    P95_HISTOGRAMS,
    PROMETHEUS_MAX_POINTS,
    RATE_INTERVAL,
    PrometheusSource,
    PrometheusUnavailable,
    bucket_spread,
    merged_queries,
    parse_buckets,
    parse_matrix,
    saturation_reason,
)
from agent.store.metric_store import MetricStore
from protocols.errors import ErrorCode
from tests.payloads import task
from tests.prometheus_fixture import (
    BUCKETS,
    DOMAIN_LATENCIES_S,
    OTEL_SDK_DEFAULT_BUCKETS,
    REGION,
    TRUTH,
    Exporter,
    HistogramExporter,
    PrometheusServer,
    prometheus_binary,
)
from tests.test_node_e2e import rpc

# --- the query table -----------------------------------------------------------------


def test_every_catalog_metric_and_auxiliary_counter_has_a_default_query() -> None:
    assert set(CATALOG) <= set(DEFAULT_QUERIES)
    # http_request_rate is the gauge alternative to the http_requests_total counter
    assert set(AUXILIARY) - {"http_request_rate"} <= set(DEFAULT_QUERIES)
    for metric in CATALOG:
        spec = CATALOG[metric]
        if spec.unit == "ms" and spec.statistic == "p95":
            assert DEFAULT_QUERIES[metric].startswith("1000 * histogram_quantile(0.95,"), metric


def test_config_queries_win_and_an_empty_one_switches_a_default_off() -> None:
    queries = merged_queries({"cpu_utilization": "avg(my_cpu)", "ai_processing_efficiency": ""})
    assert queries["cpu_utilization"] == "avg(my_cpu)"
    assert "ai_processing_efficiency" not in queries
    assert queries["api_response_time"] == DEFAULT_QUERIES["api_response_time"]


def test_the_checked_p95_metrics_are_derived_from_the_default_queries() -> None:
    assert P95_HISTOGRAMS["database_query_time"] == "db_client_operation_duration_seconds"
    assert P95_HISTOGRAMS["api_response_time"] == "http_server_request_duration_seconds"
    for metric, spec in CATALOG.items():
        if spec.unit == "ms" and spec.statistic == "p95":
            assert metric in P95_HISTOGRAMS, metric
    # a per-endpoint quantile is not one pooled histogram: not checked
    assert "api_response_time_by_endpoint" not in P95_HISTOGRAMS
    assert "api_throughput" not in P95_HISTOGRAMS
    # only a metric whose query is still the default is checked
    db = DEFAULT_QUERIES["database_query_time"].replace("0.95", "0.99")
    src = PrometheusSource(
        "http://x", queries=merged_queries({"database_query_time": db}), timeout_s=1, retries=0
    )
    assert "database_query_time" not in src.checked
    assert src.checked["api_response_time"] == "http_server_request_duration_seconds"


def cumulative(le: Sequence[float], per_bucket: Sequence[float]) -> list[tuple[float, float]]:
    """(le, cumulative count) pairs, +Inf appended, from counts per bucket (one more than le)."""
    bounds = [*le, math.inf]
    assert len(per_bucket) == len(bounds)
    total = 0.0
    pairs = []
    for bound, count in zip(bounds, per_bucket, strict=True):
        total += count
        pairs.append((bound, total))
    return pairs


_OTEL = OTEL_SDK_DEFAULT_BUCKETS
_ZERO_OTEL = [0.0] * (len(_OTEL) + 1)


def test_all_observations_in_the_lowest_otel_bucket_are_saturated() -> None:
    spread = bucket_spread(cumulative(_OTEL, [0.0, 1200.0, *_ZERO_OTEL[2:]]))
    assert spread is not None
    assert spread.saturated
    assert (spread.lower, spread.upper, spread.share) == (0.0, 5.0, 1.0)
    assert spread.observations == 1200.0
    assert spread.p95 == pytest.approx(4.75)  # what histogram_quantile answers: 4 750 ms
    reason = saturation_reason("db_client_operation_duration_seconds", spread)
    assert reason.startswith("every observation of db_client_operation_duration_seconds")
    assert "one bucket (0–5 s)" in reason
    assert "(4 750 ms)" in reason
    assert reason.endswith("so the mean from _sum/_count is judged")


def test_all_observations_in_the_overflow_bucket_are_saturated() -> None:
    spread = bucket_spread(cumulative(BUCKETS, [0.0] * len(BUCKETS) + [40.0]))
    assert spread is not None
    assert spread.saturated
    assert (spread.lower, spread.upper) == (10.0, math.inf)
    assert spread.p95 == 10.0  # the highest finite bound, whatever the real latency
    assert "(above 10 s)" in saturation_reason("h", spread)
    assert "(10 000 ms)" in saturation_reason("h", spread)


def test_observations_over_several_buckets_are_not_saturated() -> None:
    # 0.005 0.01 0.025 0.05 0.075 0.1 … : 10/20/40/20/10 over the first five buckets
    spread = bucket_spread(cumulative(BUCKETS, [10, 20, 40, 20, 10, *[0] * (len(BUCKETS) - 4)]))
    assert spread is not None
    assert not spread.saturated
    assert (spread.lower, spread.upper, spread.share) == (0.01, 0.025, 0.4)
    # rank 95 of 100 is half-way through the (0.05, 0.075] bucket
    assert spread.p95 == pytest.approx(0.0625)


def test_99_5_percent_in_one_bucket_is_saturated_98_9_is_not() -> None:
    counts = [0.0] * (len(BUCKETS) + 1)
    counts[3], counts[4] = 995.0, 5.0
    spread = bucket_spread(cumulative(BUCKETS, counts))
    assert spread is not None
    assert spread.saturated
    assert spread.share == pytest.approx(0.995)
    assert (spread.lower, spread.upper) == (0.025, 0.05)
    reason = saturation_reason("h", spread)
    assert reason.startswith("99.5 % of the observations of h in the window fell in one bucket")
    assert "(0.025–0.05 s)" in reason
    counts[3], counts[4] = 989.0, 11.0
    below = bucket_spread(cumulative(BUCKETS, counts))
    assert below is not None
    assert not below.saturated


def test_no_observations_decide_nothing_and_no_inf_bucket_is_an_error() -> None:
    assert bucket_spread(cumulative(_OTEL, _ZERO_OTEL)) is None
    with pytest.raises(ValueError, match=r"\+Inf"):
        bucket_spread([])
    with pytest.raises(ValueError, match=r"\+Inf"):
        bucket_spread([(0.005, 3.0), (0.01, 5.0)])


def test_buckets_are_sorted_coalesced_and_made_monotonic_first() -> None:
    # two exporters spelling one bound "1" and "1.0", and an extrapolated dip below it
    pairs = [(math.inf, 100.0), (2.0, 99.0), (1.0, 60.0), (1.0, 40.0), (1.5, 98.0)]
    spread = bucket_spread(pairs)
    assert spread is not None
    assert (spread.upper, spread.share) == (1.0, 1.0)  # 100 at le=1, nothing above
    assert spread.saturated


def test_parse_buckets_reads_an_instant_vector() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"le": "+Inf"}, "value": [1000, "12.5"]},
                {"metric": {"le": "0.005"}, "value": [1000, "3"]},
                {"metric": {}, "value": [1000, "7"]},  # no le: not a bucket
            ],
        },
    }
    assert parse_buckets(json.dumps(body).encode()) == [(math.inf, 12.5), (0.005, 3.0)]
    with pytest.raises(ValueError, match="vector"):
        parse_buckets(json.dumps(MATRIX).encode())


def test_step_and_rate_interval() -> None:
    src = PrometheusSource("http://x", queries={}, timeout_s=1, retries=0)
    assert src.step_for(0, 3600) == (15.0, 60.0)  # 15 s scrapes: rate over 4 scrapes
    assert src.step_for(0, 86_400) == (360.0, 375.0)  # at most 240 steps
    fast = PrometheusSource("http://x", queries={}, timeout_s=1, retries=0, scrape_interval_s=1)
    assert fast.step_for(0, 10) == (1.0, 4.0)
    # the monitor asks for as many steps as Prometheus serves: 7 days at 55 s, not 42 min
    week = 7 * 86_400
    assert src.step_for(0, week, max_points=PROMETHEUS_MAX_POINTS)[0] == 55.0
    assert src.step_for(0, week, max_points=10**9)[0] == 55.0  # never past the server's cap


# --- parsing and the HTTP exchange, no server ------------------------------------------

MATRIX: dict[str, Any] = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "x", "endpoint": "/api/feed", "region": "eu"},
                "values": [[1000, "1.5"], [1015, "NaN"], [1030, "+Inf"], [1045, "2.5"]],
            },
            {"metric": {"endpoint": "/api/chat"}, "values": [[1000, "-Inf"], [1015.5, "7"]]},
            {"metric": {"endpoint": "/none"}, "values": [[1000, "NaN"]]},
        ],
    },
    "warnings": ["PromQL info: metric might not be a counter"],
}


def test_parse_matrix_drops_non_finite_values_and_the_name() -> None:
    series, notes = parse_matrix(json.dumps(MATRIX).encode())
    assert notes == ["PromQL info: metric might not be a counter"]
    assert [s.labels for s in series] == [
        {"endpoint": "/api/feed", "region": "eu"},
        {"endpoint": "/api/chat"},
        {"endpoint": "/none"},
    ]
    assert series[0].ts.tolist() == [1000.0, 1045.0]
    assert series[0].values.tolist() == [1.5, 2.5]
    assert [s.dropped_non_finite for s in series] == [2, 1, 1]


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"status": "success", "data": {"resultType": "vector", "result": []}}'],
)
def test_parse_matrix_refuses_what_is_not_a_matrix(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"Prometheus|matrix"):
        parse_matrix(body)


def source_over(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Any:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("queries", {"api_response_time": "q"})
    return PrometheusSource("http://user:pw@prom:9090/", timeout_s=1, client=client, **kwargs)


async def test_canned_answer_lands_in_the_store() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query_range"
        seen.append(dict(httpx.QueryParams(request.content.decode())))
        return httpx.Response(200, json=MATRIX)

    src = source_over(handler, queries={"api_response_time": f"rate(x[{RATE_INTERVAL}])"})
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    await src.aclose()
    assert seen[0]["query"] == "rate(x[60s])"
    assert seen[0]["step"] == "15"
    got = report.metrics["api_response_time"]
    assert (got.status, got.series, got.samples, got.stored, got.dropped_non_finite) == (
        "ok",
        2,
        3,
        3,
        4,
    )
    assert got.warnings == ("PromQL info: metric might not be a counter",)
    assert report.source == "prometheus at http://prom:9090"  # no credentials in messages
    feed = store.series("api_response_time", {"endpoint": "/api/feed", "region": "eu"})
    assert feed.values.tolist() == [1.5, 2.5]
    assert store.source("api_response_time", {"endpoint": "/api/chat"}) == "prometheus"
    assert store.label_sets("api_response_time") == [
        (("endpoint", "/api/chat"),),
        (("endpoint", "/api/feed"), ("region", "eu")),
    ]
    summary = report.summary()
    assert summary["problems"]["api_response_time"]["dropped_non_finite"] == 4


async def test_5xx_is_retried_then_succeeds() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            return httpx.Response(503, json={"status": "error", "errorType": "unavailable"})
        return httpx.Response(200, json=MATRIX)

    src = source_over(handler)
    report = await src.fetch(MetricStore(), start=0, end=60)
    assert report.metrics["api_response_time"].status == "ok"
    assert report.metrics["api_response_time"].attempts == 3


async def test_a_bad_query_is_reported_not_retried_and_the_others_still_count() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        if query == "bad(":
            body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
            return httpx.Response(400, json=body)
        return httpx.Response(200, json={"status": "success", "data": MATRIX["data"]})

    src = source_over(handler, queries={"cpu_utilization": "bad(", "api_response_time": "q"})
    report = await src.fetch(MetricStore(), start=0, end=60, metrics=[*src.queries, "nope"])
    bad = report.metrics["cpu_utilization"]
    assert (bad.status, bad.error_type, bad.error, bad.http_status, bad.attempts) == (
        "error",
        "bad_data",
        "parse error",
        400,
        1,
    )
    assert report.metrics["nope"].status == "unconfigured"
    assert report.ok == ["api_response_time"]
    assert report.failed == ["cpu_utilization"]


async def test_every_query_failing_raises_source_unavailable_with_the_report() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    src = source_over(handler, retries=1)
    with pytest.raises(PrometheusUnavailable) as caught:
        await src.fetch(MetricStore(), start=0, end=60)
    err = caught.value
    assert err.code == ErrorCode.SOURCE_UNAVAILABLE
    assert err.source == "prometheus at http://prom:9090"
    assert "HTTP 502: <html>bad gateway</html>" in err.message
    got = err.report.metrics["api_response_time"]
    assert (got.error_type, got.http_status, got.attempts) == ("http", 502, 2)


async def test_a_timeout_is_reported_as_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    src = source_over(handler, retries=1, queries={"a": "q", "b": "q"})
    with pytest.raises(SourceUnavailable, match="timeout"):
        await src.fetch(MetricStore(), start=0, end=60)


async def test_prometheus_down_is_source_unavailable_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with PrometheusSource(url, queries=DEFAULT_QUERIES, timeout_s=2, retries=1) as src:
        with pytest.raises(PrometheusUnavailable) as caught:
            await src.fetch(MetricStore(), start=time.time() - 300, end=time.time())
    assert caught.value.source == f"prometheus at {url}"
    assert "connection" in caught.value.message
    assert set(caught.value.report.failed) == set(DEFAULT_QUERIES)


def bucket_vector(le: Sequence[float], per_bucket: Sequence[float]) -> dict[str, Any]:
    result = [
        {"metric": {"le": f"{bound:g}".replace("inf", "+Inf")}, "value": [1060, f"{count:g}"]}
        for bound, count in cumulative(le, per_bucket)
    ]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def constant_matrix(value: float) -> dict[str, Any]:
    values = [[1000 + 15 * i, f"{value:g}"] for i in range(5)]
    return {"status": "success", "data": {"resultType": "matrix", "result": [{"values": values}]}}


def without_inf(vector: dict[str, Any]) -> dict[str, Any]:
    result = [r for r in vector["data"]["result"] if r["metric"]["le"] != "+Inf"]
    return {**vector, "data": {**vector["data"], "result": result}}


SATURATED = bucket_vector(_OTEL, [0.0, 3000.0, *_ZERO_OTEL[2:]])
SPREAD = bucket_vector(BUCKETS, [10, 20, 40, 20, 10, *[0] * (len(BUCKETS) - 4)])


def db_source(
    check: Callable[[], httpx.Response], mean: Callable[[], httpx.Response] | None = None
) -> tuple[Any, list[tuple[str, str]]]:
    """A source with only ``database_query_time`` (its default query) over canned answers:
    the quantile 4 750, the mean 0.9 (or ``mean()``), the buckets ``check()``."""
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        seen.append((request.url.path, form["query"]))
        if request.url.path == "/api/v1/query":
            assert form["time"] == "1060.000"
            return check()
        if "histogram_quantile" in form["query"]:
            return httpx.Response(200, json=constant_matrix(4750))
        return mean() if mean else httpx.Response(200, json=constant_matrix(0.9))

    queries = {"database_query_time": DEFAULT_QUERIES["database_query_time"]}
    return source_over(handler, queries=queries, retries=1), seen


async def test_a_saturated_histogram_stores_its_mean_and_says_why() -> None:
    src, seen = db_source(lambda: httpx.Response(200, json=SATURATED))
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    mean_query = (
        "1000 * sum(rate(db_client_operation_duration_seconds_sum[60s])) / "
        "sum(rate(db_client_operation_duration_seconds_count[60s]))"
    )
    checked = "sum by (le) (increase(db_client_operation_duration_seconds_bucket[60s]))"
    assert sorted(seen) == sorted(
        [
            (
                "/api/v1/query_range",
                DEFAULT_QUERIES["database_query_time"].replace(RATE_INTERVAL, "60s"),
            ),
            ("/api/v1/query", checked),
            ("/api/v1/query_range", mean_query),
        ]
    )
    got = report.metrics["database_query_time"]
    assert (got.status, got.statistic, got.query, got.checked_query) == (
        "ok",
        "mean",
        mean_query,
        checked,
    )
    assert got.fallback is not None
    assert "one bucket (0–5 s)" in got.fallback
    assert "(4 750 ms)" in got.fallback
    # the quantile's 4 750 never reached the store: only the mean's samples are there
    assert store.series("database_query_time").values.tolist() == [0.9] * 5
    assert store.statistic_of("database_query_time") == ("mean", got.fallback)
    summary = report.summary()
    assert summary["fallbacks"] == {"database_query_time": got.fallback}
    assert summary["problems"] == {}


async def test_spread_buckets_keep_the_p95() -> None:
    src, seen = db_source(lambda: httpx.Response(200, json=SPREAD))
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    assert len(seen) == 2  # the quantile and the check, no mean
    got = report.metrics["database_query_time"]
    assert (got.status, got.statistic, got.fallback, got.check_error) == ("ok", "p95", None, None)
    assert store.series("database_query_time").values.tolist() == [4750.0] * 5
    assert store.statistic_of("database_query_time") is None
    assert report.summary()["fallbacks"] == {}


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (
            lambda: httpx.Response(
                400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
            ),
            "bad_data: parse error",
        ),
        (lambda: httpx.Response(503, text="down"), "http: HTTP 503: down"),
        (lambda: httpx.Response(200, json=MATRIX), "expected a vector"),
        (
            lambda: httpx.Response(
                200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
            ),
            "no bucket series in the window",
        ),
        (
            lambda: httpx.Response(200, json=without_inf(bucket_vector([0.5], [3, 0]))),
            'no le="+Inf" bucket',
        ),
    ],
    ids=["bad_query", "server_error", "matrix", "no_series", "no_inf_bucket"],
)
async def test_a_check_that_cannot_decide_keeps_the_p95_and_says_so(
    check: Callable[[], httpx.Response], error: str
) -> None:
    src, _ = db_source(check)
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    got = report.metrics["database_query_time"]
    assert (got.status, got.statistic, got.fallback) == ("ok", "p95", None)
    assert got.check_error is not None
    assert got.check_error.startswith(error), got.check_error
    assert store.series("database_query_time").values.tolist() == [4750.0] * 5
    assert store.statistic_of("database_query_time") is None
    problem = report.summary()["problems"]["database_query_time"]
    assert (problem["status"], problem["check_error"]) == ("ok", got.check_error)


async def test_no_observations_leave_the_p95_as_it_is() -> None:
    src, _ = db_source(lambda: httpx.Response(200, json=bucket_vector(_OTEL, _ZERO_OTEL)))
    report = await src.fetch(MetricStore(), start=1000, end=1060)
    got = report.metrics["database_query_time"]
    assert (got.statistic, got.fallback, got.check_error) == ("p95", None, None)
    assert report.summary()["problems"] == {}


async def test_a_failed_mean_stores_nothing_and_sets_no_statistic() -> None:
    def failing() -> httpx.Response:
        body = {"status": "error", "errorType": "execution", "error": "too many samples"}
        return httpx.Response(422, json=body)

    src, _ = db_source(lambda: httpx.Response(200, json=SATURATED), mean=failing)
    store = MetricStore()
    with pytest.raises(PrometheusUnavailable):  # its only query failed
        await src.fetch(store, start=1000, end=1060)
    assert "database_query_time" not in store.metrics()
    assert store.statistic_of("database_query_time") is None


async def test_an_overridden_p95_is_not_checked() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=constant_matrix(4750))

    db = DEFAULT_QUERIES["database_query_time"].replace("0.95", "0.99")
    src = source_over(handler, queries={"database_query_time": db})
    report = await src.fetch(MetricStore(), start=1000, end=1060)
    got = report.metrics["database_query_time"]
    assert seen == ["/api/v1/query_range"]
    assert (got.statistic, got.checked_query, got.fallback) == (None, None, None)


# --- a real Prometheus ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stack:
    url: str
    exporter: Exporter


@pytest.fixture(scope="session")
async def prometheus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    if prometheus_binary() is None:
        pytest.skip("no `prometheus` binary on PATH (.ci/run installs Debian's package)")
    exporter = Exporter()
    exporter.start()
    try:
        async with PrometheusServer(tmp_path_factory.mktemp("prometheus"), [exporter.target]) as p:
            await p.wait_for_scrapes(11)
            yield Stack(p.url, exporter)
    finally:
        await asyncio.to_thread(exporter.stop)


async def fetch_recent(
    url: str, queries: dict[str, str] | None = None, metrics: list[str] | None = None
) -> Any:
    """The last 5 s at 1 s steps (rate windows of 4 s, all inside the scraped data)."""
    store = MetricStore()
    async with PrometheusSource(
        url, queries=queries or merged_queries(), timeout_s=5, retries=1, scrape_interval_s=1
    ) as src:
        end = time.time()
        report = await src.fetch(store, start=end - 5, end=end, metrics=metrics)
    return store, report


def values(store: MetricStore, metric: str, **labels: str) -> Any:
    series = store.series(metric, labels or None)
    assert len(series) >= 3, (metric, labels, store.label_sets(metric))
    return series.values


@pytest.mark.slow
async def test_values_match_what_the_exporter_produced(prometheus: Stack) -> None:
    store, report = await fetch_recent(prometheus.url)
    assert report.failed == [], report.summary()
    assert report.step_s == 1.0
    assert report.rate_interval_s == 4.0
    low, high = TRUTH.p95_bucket_ms
    p95 = values(store, "api_response_time")
    assert np.all((p95 >= low) & (p95 <= high)), p95
    assert np.mean(values(store, "error_rate")) == pytest.approx(TRUTH.error_pct, abs=0.5)
    assert np.mean(values(store, "api_availability")) == pytest.approx(
        100 - TRUTH.error_pct, abs=0.5
    )
    assert np.mean(values(store, "api_throughput")) == pytest.approx(TRUTH.request_rate, rel=0.1)
    assert np.mean(values(store, "cpu_utilization")) == pytest.approx(TRUTH.cpu_pct, abs=2)
    assert np.mean(values(store, "memory_utilization")) == pytest.approx(TRUTH.memory_pct)
    assert np.mean(values(store, "redis_cache_hit")) == pytest.approx(TRUTH.redis_hit_pct, abs=1)
    assert np.mean(values(store, "websocket_throughput")) == pytest.approx(
        TRUTH.ws_messages_per_s, rel=0.1
    )
    # per endpoint and per region, from the labels
    feed = values(store, "api_response_time_by_endpoint", endpoint="/api/feed")
    chat = values(store, "api_response_time_by_endpoint", endpoint="/api/chat")
    assert np.all((feed > 75) & (feed <= 100)), feed  # feed's p95 (93 ms) bucket
    assert np.all((chat > 25) & (chat <= 50)), chat  # chat's p95 (44 ms) bucket
    counters = store.select("http_requests_total")
    assert sorted(dict(k)["endpoint"] for k in counters) == ["/api/chat", "/api/feed"]
    assert {dict(k)["region"] for k in counters} == {REGION}
    # metrics the exporter does not have: answered, empty, and said so
    assert report.metrics["database_query_time"].status == "empty"
    assert report.metrics["feed_generation_time"].status == "ok"  # the exporter has it
    assert report.metrics["api_response_time"].status == "ok"
    # requests spread over buckets keep their p95; a domain latency observed at one fixed
    # value fills one bucket, so its mean is stored (the same value: 700 ms)
    assert report.metrics["api_response_time"].statistic == "p95"
    assert report.metrics["feed_generation_time"].statistic == "mean"
    assert np.mean(values(store, "feed_generation_time")) == pytest.approx(700, rel=0.01)
    assert set(report.summary()["fallbacks"]) == {
        metric for metric, h in P95_HISTOGRAMS.items() if h in DOMAIN_LATENCIES_S
    }
    assert store.source("api_response_time") == "prometheus"


@pytest.mark.slow
async def test_an_invalid_query_fails_alone(prometheus: Stack) -> None:
    queries = merged_queries({"cpu_utilization": "sum(rate(node_cpu_seconds_total[", "x": "1"})
    store, report = await fetch_recent(prometheus.url, queries)
    bad = report.metrics["cpu_utilization"]
    assert bad.status == "error"
    assert bad.error_type == "bad_data"
    assert bad.http_status == 400
    assert "parse error" in (bad.error or "")
    assert "cpu_utilization" not in store.metrics()
    assert report.failed == ["cpu_utilization"]
    assert "api_response_time" in report.ok
    assert report.summary()["problems"]["cpu_utilization"]["error_type"] == "bad_data"


DB = "db_client_operation_duration_seconds"


def healthy_db_s(i: int) -> float:
    """0.5–1.4 ms, cycling: a healthy database, mean 0.95 ms."""
    return 0.0005 + 0.0001 * (i % 10)


def spread_db_s(i: int) -> float:
    """25 values spread evenly over 2–60 ms: the true p95 (57 ms) is in the (50, 75] bucket."""
    return 0.002 + 0.058 * ((i % 25) + 0.5) / 25


@pytest.fixture(scope="session")
async def db_prometheus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    """Two Prometheus servers, each scraping one database histogram: ``otel_default``
    (OTel SDK default buckets, healthy calls) and ``spread`` (sensible buckets). Both
    start and scrape concurrently: a few seconds in all."""
    if prometheus_binary() is None:
        pytest.skip("no `prometheus` binary on PATH (.ci/run installs Debian's package)")
    exporters = {
        "otel_default": HistogramExporter(DB, OTEL_SDK_DEFAULT_BUCKETS, healthy_db_s),
        "spread": HistogramExporter(DB, BUCKETS, spread_db_s),
    }
    async with contextlib.AsyncExitStack() as stack:
        for exporter in exporters.values():
            exporter.start()
            stack.push_async_callback(asyncio.to_thread, exporter.stop)
        servers = {
            name: PrometheusServer(tmp_path_factory.mktemp(f"prometheus-{name}"), [e.target])
            for name, e in exporters.items()
        }
        for server in servers.values():
            stack.push_async_callback(server.stop)
        # every start settles (ready, or failed and stopped) before the stack unwinds
        started = await asyncio.gather(
            *(s.start() for s in servers.values()), return_exceptions=True
        )
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure
        await asyncio.gather(*(s.wait_for_scrapes(6) for s in servers.values()))
        yield {name: s.url for name, s in servers.items()}


@pytest.mark.slow
async def test_otel_default_buckets_give_the_mean_not_a_bucket_bound(
    db_prometheus: dict[str, str],
) -> None:
    store, report = await fetch_recent(
        db_prometheus["otel_default"], metrics=["database_query_time"]
    )
    got = report.metrics["database_query_time"]
    assert (got.status, got.statistic) == ("ok", "mean"), report.summary()
    latency = values(store, "database_query_time")
    assert np.all((latency > 0.5) & (latency < 1.4)), latency  # ≈ 0.95 ms, not 4 750
    assert np.mean(latency) == pytest.approx(0.95, rel=0.1)
    statistic = store.statistic_of("database_query_time")
    assert statistic is not None
    assert statistic == ("mean", got.fallback)
    reason = statistic[1]
    assert f"every observation of {DB} in the window fell in one bucket (0–5 s)" in reason
    assert "(4 750 ms)" in reason
    assert got.checked_query == f"sum by (le) (increase({DB}_bucket[5s]))"
    assert got.query.startswith(f"1000 * sum(rate({DB}_sum[4s]))")
    assert report.summary()["fallbacks"] == {"database_query_time": reason}


@pytest.mark.slow
async def test_spread_buckets_keep_the_p95_from_prometheus(db_prometheus: dict[str, str]) -> None:
    store, report = await fetch_recent(db_prometheus["spread"], metrics=["database_query_time"])
    got = report.metrics["database_query_time"]
    assert (got.status, got.statistic, got.fallback, got.check_error) == (
        "ok",
        "p95",
        None,
        None,
    ), report.summary()
    p95 = values(store, "database_query_time")
    assert np.all((p95 > 50) & (p95 <= 75)), p95
    assert store.statistic_of("database_query_time") is None
    assert report.summary()["fallbacks"] == {}


# --- through the agent ------------------------------------------------------------------


@pytest.mark.nats
@pytest.mark.slow
async def test_api_optimization_task_reads_prometheus(
    prometheus: Stack, nc: Client, make_settings: Callable[..., Settings]
) -> None:
    async with AgentNode(make_settings(prometheus_url=prometheus.url)) as agent:
        body = task("api_optimization", params={"source": "prometheus", "window": "5m"})
        result = await rpc(nc, agent, body)
    assert result["status"] == "completed", result.get("error")
    latency = result["report"]["performance"]["api_response_time"]
    low, high = TRUTH.p95_bucket_ms
    assert low <= latency["current"] <= high
    assert latency["samples"] >= 1


@pytest.mark.nats
@pytest.mark.slow
async def test_prometheus_down_fails_the_task_naming_it_and_the_agent_keeps_serving(
    nc: Client, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(prometheus_url=url, prometheus_retries=1, prometheus_timeout_s=2)
    async with AgentNode(settings) as agent:
        body = task("api_optimization", params={"source": "prometheus", "window": "5m"})
        result = await rpc(nc, agent, body)
        assert result["status"] == "failed", result
        assert result["error"]["code"] == "source_unavailable"
        assert f"prometheus at {url}" in result["error"]["message"]
        good = await rpc(nc, agent, task())
        assert good["status"] == "completed"


@pytest.mark.nats
@pytest.mark.slow
async def test_every_task_type_answers_from_prometheus(
    prometheus: Stack, nc: Client, make_settings: Callable[..., Settings]
) -> None:
    """An agent with only a Prometheus URL (no inline data, no KPI) answers every task type."""
    settings = make_settings(prometheus_url=prometheus.url, kpi_enabled=False)
    async with AgentNode(settings) as agent:
        for task_type in (
            "api_optimization",
            "chat_backend_optimization",
            "prompt_feed_backend_optimization",
            "report_generation_optimization",
            "websocket_scaling_optimization",
            "cache_optimization",
            "strategic_backend_planning",
        ):
            body = task(task_type, params={"window": "5m"})
            result = await rpc(nc, agent, body, task_type)
            assert result["status"] == "completed", (task_type, result.get("error"))
            sources = result["report"]["data_quality"]["sources"]
            assert sources, task_type
            assert all(found == ["prometheus"] for found in sources.values()), sources
    feed = result["report"]["performance"]["feed_generation_time"]
    assert 500 < feed["current"] <= 1000  # 700 ms observations: the (500, 1000] bucket
