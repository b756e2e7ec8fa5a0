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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from nats.aio.client import Client
from prometheus_client import Histogram as ClientHistogram

from agent.analysis.catalog import AUXILIARY, CATALOG
from agent.config import Settings
from agent.errors import SourceUnavailable
from agent.runtime.embedded import free_port
from agent.runtime.node import AgentNode
from agent.sources.prometheus import (
    DEFAULT_QUERIES,
    OVERRIDE,
    PROMETHEUS_MAX_POINTS,
    RATE_INTERVAL,
    Histogram,
    PrometheusSource,
    PrometheusUnavailable,
    bucket_spread,
    merged_queries,
    override,
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
    PrometheusServer,
    _Served,
    prometheus_binary,
)
from tests.test_node_e2e import rpc

# --- the query table -----------------------------------------------------------------


def test_every_catalog_metric_and_auxiliary_counter_has_a_default_chain() -> None:
    assert set(CATALOG) <= set(DEFAULT_QUERIES)
    # http_request_rate is the gauge alternative to the http_requests_total counter
    assert set(AUXILIARY) - {"http_request_rate"} <= set(DEFAULT_QUERIES)
    for metric, chain in DEFAULT_QUERIES.items():
        assert chain, metric
        names = [a.name for a in chain]
        assert len(set(names)) == len(names), metric  # a report names one alternative
        for alternative in chain:
            assert alternative.needs, (metric, alternative.name)
            assert alternative.series, (metric, alternative.name)
            assert alternative.statistic is not None, (metric, alternative.name)
            if (alternative.probe is None) != (alternative.probe_note is None):
                raise AssertionError(f"{metric} {alternative.name}: a probe needs its note")


def test_a_catalog_p95_is_a_checked_quantile_or_a_mean_that_says_why() -> None:
    for metric, spec in CATALOG.items():
        if spec.statistic != "p95":
            continue
        for alternative in DEFAULT_QUERIES[metric]:
            if alternative.statistic == "p95":
                assert alternative.histogram is not None, (metric, alternative.name)
                assert alternative.query.startswith(
                    ("1000 * histogram_quantile(0.95,", "histogram_quantile(0.95,")
                ), metric
            else:  # an exporter's mean per call names itself to the store
                assert alternative.statistic == "mean", (metric, alternative.name)
                assert alternative.note, (metric, alternative.name)
    # a per-endpoint quantile is not one pooled histogram: not checked
    assert all(a.histogram is None for a in DEFAULT_QUERIES["api_response_time_by_endpoint"])


def test_the_chains_follow_stock_instrumentation() -> None:
    def names(metric: str) -> list[str]:
        return [a.name for a in DEFAULT_QUERIES[metric]]

    for metric in ("api_response_time", "api_availability", "api_throughput", "error_rate"):
        assert names(metric) == ["otel_http_stable", "otel_http_old_ms"]
    assert names("database_query_time") == [
        "otel_db_stable",
        "otel_db_old_label",
        "postgres_exporter_stat_statements",
        "postgres_exporter_queries_yaml",
        "mysqld_exporter_perf_schema",
    ]
    assert names("db_pool_utilization") == ["otel_db_pool_stable"]  # a pool's own count only
    stable, old = DEFAULT_QUERIES["api_response_time"]
    assert stable.histogram == Histogram("http_server_request_duration_seconds")
    assert old.histogram == Histogram("http_server_duration_milliseconds", unit="ms")
    assert old.query.startswith("histogram_quantile(0.95,")  # already ms
    # the old convention's labels: http_target (the route template), http_status_code
    assert 'http_status_code=~"5.."' in DEFAULT_QUERIES["error_rate"][1].query
    assert '"http_target"' in DEFAULT_QUERIES["http_requests_total"][1].query
    assert '"http_route"' in DEFAULT_QUERIES["api_response_time_by_endpoint"][0].query
    # database calls only: a Redis call in the same histogram is not a query
    db_stable, db_old = DEFAULT_QUERIES["database_query_time"][:2]
    assert db_stable.histogram is not None
    assert db_old.histogram is not None
    assert db_stable.histogram.matchers == 'db_system_name=~"postgresql|mysql|mariadb"'
    assert db_old.histogram.matchers == 'db_system=~"postgresql|mysql|mariadb"'


