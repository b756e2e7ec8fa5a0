"""Every domain task type end to end over a real nats-server, on data with known ground truth."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client

from agent.runtime.node import AgentNode
from tests import synthetic
from tests.payloads import task
from tests.test_node_e2e import rpc

pytestmark = pytest.mark.nats


async def analyse(
    nc: Client, agent: AgentNode, task_type: str, params: dict[str, Any]
) -> dict[str, Any]:
    result = await rpc(nc, agent, task(task_type, params=params), task_type)
    assert result["status"] == "completed", result.get("error")
    report: dict[str, Any] = result["report"]
    assert report["analysis_type"] == task_type
    return report


async def test_root_cause_ranks_the_database_above_the_api(nc: Client, agent: AgentNode) -> None:
    report = await analyse(nc, agent, "api_optimization", synthetic.db_first_incident())
    order = [b["metric"] for b in report["bottlenecks"]]
    assert order.index("database_query_time") < order.index("api_response_time")
    api = next(b for b in report["bottlenecks"] if b["metric"] == "api_response_time")
    assert api["caused_by"] == ["database_query_time"]
    assert "symptom of database_query_time" in api["evidence"]
    links = [(c["symptom"], c["cause"]) for c in report["root_causes"]]
    assert ("api_response_time", "database_query_time") in links
    # the fix goes to the cause; the symptom is not fixed twice
    targets = {r["target"] for r in report["recommendations"]}
    assert "database_query_time" in targets
    assert "api_response_time" not in targets
    # the DB's level shift around minute 40 is found, and it made things worse
    shifts = report["change_points"]["database_query_time"]
    assert any(c["worse"] and c["shift"] > 30 for c in shifts)


async def test_websocket_capacity_from_observed_connections(nc: Client, agent: AgentNode) -> None:
    params, truth = synthetic.websocket_fleet()
    report = await analyse(nc, agent, "websocket_scaling_optimization", params)
    cap = report["findings"]["websocket_capacity"]
    assert cap["status"] == "ok"
    assert cap["nodes"] == 3
    assert cap["capacity_per_node"] == pytest.approx(truth["capacity_per_node"], rel=0.05)
    assert cap["connections_per_node"] == pytest.approx(truth["per_node_now"], rel=0.02)
    expected_headroom = (truth["capacity_per_node"] / truth["per_node_now"] - 1) * 100
    assert cap["headroom_pct"] == pytest.approx(expected_headroom, abs=5)
    assert cap["nodes_needed_now"] == 4  # 15 000 connections / 4 000 per node
    assert cap["throughput_per_connection"] == pytest.approx(truth["per_connection"], rel=0.1)
    assert report["performance"]["real_time_delivery"]["meeting_target"] is False


async def test_cache_findings(nc: Client, agent: AgentNode) -> None:
    report = await analyse(nc, agent, "cache_optimization", synthetic.cache_under_pressure())
    cache = report["findings"]["cache"]
    classes = {c["key_class"]: c for c in cache["key_classes"]}
    assert classes["session"]["hit_rate_pct"] == pytest.approx(99.0)
    assert classes["feed"]["hit_rate_pct"] == pytest.approx(70.0)
    assert classes["feed"]["share_pct"] == pytest.approx(50.0)
    assert [c["key_class"] for c in cache["key_classes"]] == ["feed", "session"]
    assert cache["memory"]["utilization_pct"] == pytest.approx(95.0)
    assert cache["evictions_per_s"] == pytest.approx(5.0)
    assert cache["expirations_per_s"] == pytest.approx(20.0)
    kinds = [f["kind"] for f in cache["findings"]]
    assert {"memory_bound_evictions", "short_ttl", "weak_key_class"} <= set(kinds)
    assert report["performance"]["cache_hit_rate"]["meeting_target"] is False


async def test_request_patterns_and_throughput_from_counters(nc: Client, agent: AgentNode) -> None:
    report = await analyse(nc, agent, "api_optimization", synthetic.traffic())
    patterns = report["request_patterns"]
    assert patterns["total_requests"] == pytest.approx(80 * 119 * 60)
    endpoints = {e["name"]: e for e in patterns["endpoints"]}
    assert endpoints["/api/feed"]["share_pct"] == pytest.approx(75.0)
    assert endpoints["/api/chat"]["share_pct"] == pytest.approx(25.0)
    assert 80 < endpoints["/api/feed"]["p95_ms"] < 95
    assert 40 < endpoints["/api/chat"]["p95_ms"] < 55
    regions = {r["name"]: r["share_pct"] for r in patterns["regions"]}
    assert regions == pytest.approx({"eu": 75.0, "us": 25.0})
    throughput = report["measured"]["api_throughput"]  # no target set: measured, not judged
    assert throughput["statistic"] == "rate"
    assert throughput["current"] == pytest.approx(80.0, rel=0.01)


@pytest.mark.parametrize(
    ("task_type", "bad_metric", "ratio"),
    [
        ("chat_backend_optimization", "message_processing_time", 1.8),
        ("prompt_feed_backend_optimization", "feed_generation_time", 1.8),
        ("report_generation_optimization", "ai_processing_efficiency", 80 / 60),
    ],
)
async def test_domain_analyses(
    nc: Client, agent: AgentNode, task_type: str, bad_metric: str, ratio: float
) -> None:
    report = await analyse(nc, agent, task_type, synthetic.domain_basics(task_type))
    assert [b["metric"] for b in report["bottlenecks"]] == [bad_metric]
    assert report["performance"][bad_metric]["miss_ratio"] == pytest.approx(ratio, rel=0.05)
    assert report["recommendations"]
    assert all(r["target"] == bad_metric for r in report["recommendations"])


async def test_a_domain_without_data_is_insufficient_data(nc: Client, agent: AgentNode) -> None:
    body = task("websocket_scaling_optimization", params={"metrics": {"api_response_time": 120.0}})
    result = await rpc(nc, agent, body, "websocket_scaling_optimization")
    assert result["status"] == "failed"
    assert result["error"]["code"] == "insufficient_data"
    assert "websocket_throughput" in result["error"]["message"]
