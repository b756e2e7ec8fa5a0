"""Faults with real processes: the nats-server restarts under a running agent."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

from agent.config import Settings
from agent.runtime.embedded import EmbeddedServer
from agent.runtime.node import AgentNode
from tests.payloads import encode, task
from tests.test_node_e2e import stream_messages

pytestmark = [pytest.mark.nats, pytest.mark.slow]


async def test_agent_survives_a_server_restart(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "js")
    await server.start()
    settings = Settings(
        nats_url=server.url,
        agent_id="restart-check",
        state_dir=tmp_path,
        nats_reconnect_wait_s=0.2,
        nats_drain_timeout_s=5,
    )
    try:
        async with AgentNode(settings) as node:
            nc = await nats.connect(server.url, reconnect_time_wait=0.2)
            js = nc.jetstream()
            before = [task() for _ in range(5)]
            for body in before:
                await js.publish("swarm.tasks.restart-check.api_optimization", encode(body))
            await asyncio.sleep(0.5)

            await server.stop()  # same port, same store: JetStream state survives
            await asyncio.sleep(1.0)
            await server.start()

            after = [task() for _ in range(5)]
            for body in after:
                for _ in range(100):  # the peer's own reconnect may take a moment
                    try:
                        await js.publish("swarm.tasks.restart-check.api_optimization", encode(body))
                        break
                    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                        await asyncio.sleep(0.2)
            msgs = await stream_messages(
                nc,
                node.streams["RESULTS"],
                "swarm.results.restart-check.api_optimization",
                10,
                wait=60,
            )
            ids = sorted(json.loads(m.data)["task_id"] for m in msgs)
            assert ids == sorted(b["task_id"] for b in before + after)
            # and the rpc path is back too
            reply = await nc.request(
                "swarm.rpc.restart-check.api_optimization", encode(task()), timeout=30
            )
            assert json.loads(reply.data)["status"] == "completed"
            await nc.close()
    finally:
        await server.stop()


async def test_task_the_server_stopped_delivering_is_answered_failed(
    nc: nats.aio.client.Client, make_settings: Callable[..., Settings]
) -> None:
    """As if the agent died on every delivery: the next agent answers it and dead-letters it."""
    settings = make_settings(max_deliver=2, ack_wait_s=1.0)
    agent_id = settings.agent_id
    async with AgentNode(settings) as node:  # creates the streams and the durable consumer
        streams = dict(node.streams)
    body = task()
    js = nc.jetstream()
    await js.publish(f"swarm.tasks.{agent_id}.api_optimization", encode(body))
    # a "dying agent": takes each delivery on the agent's durable and never answers it
    dying = await js.pull_subscribe_bind(durable=f"{agent_id}-tasks", stream=streams["TASKS"])
    for _ in range(2):
        msgs = await dying.fetch(1, timeout=10)
        assert msgs[0].metadata.num_delivered >= 1
        await asyncio.sleep(1.3)  # past ack_wait
    await dying.unsubscribe()
    await asyncio.sleep(0.5)

    async with AgentNode(settings):
        results = await stream_messages(
            nc, streams["RESULTS"], f"swarm.results.{agent_id}.api_optimization", 1, wait=30
        )
        letters = await stream_messages(
            nc, streams["DEADLETTER"], f"swarm.deadletter.{agent_id}", 1, wait=30
        )
    result = json.loads(results[0].data)
    assert result["task_id"] == body["task_id"]
    assert result["status"] == "failed"
    assert result["error"]["code"] == "max_deliveries"
    letter = json.loads(letters[0].data)
    assert letter["error_code"] == "max_deliveries"
    assert json.loads(base64.b64decode(letter["payload_b64"])) == body