def test_docs_instrumentation_lists_every_chain_as_the_code_has_it() -> None:
    """docs/instrumentation.md's tables name every metric's alternatives in order."""
    doc = (Path(__file__).parent.parent / "docs" / "instrumentation.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 2:
            rows[cells[0].strip("`")] = cells[1]
    for metric in [*CATALOG, *AUXILIARY]:
        chain = DEFAULT_QUERIES.get(metric, ())
        listed = " → ".join(f"`{a.name}` ({a.statistic})" for a in chain) or "—"
        assert rows.get(metric) == listed, metric


def test_config_queries_replace_the_chain_and_an_empty_one_switches_a_default_off() -> None:
    queries = merged_queries({"cpu_utilization": "avg(my_cpu)", "ai_processing_efficiency": ""})
    assert queries["cpu_utilization"] == (override("avg(my_cpu)"),)
    (mine,) = queries["cpu_utilization"]
    assert (mine.name, mine.statistic, mine.histogram) == (OVERRIDE, None, None)
    assert "ai_processing_efficiency" not in queries
    assert queries["api_response_time"] == DEFAULT_QUERIES["api_response_time"]
    # a bare string given to the source is an operator's query too
    src = PrometheusSource("http://x", queries={"cpu_utilization": "q"}, timeout_s=1, retries=0)
    assert src.queries["cpu_utilization"] == (override("q"),)


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
    """A source with only ``database_query_time``'s first alternative over canned answers:
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

    queries = {"database_query_time": DEFAULT_QUERIES["database_query_time"][:1]}
    return source_over(handler, queries=queries, retries=1), seen


DB_MATCHERS = '{db_system_name=~"postgresql|mysql|mariadb"}'
"""What restricts OTel's database histogram to relational databases."""


async def test_a_saturated_histogram_stores_its_mean_and_says_why() -> None:
    src, seen = db_source(lambda: httpx.Response(200, json=SATURATED))
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    mean_query = (
        f"1000 * sum(rate(db_client_operation_duration_seconds_sum{DB_MATCHERS}[60s])) / "
        f"sum(rate(db_client_operation_duration_seconds_count{DB_MATCHERS}[60s]))"
    )
    checked = (
        f"sum by (le) (increase(db_client_operation_duration_seconds_bucket{DB_MATCHERS}[60s]))"
    )
    assert sorted(seen) == sorted(
        [
            (
                "/api/v1/query_range",
                DEFAULT_QUERIES["database_query_time"][0].query.replace(RATE_INTERVAL, "60s"),
            ),
            ("/api/v1/query", checked),
            ("/api/v1/query_range", mean_query),
        ]
    )
    got = report.metrics["database_query_time"]
    assert (got.status, got.statistic, got.query, got.checked_query, got.alternative) == (
        "ok",
        "mean",
        mean_query,
        checked,
        "otel_db_stable",
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

    db = DEFAULT_QUERIES["database_query_time"][0].query.replace("0.95", "0.99")
    src = source_over(handler, queries=merged_queries({"database_query_time": db}))
    report = await src.fetch(MetricStore(), start=1000, end=1060, metrics=["database_query_time"])
    got = report.metrics["database_query_time"]
    assert seen == ["/api/v1/query_range"]
    assert (got.statistic, got.checked_query, got.fallback) == (None, None, None)
    assert got.alternative == OVERRIDE


# --- chains of alternatives ------------------------------------------------------------

EMPTY_MATRIX: dict[str, Any] = {"status": "success", "data": {"resultType": "matrix", "result": []}}
EMPTY_VECTOR: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": []}}
NAN_MATRIX: dict[str, Any] = {
    "status": "success",
    "data": {"resultType": "matrix", "result": [{"values": [[1000, "NaN"], [1015, "NaN"]]}]},
}
ONE: dict[str, Any] = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1060, "1"]}]},
}


