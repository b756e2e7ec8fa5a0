"""Strategic planning over a real nats-server: the plan, its hand-offs and Helios's directives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.learning.state import plan_key
from agent.runtime.node import AgentNode
from tests import synthetic
from tests.payloads import encode, iso, task
from tests.test_node_e2e import rpc, stream_messages

pytestmark = pytest.mark.nats

PLANNING = "strategic_backend_planning"


def plan_order(result: dict[str, Any]) -> list[str]:
    assert result["status"] == "completed", result.get("error")
    return [e["target"] for e in result["report"]["prioritized_plan"]]


async def test_planning_publishes_one_plan_and_one_baseline(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    body = task(PLANNING, params=synthetic.backend_day())
    js = nc.jetstream()
    async with AgentNode(settings) as node:
        subject = f"swarm.tasks.{settings.agent_id}.{PLANNING}"
        for n in range(2):  # the same task twice, as a retrying orchestrator would
            await js.publish(
                subject, encode(body), headers={"Nats-Msg-Id": f"{n}-{body['task_id']}"}
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while node.counters.duplicates < 1 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        results = await stream_messages(
            nc, node.streams["RESULTS"], f"swarm.results.{settings.agent_id}.{PLANNING}", 1
        )
        plans = await stream_messages(
            nc, node.streams["PLANS"], f"swarm.plans.{settings.hephaestus_id}", 2, wait=1.0
        )
        baselines = await stream_messages(
            nc, node.streams["BASELINES"], f"swarm.baselines.{settings.athena_id}", 2, wait=1.0
        )
        predictions = await js.key_value(f"{settings.streams_token}_PREDICTIONS")
        result = json.loads(results[0].data)
        report = result["report"]
        assert len(results) == 1
        assert len(plans) == 1
        assert len(baselines) == 1
        plan, baseline = json.loads(plans[0].data), json.loads(baselines[0].data)
        assert plan["schema"] == "optimization_plan/v1"
        assert plan["plan_id"] == report["plan_id"]
        assert plan["source_task_id"] == body["task_id"]
        assert [i["recommendation_id"] for i in plan["items"]] == [
            e["recommendation_id"] for e in report["prioritized_plan"]
        ]
        assert baseline["schema"] == "performance_baseline/v1"
        assert baseline["plan_id"] == plan["plan_id"]
        redis = baseline["metrics"]["redis_cache_hit"]
        assert redis["value"] == pytest.approx(report["performance"]["redis_cache_hit"]["current"])
        # every prediction of the plan in one value, keyed by the plan
        stored = json.loads((await predictions.get(plan_key(plan["plan_id"]))).value)
        assert stored["plan_id"] == plan["plan_id"]
        by_id = {p["recommendation_id"]: p for p in stored["predictions"]}
        assert set(by_id) == {p["recommendation_id"] for p in baseline["predictions"]}
        for prediction in baseline["predictions"]:
            kept = by_id[prediction["recommendation_id"]]
            assert kept["expected_value"] == prediction["expected_value"]
            assert kept["plan_id"] == plan["plan_id"]
        # a plan every number of which comes from the data or the playbook
        assert report["plan_type"] == "strategic_backend_optimization"
        assert plan_order(result)[0] == "redis_cache_hit"  # 78 % vs 95 %: critical
        assert report["prioritized_plan"][0]["implementation_phase"] == "Phase_1_Critical"
        baseline_figures = report["scalability_projections"]["current_baseline"]
        assert baseline_figures["api_requests_per_s"]["value"] == pytest.approx(300, rel=0.1)
        assert baseline_figures["websocket_connections"]["value"] > 0
        assert baseline_figures["capacity_model"]["model"] in {"usl", "linear"}
        assert {t["metric"] for t in report["scalability_projections"]["scaling_triggers"]} == {
            "cpu_utilization",
            "memory_utilization",
            "api_response_time",
        }


async def test_a_directive_reorders_the_plan_and_survives_a_restart(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    # a throughput is judged only against a target somebody set: this task sets one
    params = {
        "metrics": {"websocket_throughput": 800.0, "api_response_time": 125.0},
        "targets": {"websocket_throughput": 1000.0},
    }
    directive = {
        "schema": "strategic_directive/v1",
        "directive_id": "scale-out-q1",
        "issued_at": iso(datetime.now(UTC)),
        "business_impact_weights": {
            "api_performance": 0.15,
            "scalability": 0.55,
            "ai_processing": 0.15,
            "infrastructure_efficiency": 0.15,
        },
    }
    async with AgentNode(settings) as node:
        before = await rpc(nc, node, task(PLANNING, params=params), PLANNING)
        assert plan_order(before) == ["api_response_time", "websocket_throughput"]
        assert before["report"]["directive_id"] is None
        await nc.jetstream().publish(f"swarm.directives.{settings.agent_id}", encode(directive))
        store = node.directive_store
        assert store is not None
        for _ in range(200):
            if await store.latest() is not None:
                break
            await asyncio.sleep(0.05)
        after = await rpc(nc, node, task(PLANNING, params=params), PLANNING)
        assert plan_order(after) == ["websocket_throughput", "api_response_time"]
        assert after["report"]["directive_id"] == "scale-out-q1"
        # every report names the directive in force, the domain analyses too
        analysis = await rpc(nc, node, task(params=params), "api_optimization")
        assert analysis["report"]["directive_id"] == "scale-out-q1"
    async with AgentNode(settings) as restarted:
        again = await rpc(nc, restarted, task(PLANNING, params=params), PLANNING)
        assert plan_order(again) == ["websocket_throughput", "api_response_time"]
        assert again["report"]["directive_id"] == "scale-out-q1"


async def test_an_undecodable_directive_is_dead_lettered(nc: Client, agent: AgentNode) -> None:
    agent_id = agent.settings.agent_id
    await nc.jetstream().publish(
        f"swarm.directives.{agent_id}", b'{"schema":"strategic_directive/v1"}'
    )
    letters = await stream_messages(
        nc, agent.streams["DEADLETTER"], f"swarm.deadletter.{agent_id}", 1, wait=30
    )
    assert json.loads(letters[0].data)["error_code"] == "schema_violation"
    assert agent.directive_store is not None
    assert await agent.directive_store.latest() is None


async def test_an_analysis_that_recommends_hands_off_too(nc: Client, agent: AgentNode) -> None:
    result = await rpc(nc, agent, task(), "api_optimization")
    plans = await stream_messages(
        nc, agent.streams["PLANS"], f"swarm.plans.{agent.settings.hephaestus_id}", 1
    )
    plan = json.loads(plans[0].data)
    assert {i["recommendation_id"] for i in plan["items"]} == {
        r["recommendation_id"] for r in result["report"]["recommendations"]
    }
