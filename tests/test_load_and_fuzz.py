"""Load and bad input at scale against a running agent: bounded work, bounded memory, no crash."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.runtime.node import AgentNode
from tests.payloads import encode, task
from tests.test_node_e2e import rpc, stream_messages

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def rss_mb() -> float:
    """Resident memory of this process (agent and test share it), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_a_burst_keeps_work_bounded_and_answers_everything(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_in_flight=2, rpc_queue_limit=4, max_ack_pending=8)
    agent_id = settings.agent_id
    async with AgentNode(settings) as node:
        await rpc(nc, node, task())  # warm up
        before = rss_mb()
        js = nc.jetstream()
        bodies = [task() for _ in range(600)]
        acks = [
            js.publish_async(f"swarm.tasks.{agent_id}.api_optimization", encode(b)) for b in bodies
        ]
        for ack in acks:
            await ack
        # meanwhile a crowd of rpc callers: each is answered, some with `overloaded`, none times out
        replies = await asyncio.gather(
            *(
                nc.request(f"swarm.rpc.{agent_id}.api_optimization", encode(task()), timeout=30)
                for _ in range(40)
            )
        )
        statuses = [json.loads(r.data) for r in replies]
        codes = {(s["error"] or {}).get("code", s["status"]) for s in statuses}
        assert codes <= {"completed", "overloaded"}
        assert "overloaded" in codes
        completed_rpc = sum(1 for s in statuses if s["status"] == "completed")
        results = await stream_messages(  # rpc results land there too; overloaded ones don't
            nc,
            node.streams["RESULTS"],
            f"swarm.results.{agent_id}.api_optimization",
            len(bodies) + completed_rpc + 1,
            wait=120,
        )
        answered = {json.loads(m.data)["task_id"] for m in results}
        assert {b["task_id"] for b in bodies} <= answered
        assert node.pool.peak_running <= settings.max_in_flight
        grown = rss_mb() - before
        assert grown < 300, f"memory grew {grown:.0f} MiB over a 600-task burst"


def mutations(valid: bytes, rng: random.Random) -> list[bytes]:
    """Raw mutations of a valid message: the shapes bad input takes on a real bus."""
    text = valid.decode()
    cut = rng.randrange(1, len(valid))
    return [
        valid[:cut],  # truncated JSON
        text.replace('"schema"', '"schema": 1e999, "x"', 1).encode(),  # a huge number
        ("[" * 5000 + "]" * 5000).encode(),  # deep nesting
        json.dumps({"schema": "task_request/v1", "task_id": "x" * 900_000}).encode(),  # ~1 MiB
        text.replace('"issuer": "helios"', '"issuer": 42', 1).encode(),  # a wrong type
        valid[:cut] + b"\xff\xfe" + valid[cut:],  # invalid UTF-8
        b"",  # nothing
        b"null",
        bytes(rng.randrange(256) for _ in range(200)),  # noise
    ]


async def test_bad_input_on_every_inbound_subject(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kpi_stream=False)
    agent_id = settings.agent_id
    rng = random.Random(7)
    js = nc.jetstream()
    lying = [
        None,
        {"Content-Type": "text/plain"},
        {"traceparent": "00-zz-yy-01"},
        {"Nats-Msg-Id": ""},
    ]
    durable: list[tuple[str, bytes]] = []
    valid_task = encode(task())
    for subject in (
        f"swarm.tasks.{agent_id}.api_optimization",
        f"swarm.verifications.{agent_id}",
        f"swarm.feedback.{agent_id}",
        f"swarm.directives.{agent_id}",
    ):
        durable += [(subject, m) for m in mutations(valid_task, rng)]
    async with AgentNode(settings) as node:
        before = rss_mb()
        sent = 0
        for i, (subject, data) in enumerate(durable):
            headers: Any = lying[i % len(lying)]
            headers = {k: v for k, v in headers.items() if v} if headers else None
            await js.publish(subject, data, headers=headers)
            sent += 1
        # rpc and the KPI stream take the same garbage without a stream in between
        for data in mutations(valid_task, rng):
            reply = await nc.request(f"swarm.rpc.{agent_id}.api_optimization", data, timeout=30)
            assert json.loads(reply.data)["status"] == "rejected"
            await nc.publish(f"swarm.kpi.backend.{agent_id}", data)
        letters = await stream_messages(
            nc, node.streams["DEADLETTER"], f"swarm.deadletter.{agent_id}", sent, wait=60
        )
        # every durable message refused and dead-lettered (the rpc and KPI ones too)
        assert len(letters) >= sent
        assert node.kpi_stats.batches_rejected >= 1
        # and the agent still serves
        good = await rpc(nc, node, task())
        assert good["status"] == "completed"
        assert rss_mb() - before < 300