def scripted(
    answers: Mapping[str, dict[str, Any] | Callable[[], httpx.Response]],
    queries: Mapping[str, Any],
    **kwargs: Any,
) -> tuple[Any, list[tuple[str, str]]]:
    """A source over canned answers: a query gets the answer of the first key it contains
    (a dict is a 200 body); a range query no key matches is empty, an instant one too."""
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        seen.append((request.url.path, query))
        for key, answer in answers.items():
            if key in query:
                return httpx.Response(200, json=answer) if isinstance(answer, dict) else answer()
        instant = request.url.path == "/api/v1/query"
        return httpx.Response(200, json=EMPTY_VECTOR if instant else EMPTY_MATRIX)

    return source_over(handler, queries=queries, **kwargs), seen


def sent(seen: list[tuple[str, str]]) -> str:
    return "\n".join(q for _, q in seen)


async def test_the_first_alternative_with_samples_is_stored_and_no_other_is_sent() -> None:
    answers = {"http_server_request_duration_seconds_count": constant_matrix(100)}
    src, seen = scripted(answers, {"api_throughput": DEFAULT_QUERIES["api_throughput"]})
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    got = report.metrics["api_throughput"]
    assert (got.status, got.alternative, got.statistic, got.tried) == (
        "ok",
        "otel_http_stable",
        "rate",
        (),
    )
    assert "http_server_duration_milliseconds" not in sent(seen)
    assert store.series("api_throughput").values.tolist() == [100.0] * 5
    summary = report.summary()
    assert summary["measured_by"] == {
        "api_throughput": {"alternative": "otel_http_stable", "statistic": "rate"}
    }
    assert (summary["problems"], summary["not_measured"]) == ({}, {})


_MS = OTEL_SDK_DEFAULT_BUCKETS  # the SDK's defaults, meant for ms: right for the old histogram


async def test_an_empty_alternative_falls_back_to_the_next_and_the_report_names_both() -> None:
    # only the old convention is exported: http_server_duration_milliseconds, p95 91 ms
    spread_ms = bucket_vector(_MS, [0, 0, 10, 30, 30, 20, 10, *[0] * (len(_MS) - 6)])
    answers = {
        "increase(http_server_duration_milliseconds_bucket": spread_ms,
        "rate(http_server_duration_milliseconds_bucket": constant_matrix(91),
    }
    src, seen = scripted(answers, {"api_response_time": DEFAULT_QUERIES["api_response_time"]})
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    got = report.metrics["api_response_time"]
    stable = DEFAULT_QUERIES["api_response_time"][0].query.replace(RATE_INTERVAL, "60s")
    assert (got.status, got.alternative, got.statistic, got.fallback) == (
        "ok",
        "otel_http_old_ms",
        "p95",
        None,
    )
    assert [(t.alternative, t.status, t.query) for t in got.tried] == [
        ("otel_http_stable", "empty", stable)
    ]
    assert got.query == "histogram_quantile(0.95, sum by (le) (rate(" + (
        "http_server_duration_milliseconds_bucket[60s])))"
    )
    assert store.series("api_response_time").values.tolist() == [91.0] * 5  # no × 1000
    assert store.statistic_of("api_response_time") is None
    summary = report.summary()
    assert summary["measured_by"]["api_response_time"] == {
        "alternative": "otel_http_old_ms",
        "statistic": "p95",
        "tried": ["otel_http_stable: empty"],
    }
    assert summary["problems"] == {}  # an empty alternative before the used one is no fault
    assert stable in sent(seen)


