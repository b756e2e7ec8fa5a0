"""What one answer costs on the bus, counted where it lands: the server's streams.

Every acknowledged write of the agent is a message stored in one of its streams or KV
buckets (a KV value is a message of the bucket's stream), so the sum of their last
sequences before and after one rpc answer is the number of writes it made — counted by
the server, not by the agent. The agent's own count (``$SRV.STATS`` ``writes``) must agree,
and it alone knows how many of them it awaited one after the other (round trips). No
timing anywhere.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from agent.runtime.kv import bucket_name
from agent.runtime.node import AgentNode
from agent.runtime.outbox import Publish
from agent.runtime.task_records import TASKS_DONE, TaskRecord, record_key
from tests.payloads import task
from tests.test_node_e2e import rpc, stream_messages

pytestmark = pytest.mark.nats

ON_TARGET = {"api_response_time": 40.0, "api_availability": 99.99, "error_rate": 0.1}
"""An API that meets every target: nothing to recommend, no plan, no baseline."""


async def stored(nc: Client, agent: AgentNode) -> dict[str, int]:
    """Last sequence of each stream and bucket of the agent (its token), by name."""
    token = agent.settings.streams_token
    out: dict[str, int] = {}
    for info in await nc.jetstream().streams_info():
        name = info.config.name
        if name.startswith((f"{token}_", f"KV_{token}_")):
            out[name] = int(info.state.last_seq or 0)
    return out


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


async def writes_stats(nc: Client, agent: AgentNode) -> dict[str, Any]:
    msg = await nc.request(f"$SRV.STATS.{agent.settings.agent_id}", b"", timeout=5)
    stats: dict[str, Any] = json.loads(msg.data)
    for endpoint in stats.get("endpoints", []):
        data = endpoint.get("data") or {}
        if "writes" in data:
            return dict(data["writes"])
    return dict(stats.get("data", {}).get("writes", {}))


async def settled(nc: Client, agent: AgentNode) -> dict[str, int]:
    """The stored sequences once the background plan count (off the answer path) is done."""
    last: dict[str, int] = {}
    for _ in range(100):
        now = await stored(nc, agent)
        if now == last:
            return now
        last = now
        await asyncio.sleep(0.1)
    return last


async def test_an_rpc_answer_without_recommendations_costs_two_writes(
    nc: Client, agent: AgentNode
) -> None:
    body = task(params={"window": "1h", "metrics": ON_TARGET})
    await rpc(nc, agent, task(params={"window": "1h", "metrics": ON_TARGET}))  # warm
    before = await settled(nc, agent)
    answer = await rpc(nc, agent, body)
    after = await settled(nc, agent)
    assert answer["status"] == "completed"
    assert not answer["report"].get("recommendations")
    token = agent.settings.streams_token
    # the claim and the result: nothing read first, nothing marked afterwards
    assert delta(before, after) == {f"KV_{token}_TASKS_DONE": 1, f"{token}_RESULTS": 1}
    stats = await writes_stats(nc, agent)
    assert (stats["answers"], stats["relayed"], stats["relay_writes"]) == (2, 2, 2)
    assert stats["acked_writes_per_answer"] == 2
    assert stats["acked_round_trips_per_answer"] == 2  # the claim; the relay sends the result
    assert stats["answer_path_round_trips_per_answer"] == 1


async def test_an_rpc_answer_that_recommends_costs_three_round_trips(
    nc: Client, agent: AgentNode
) -> None:
    before = await settled(nc, agent)
    answer = await rpc(nc, agent, task())
    after = await settled(nc, agent)
    assert answer["status"] == "completed"
    assert answer["report"]["recommendations"]
    token = agent.settings.streams_token
    on_path = {
        f"KV_{token}_TASKS_DONE": 1,  # the claim
        f"KV_{token}_PREDICTIONS": 1,  # every prediction of the plan, one value
        f"{token}_PLANS": 1,
        f"{token}_BASELINES": 1,
        f"{token}_LEARNING": 1,  # the plan-issued event
        f"{token}_RESULTS": 1,
    }
    # the totals count the plan off the answer path (plan_counter): one more KV write
    assert delta(before, after) == on_path | {f"KV_{token}_LEARNING": 1}
    stats = await writes_stats(nc, agent)
    assert (stats["answers"], stats["relayed"]) == (1, 1)
    # the agent's count is the server's
    assert stats["acked_writes_per_answer"] == sum(on_path.values())
    # the claim, before the reply; then the relay: predictions, the rest together
    assert stats["acked_round_trips_per_answer"] == 3
    assert stats["answer_path_round_trips_per_answer"] == 1
    state = await agent.learning.snapshot()
    assert state.totals.plans_issued == 1


async def test_a_duplicate_is_only_replied_to(nc: Client, agent: AgentNode) -> None:
    body = task()
    first = await rpc(nc, agent, body)
    before = await settled(nc, agent)
    again = await rpc(nc, agent, body)
    after = await settled(nc, agent)
    assert again == first
    assert delta(before, after) == {}  # the relay sent the claim once; nothing is claimed again
    stats = await writes_stats(nc, agent)
    assert (stats["answers"], stats["relayed"], stats["resent"], stats["replied_only"]) == (
        1,
        1,
        0,
        1,
    )
    assert agent.counters.duplicates == 1


async def test_an_older_agents_unsent_claim_is_sent_when_found(
    nc: Client, agent: AgentNode
) -> None:
    """A claim without ``claimed_at`` and never marked published (an agent before the relay
    died after claiming) is sent by the agent that finds it: no relay will."""
    body = task()
    first = await rpc(nc, agent, body)
    records = agent.services.records
    record = await records.get(first["task_id"])
    assert record is not None
    await records.kv.delete(record_key(first["task_id"]))
    old = TaskRecord(result=record.result, outputs=record.outputs)  # no claimed_at
    await agent.services.js.publish(
        f"$KV.{bucket_name(agent.settings, TASKS_DONE)}.{record_key(first['task_id'])}",
        msgspec.json.encode(old),
        headers={"Nats-Msg-Id": "old-claim"},  # the relay sees it too: no double count
    )
    before = await settled(nc, agent)
    again = await rpc(nc, agent, body)
    after = await settled(nc, agent)
    assert again == first
    # the relay and the finder both send it: every copy deduplicated but the predictions'
    # KV value, written again with the same bytes
    assert set(delta(before, after)) <= {f"KV_{agent.settings.streams_token}_PREDICTIONS"}
    stats = await writes_stats(nc, agent)
    assert stats["resent"] == 1


class _Delivered:
    """A claim as the relay's fetch hands it over (data, headers, subject)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.headers: dict[str, str] | None = None
        self.subject = "$KV.test"


