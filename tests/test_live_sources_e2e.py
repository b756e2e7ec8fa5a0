"""An agent fed only by the KPI stream answers every task type from live data."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.runtime.node import AgentNode
from protocols import TaskType
from tests.payloads import task
from tests.test_node_e2e import rpc

pytestmark = pytest.mark.nats

LEVELS: dict[str, float] = {
    # api and infra
    "api_response_time": 180.0,
    "api_availability": 99.95,
    "api_throughput": 450.0,
    "error_rate": 0.4,
    "redis_cache_hit": 80.0,
    "database_query_time": 40.0,
    "cpu_utilization": 55.0,
    "memory_utilization": 60.0,
    # chat
    "websocket_throughput": 1200.0,
    "message_processing_time": 150.0,
    "connection_stability": 99.5,
    "real_time_delivery": 30.0,
    # feed
    "content_retrieval_time": 150.0,
    "feed_generation_time": 700.0,
    "cache_hit_rate": 85.0,
    "data_freshness": 97.0,
    # ai
    "report_generation": 450.0,
    "sentiment_analysis": 120.0,
    "ai_processing_efficiency": 70.0,
    "data_processing_time": 250.0,
}


def kpi_batches(now: float, minutes: int = 30, per_batch: int = 100) -> list[bytes]:
    """Half an hour of 1-minute samples of every metric (±2 % noise) ending now."""
    rng = np.random.default_rng(11)
    samples: list[dict[str, Any]] = []
    for name, level in LEVELS.items():
        for i in range(minutes):
            value = level * (1 + rng.normal(0, 0.02))
            if name in {"api_availability", "connection_stability"}:
                value = min(value, 100.0)
            samples.append(
                {"metric": name, "value": round(value, 4), "ts": now - (minutes - 1 - i) * 60.0}
            )
    for i in range(minutes):  # per-node connections for the WebSocket capacity finding
        for node in ("ws-1", "ws-2"):
            samples.append(
                {
                    "metric": "websocket_connections",
                    "value": 1000.0 + 10 * i,
                    "ts": now - (minutes - 1 - i) * 60.0,
                    "labels": {"instance": node},
                }
            )
    return [
        json.dumps(
            {"schema": "kpi_batch/v1", "source": "test-kpi", "samples": samples[k : k + per_batch]}
        ).encode()
        for k in range(0, len(samples), per_batch)
    ]


async def test_every_task_type_answers_from_the_kpi_stream(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kpi_stream=False)  # live only: no replay of other tests' KPIs
    async with AgentNode(settings) as node:
        batches = kpi_batches(time.time())
        for data in batches:
            await nc.publish(f"swarm.kpi.backend.{settings.agent_id}", data)
        await nc.flush()
        expected = len(LEVELS) * 30 + 60
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while node.kpi_stats.samples_accepted < expected and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert node.kpi_stats.samples_accepted == expected
        for task_type in TaskType:
            params = {"window": "1h"}  # no inline data: the live store answers
            result = await rpc(nc, node, task(task_type.value, params=params), task_type.value)
            assert result["status"] == "completed", (task_type, result.get("error"))
            report = result["report"]
            sources = report["data_quality"]["sources"]
            assert all(v == ["kpi"] for v in sources.values()), sources
        # the last one was the plan: its API item is judged on the live p95
        latency = report["performance"]["api_response_time"]
        assert latency["current"] == pytest.approx(180.0, rel=0.1)
        stats = json.loads(
            (await nc.request(f"$SRV.STATS.{settings.agent_id}", b"", timeout=5)).data
        )
        assert stats["endpoints"][0]["data"]["kpi"]["samples_accepted"] == expected