async def test_a_saturated_millisecond_histogram_gives_its_mean_in_ms() -> None:
    saturated_ms = bucket_vector(_MS, [0, 500, *[0] * (len(_MS) - 1)])  # all in (0, 5] ms
    answers = {
        "increase(http_server_duration_milliseconds_bucket": saturated_ms,
        "rate(http_server_duration_milliseconds_bucket": constant_matrix(4.75),
        "rate(http_server_duration_milliseconds_sum": constant_matrix(1.8),
    }
    src, _ = scripted(answers, {"api_response_time": DEFAULT_QUERIES["api_response_time"]})
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    got = report.metrics["api_response_time"]
    assert (got.status, got.alternative, got.statistic) == ("ok", "otel_http_old_ms", "mean")
    assert got.query == (
        "sum(rate(http_server_duration_milliseconds_sum[60s])) / "
        "sum(rate(http_server_duration_milliseconds_count[60s]))"
    )
    assert got.fallback is not None
    assert "fell in one bucket (0–5 ms)" in got.fallback
    assert "(4.75 ms)" in got.fallback
    assert store.statistic_of("api_response_time") == ("mean", got.fallback)
    assert store.series("api_response_time").values.tolist() == [1.8] * 5


async def test_an_override_replaces_the_whole_chain() -> None:
    mine = "sum(rate(my_requests_total[1m]))"
    answers = {"my_requests_total": constant_matrix(7), "http_server": constant_matrix(100)}
    queries = merged_queries({"api_throughput": mine})
    src, seen = scripted(answers, queries)
    report = await src.fetch(MetricStore(), start=1000, end=1060, metrics=["api_throughput"])
    got = report.metrics["api_throughput"]
    assert seen == [("/api/v1/query_range", mine)]
    assert (got.status, got.alternative, got.statistic) == ("ok", OVERRIDE, None)


async def test_a_metric_no_alternative_measures_is_not_measured_and_no_problem() -> None:
    metrics = ["cache_hit_rate", "api_response_time", "cpu_utilization"]
    answers = {"node_cpu_seconds_total": constant_matrix(40)}
    src, _ = scripted(answers, {m: DEFAULT_QUERIES[m] for m in metrics})
    report = await src.fetch(MetricStore(), start=1000, end=1060)
    cache = report.metrics["cache_hit_rate"]
    assert (cache.status, cache.alternative) == ("not_measured", None)
    assert [t.describe() for t in cache.tried] == ["app_counter: empty"]
    assert cache.needs is not None
    assert "cache_hits_total" in cache.needs
    latency = report.metrics["api_response_time"]
    assert latency.status == "not_measured"
    assert [t.alternative for t in latency.tried] == ["otel_http_stable", "otel_http_old_ms"]
    assert report.not_measured == ["api_response_time", "cache_hit_rate"]
    summary = report.summary()
    assert summary["problems"] == {}
    assert set(summary["not_measured"]) == {"api_response_time", "cache_hit_rate"}
    reason = summary["not_measured"]["cache_hit_rate"]
    assert reason.startswith("needs the application's counters cache_hits_total and")
    assert reason.endswith("no standard instrumentation records it")
    assert "OTEL_SEMCONV_STABILITY_OPT_IN=http" in summary["not_measured"]["api_response_time"]
    assert (summary["ok"], summary["empty"], summary["failed"]) == (1, 0, 0)


async def test_an_operators_query_that_comes_back_empty_is_a_problem() -> None:
    src, _ = scripted({}, merged_queries({"cpu_utilization": "avg(my_cpu)"}))
    report = await src.fetch(MetricStore(), start=1000, end=1060, metrics=["cpu_utilization"])
    got = report.metrics["cpu_utilization"]
    assert (got.status, got.alternative, got.query) == ("empty", None, "avg(my_cpu)")
    summary = report.summary()
    assert summary["problems"]["cpu_utilization"]["status"] == "empty"
    assert summary["not_measured"] == {}


async def test_an_alternative_of_only_nan_says_its_series_exist() -> None:
    answers = {"rate(http_server_request_duration_seconds_bucket": NAN_MATRIX}
    src, _ = scripted(answers, {"api_response_time": DEFAULT_QUERIES["api_response_time"]})
    report = await src.fetch(MetricStore(), start=1000, end=1060)
    got = report.metrics["api_response_time"]
    assert got.status == "not_measured"
    stable = got.tried[0]
    assert stable.note is not None
    assert "non-finite values (2)" in stable.note
    assert report.summary()["not_measured"]["api_response_time"].startswith("its series gave")


