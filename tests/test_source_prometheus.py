"""The Prometheus source: parsing and retries without a server, then a real Prometheus.

The real one scrapes an exporter of known figures (tests/prometheus_fixture.py) every
second; the checks compare what the source stores with what the exporter was made to
produce (a p95 within the histogram bucket that holds the true p95).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
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
    PROMETHEUS_MAX_POINTS,
    RATE_INTERVAL,
    PrometheusSource,
    PrometheusUnavailable,
    merged_queries,
    parse_matrix,
)
from agent.store.metric_store import MetricStore
from protocols.errors import ErrorCode
from tests.payloads import task
from tests.prometheus_fixture import REGION, TRUTH, Exporter, PrometheusServer, prometheus_binary
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


async def fetch_recent(url: str, queries: dict[str, str] | None = None) -> Any:
    """The last 5 s at 1 s steps (rate windows of 4 s, all inside the scraped data)."""
    store = MetricStore()
    async with PrometheusSource(
        url, queries=queries or merged_queries(), timeout_s=5, retries=1, scrape_interval_s=1
    ) as src:
        end = time.time()
        report = await src.fetch(store, start=end - 5, end=end)
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