async def test_a_claim_delivered_past_the_window_is_not_sent(
    nc: Client, agent: AgentNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica down longer than the duplicate window: a copy could be stored twice."""
    first = await rpc(nc, agent, task())
    record = await agent.services.records.get(first["task_id"])
    assert record is not None
    claimed_at = record.claimed_at
    assert claimed_at is not None
    relay = agent.services.relay
    # the running relay sends the claim first: the reply came before it did, and with the
    # clock moved on it would skip this claim too
    before = await settled(nc, agent)
    skipped = (await writes_stats(nc, agent))["relay_skipped"]
    monkeypatch.setattr(relay, "clock", lambda: claimed_at + relay.resend_within_s + 1)
    await relay.relay([_Delivered(msgspec.json.encode(record))])  # type: ignore[list-item]
    assert await settled(nc, agent) == before
    stats = await writes_stats(nc, agent)
    assert stats["relay_skipped"] == skipped + 1


async def test_a_claim_its_agent_never_sent_is_sent_by_the_relay(
    nc: Client, agent: AgentNode
) -> None:
    """An agent that died right after its claim (its caller answered or not): the relay,
    whoever runs it, sends the claimed answer's outputs and result."""
    first = await rpc(nc, agent, task())
    record = await agent.services.records.get(first["task_id"])
    assert record is not None
    orphan = dict(first, task_id=f"{first['task_id']}-orphan")
    plan = next(o for o in record.outputs if isinstance(o, Publish))
    renamed = Publish(subject=plan.subject, payload=plan.payload, msg_id=f"{plan.msg_id}-orphan")
    _, won = await agent.services.records.claim(
        orphan["task_id"], json.dumps(orphan).encode(), [renamed]
    )
    assert won  # claimed, and nothing of it sent by the claimer
    agent_id = agent.settings.agent_id
    results = await stream_messages(
        nc, agent.streams["RESULTS"], f"swarm.results.{agent_id}.api_optimization", 2
    )
    assert [json.loads(m.data)["task_id"] for m in results] == [
        first["task_id"],
        orphan["task_id"],
    ]
    plans = await stream_messages(
        nc, agent.streams["PLANS"], f"swarm.plans.{agent.settings.hephaestus_id}", 2
    )
    assert len(plans) == 2  # the first task's plan and the orphan's, stored once each
