"""The agent end to end over a real nats-server, seen from a peer that uses bare nats-py only."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from agent.runtime.node import AgentNode
from tests.payloads import encode, iso, task

pytestmark = pytest.mark.nats

RPC_TIMEOUT = 30.0


async def rpc(
    nc: Client,
    agent: AgentNode,
    body: dict[str, Any] | bytes,
    task_type: str = "api_optimization",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else encode(body)
    msg = await nc.request(
        f"swarm.rpc.{agent.settings.agent_id}.{task_type}",
        data,
        timeout=RPC_TIMEOUT,
        headers=headers,
    )
    out: dict[str, Any] = json.loads(msg.data)
    return out


async def stream_messages(
    nc: Client, stream: str, subject: str, expect: int, wait: float = 10.0
) -> list[Any]:
    """Every message on ``subject`` in ``stream``, once ``expect`` are there (or time is up)."""
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        info = await js.stream_info(stream, subjects_filter=subject)
        count = sum((info.state.subjects or {}).values())
        if count >= expect or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    if count == 0:
        return []
    sub = await js.pull_subscribe(
        subject, stream=stream, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    msgs = await sub.fetch(count, timeout=5)
    await sub.unsubscribe()
    return msgs


async def test_rpc_answers_with_a_valid_report(nc: Client, agent: AgentNode) -> None:
    body = task()
    result = await rpc(nc, agent, body)
    assert result["schema"] == "task_result/v1"
    assert result["task_id"] == body["task_id"]
    assert result["status"] == "completed", result
    assert result["agent_id"] == agent.settings.agent_id
    perf = result["report"]["performance"]
    assert perf["api_availability"]["miss_ratio"] == pytest.approx(5.0)
    assert perf["api_availability"]["meeting_target"] is False
    assert perf["error_rate"]["meeting_target"] is True
    latency = perf["api_response_time"]
    assert latency["trend"] == "declining"
    assert latency["statistic"] == "p95"
    assert latency["current"] == pytest.approx(120.9)
    assert latency["miss_ratio"] == pytest.approx(1.209)
    assert latency["samples"] == 12
    assert latency["trend_detail"]["slope_per_hour"] == pytest.approx(24.0)  # 2 ms per 5 min
    bottlenecks = {b["metric"]: b for b in result["report"]["bottlenecks"]}
    assert bottlenecks["api_response_time"]["severity"] == "medium"
    assert bottlenecks["api_response_time"]["optimization_urgency"] == 91
    # availability 99.5 % against 99.9 %: 5× in error-budget space → critical, urgency capped
    assert bottlenecks["api_availability"]["severity"] == "critical"
    assert bottlenecks["api_availability"]["optimization_urgency"] == 100
    assert [b["metric"] for b in result["report"]["bottlenecks"]] == [
        "api_availability",
        "api_response_time",
    ]
    assert "error_rate" not in bottlenecks
    assert perf["error_rate"]["miss_ratio"] == pytest.approx(0.5)
    recs = result["report"]["recommendations"]
    assert {r["target"] for r in recs} == {"api_availability", "api_response_time"}
    assert all(r["calibrated"] is False for r in recs)
    # the same result is on the results stream, once
    results = await stream_messages(
        nc, agent.streams["RESULTS"], f"swarm.results.{agent.settings.agent_id}.api_optimization", 1
    )
    assert [json.loads(m.data)["task_id"] for m in results] == [body["task_id"]]
    assert results[0].headers["Nats-Msg-Id"] == f"{body['task_id']}:result"


async def test_durable_task_is_answered_on_results_and_reply_to(
    nc: Client, agent: AgentNode
) -> None:
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    body = task(reply_to=inbox)
    js = nc.jetstream()
    await js.publish(f"swarm.tasks.{agent.settings.agent_id}.api_optimization", encode(body))
    msg = await sub.next_msg(timeout=RPC_TIMEOUT)
    result = json.loads(msg.data)
    assert result["task_id"] == body["task_id"]
    assert result["status"] == "completed"
    results = await stream_messages(
        nc, agent.streams["RESULTS"], f"swarm.results.{agent.settings.agent_id}.api_optimization", 1
    )
    assert json.loads(results[0].data) == result


async def test_same_task_twice_yields_one_result(nc: Client, agent: AgentNode) -> None:
    body = task()
    js = nc.jetstream()
    subject = f"swarm.tasks.{agent.settings.agent_id}.api_optimization"
    for n in range(2):
        await js.publish(
            subject, encode(body), headers={"Nats-Msg-Id": f"publish-{n}-{body['task_id']}"}
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RPC_TIMEOUT
    while agent.counters.duplicates < 1 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert agent.counters.duplicates == 1
    results = await stream_messages(
        nc,
        agent.streams["RESULTS"],
        f"swarm.results.{agent.settings.agent_id}.api_optimization",
        2,
        wait=1.0,
    )
    assert len(results) == 1
    assert json.loads(results[0].data)["task_id"] == body["task_id"]
    # and the rpc path answers the same id with the very same result
    again = await rpc(nc, agent, body)
    assert again == json.loads(results[0].data)


def _expired() -> dict[str, Any]:
    return task(deadline=iso(datetime.now(UTC) - timedelta(minutes=1)))


BAD_INPUTS: list[tuple[str, str, Any, str, bool]] = [
    # (case, task type token on the subject, body, expected code, task id readable)
    ("garbage", "api_optimization", b"\x00\xffnot json{", "invalid_payload", False),
    ("json array", "api_optimization", b"[1, 2, 3]", "invalid_payload", False),
    (
        "wrong types",
        "api_optimization",
        {**task(), "issued_at": 12, "issuer": ["x"]},
        "schema_violation",
        True,
    ),
    (
        "NaN",
        "api_optimization",
        b'{"schema":"task_request/v1","task_id":"nan-1","task_type":"api_optimization","issued_at":"2026-11-28T10:00:00Z","issuer":"h","params":{"metrics":{"error_rate":NaN}}}',
        "invalid_payload",
        False,
    ),
    (
        "huge number",
        "api_optimization",
        {**task(), "params": {"metrics": {"error_rate": 1e300}}},
        "schema_violation",
        True,
    ),
    (
        "unknown major",
        "api_optimization",
        {**task(), "schema": "task_request/v2"},
        "unsupported_schema",
        True,
    ),
    (
        "unknown task type",
        "defragment_the_moon",
        task("defragment_the_moon"),
        "unknown_task_type",
        True,
    ),
    (
        "mismatched task type",
        "cache_optimization",
        task("api_optimization"),
        "task_type_mismatch",
        True,
    ),
    ("expired deadline", "api_optimization", _expired(), "deadline_exceeded", True),
]


@pytest.mark.parametrize(
    ("case", "token", "body", "code", "readable"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_input_is_refused_and_dead_lettered(
    nc: Client, agent: AgentNode, case: str, token: str, body: Any, code: str, readable: bool
) -> None:
    data = body if isinstance(body, bytes) else encode(body)
    js = nc.jetstream()
    agent_id = agent.settings.agent_id
    await js.publish(f"swarm.tasks.{agent_id}.{token}", data)
    letters = await stream_messages(
        nc, agent.streams["DEADLETTER"], f"swarm.deadletter.{agent_id}", 1, wait=RPC_TIMEOUT
    )
    assert len(letters) == 1
    letter = json.loads(letters[0].data)
    assert letter["schema"] == "dead_letter/v1"
    assert letter["error_code"] == code
    assert base64.b64decode(letter["payload_b64"]) == data
    assert letter["subject"] == f"swarm.tasks.{agent_id}.{token}"
    if readable:
        results = await stream_messages(
            nc, agent.streams["RESULTS"], f"swarm.results.{agent_id}.{token}", 1
        )
        result = json.loads(results[0].data)
        assert result["status"] == "rejected"
        assert result["error"]["code"] == code
        assert result["task_id"] == body["task_id"]
    # the same input over rpc gets the same code
    if token == "api_optimization" and not readable:
        reply = await rpc(nc, agent, data)
        assert reply["status"] == "rejected"
        assert reply["error"]["code"] == code
    # and the agent keeps serving
    good = await rpc(nc, agent, task())
    assert good["status"] == "completed"


async def test_service_discovery(nc: Client, agent: AgentNode) -> None:
    agent_id = agent.settings.agent_id
    ping = json.loads((await nc.request(f"$SRV.PING.{agent_id}", b"", timeout=5)).data)
    assert ping["name"] == agent_id
    assert ping["type"] == "io.nats.micro.v1.ping_response"
    info = json.loads((await nc.request(f"$SRV.INFO.{agent_id}", b"", timeout=5)).data)
    assert info["description"]
    assert sorted(e["subject"] for e in info["endpoints"]) == sorted(
        f"swarm.rpc.{agent_id}.{t}"
        for t in (
            "api_optimization",
            "chat_backend_optimization",
            "prompt_feed_backend_optimization",
            "report_generation_optimization",
            "websocket_scaling_optimization",
            "cache_optimization",
            "strategic_backend_planning",
        )
    )
    await rpc(nc, agent, task())
    stats = json.loads((await nc.request(f"$SRV.STATS.{agent_id}", b"", timeout=5)).data)
    data = stats["endpoints"][0]["data"]
    assert data["completed"] >= 1


async def test_trace_context_is_continued(nc: Client, agent: AgentNode, spans: Any) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    body = task()
    msg = await nc.request(
        f"swarm.rpc.{agent.settings.agent_id}.api_optimization",
        encode(body),
        timeout=RPC_TIMEOUT,
        headers=headers,
    )
    assert msg.headers["traceparent"].split("-")[1] == trace_id
    results = await stream_messages(
        nc, agent.streams["RESULTS"], f"swarm.results.{agent.settings.agent_id}.api_optimization", 1
    )
    assert results[0].headers["traceparent"].split("-")[1] == trace_id
    finished = spans.get_finished_spans()
    consumer = [s for s in finished if s.name.startswith("process swarm.rpc.")]
    assert consumer
    assert format(consumer[0].context.trace_id, "032x") == trace_id
    assert consumer[0].attributes["messaging.system"] == "nats"
    assert any(s.name.startswith("send swarm.results.") for s in finished)