async def test_a_probe_says_the_exporter_is_there_but_gives_no_latency() -> None:
    src, seen = scripted(
        {"count(pg_up)": ONE}, {"database_query_time": DEFAULT_QUERIES["database_query_time"]}
    )
    report = await src.fetch(MetricStore(), start=1000, end=1060)
    got = report.metrics["database_query_time"]
    assert got.status == "not_measured"
    notes = {t.alternative: t.note for t in got.tried}
    assert notes["postgres_exporter_stat_statements"] is not None
    assert notes["postgres_exporter_stat_statements"].startswith(
        "postgres_exporter is scraped (pg_up) but exports no statement latency"
    )
    assert notes["mysqld_exporter_perf_schema"] is None  # mysql_up: no series
    assert notes["otel_db_stable"] is None  # target_info: no series
    reason = report.summary()["not_measured"]["database_query_time"]
    assert reason.count("postgres_exporter is scraped") == 1  # said once for both ways
    assert "pg_stat_statements extension" in reason
    assert "; needs an OpenTelemetry DB-API driver instrumentation" in reason
    probes = [q for path, q in seen if path == "/api/v1/query" and q.startswith("count(")]
    assert sorted(probes) == ["count(mysql_up)", "count(pg_up)", "count(target_info)"]


async def test_a_probe_runs_only_when_nothing_measured_the_metric() -> None:
    answers = {"pg_stat_statements_seconds_total": constant_matrix(2.5), "count(pg_up)": ONE}
    src, seen = scripted(answers, {"database_query_time": DEFAULT_QUERIES["database_query_time"]})
    store = MetricStore()
    report = await src.fetch(store, start=1000, end=1060)
    got = report.metrics["database_query_time"]
    assert "count(pg_up)" not in sent(seen)
    # postgres_exporter's totals give a mean per call: named as one, never a p95
    assert (got.status, got.alternative, got.statistic) == (
        "ok",
        "postgres_exporter_stat_statements",
        "mean",
    )
    assert [t.alternative for t in got.tried] == ["otel_db_stable", "otel_db_old_label"]
    assert got.fallback is not None
    assert "the mean time per call is judged" in got.fallback
    assert store.statistic_of("database_query_time") == ("mean", got.fallback)
    assert store.series("database_query_time").values.tolist() == [2.5] * 5
    assert report.summary()["fallbacks"] == {"database_query_time": got.fallback}


async def test_a_refused_alternative_is_skipped_and_reported_as_a_problem() -> None:
    def refused() -> httpx.Response:
        body = {"status": "error", "errorType": "bad_data", "error": "unknown function"}
        return httpx.Response(400, json=body)

    answers: dict[str, Any] = {
        "http_server_request_duration_seconds_count": refused,
        "http_server_duration_milliseconds_count": constant_matrix(50),
    }
    src, _ = scripted(answers, {"api_throughput": DEFAULT_QUERIES["api_throughput"]})
    report = await src.fetch(MetricStore(), start=1000, end=1060)
    got = report.metrics["api_throughput"]
    assert (got.status, got.alternative) == ("ok", "otel_http_old_ms")
    assert [t.describe() for t in got.tried] == [
        "otel_http_stable: error (bad_data: unknown function)"
    ]
    problem = report.summary()["problems"]["api_throughput"]
    assert problem["tried"] == ["otel_http_stable: error (bad_data: unknown function)"]


async def test_a_connection_error_ends_the_chain() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sent_queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_queries.append(dict(httpx.QueryParams(request.content.decode()))["query"])
        return down(request)

    src = source_over(
        handler, queries={"api_throughput": DEFAULT_QUERIES["api_throughput"]}, retries=1
    )
    with pytest.raises(PrometheusUnavailable) as caught:
        await src.fetch(MetricStore(), start=1000, end=1060)
    got = caught.value.report.metrics["api_throughput"]
    assert (got.status, got.error_type) == ("error", "connection")
    assert [t.alternative for t in got.tried] == ["otel_http_stable"]
    assert len(sent_queries) == 2  # the first alternative, tried twice; not the second
    assert all("http_server_request_duration_seconds" in q for q in sent_queries)


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
    url: str, queries: Mapping[str, Any] | None = None, metrics: list[str] | None = None
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
    # metrics the exporter does not have: answered, not measured, and said why (no problem)
    assert report.metrics["database_query_time"].status == "not_measured"
    assert "database_query_time" in report.summary()["not_measured"]
    assert "database_query_time" not in report.summary()["problems"]
    assert report.metrics["api_response_time"].alternative == "otel_http_stable"
    assert report.metrics["feed_generation_time"].status == "ok"  # the exporter has it
    assert report.metrics["api_response_time"].status == "ok"
    # requests spread over buckets keep their p95; a domain latency observed at one fixed
    # value fills one bucket, so its mean is stored (the same value: 700 ms)
    assert report.metrics["api_response_time"].statistic == "p95"
    assert report.metrics["feed_generation_time"].statistic == "mean"
    assert np.mean(values(store, "feed_generation_time")) == pytest.approx(700, rel=0.01)
    assert set(report.summary()["fallbacks"]) == {
        metric
        for metric, chain in DEFAULT_QUERIES.items()
        if chain[0].histogram is not None and chain[0].histogram.name in DOMAIN_LATENCIES_S
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


REDIS_CALL_S = 3.0
"""A slow Redis call recorded into the same histogram: it must never reach the judgment."""


class DbExporter(_Served):
    """``db_client_operation_duration_seconds`` as OTel's DB-API instrumentation exports it
    (labels ``db_system_name``, ``db_operation_name``): ``rate`` PostgreSQL calls a second,
    the i-th of ``observe(i)`` seconds, and as many Redis calls of ``REDIS_CALL_S``, which
    would dominate any quantile or mean that did not filter on the database system."""

    def __init__(
        self,
        buckets: Sequence[float],
        observe: Callable[[int], float],
        rate: float = 50.0,
        tick_s: float = 0.02,
    ) -> None:
        super().__init__("db-load")
        self.observe = observe
        self.rate = rate
        self.tick_s = tick_s
        self.histogram = ClientHistogram(
            DB,
            "Duration of database client operations.",
            ["db_system_name", "db_operation_name"],
            buckets=buckets,
            registry=self.registry,
        )
        self.emitted = 0

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.tick_s):
            due = int((time.monotonic() - start) * self.rate)
            for i in range(self.emitted, due):
                self.histogram.labels("postgresql", "SELECT").observe(self.observe(i))
                self.histogram.labels("redis", "GET").observe(REDIS_CALL_S)
            self.emitted = max(self.emitted, due)


@pytest.fixture(scope="session")
async def db_prometheus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    """Two Prometheus servers, each scraping one database histogram with Redis calls in it:
    ``otel_default`` (OTel SDK default buckets, healthy calls) and ``spread`` (sensible
    buckets). Both
    start and scrape concurrently: a few seconds in all."""
    if prometheus_binary() is None:
        pytest.skip("no `prometheus` binary on PATH (.ci/run installs Debian's package)")
    exporters = {
        "otel_default": DbExporter(OTEL_SDK_DEFAULT_BUCKETS, healthy_db_s),
        "spread": DbExporter(BUCKETS, spread_db_s),
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
    assert got.checked_query == f"sum by (le) (increase({DB}_bucket{DB_MATCHERS}[5s]))"
    assert got.query.startswith(f"1000 * sum(rate({DB}_sum{DB_MATCHERS}[4s]))")
    assert got.alternative == "otel_db_stable"
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
    assert np.all((p95 > 50) & (p95 <= 75)), p95  # the 3 s Redis calls left out
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
