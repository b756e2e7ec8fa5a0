"""A task's strategy starts on the directive and learning state this agent read last, and
runs again when the reads made for the task find something newer: read-your-writes holds
whichever replica wrote (``TaskHandler.run``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client

from agent.learning.state import LearningState
from agent.runtime.directives import DirectiveStore
from agent.runtime.node import AgentNode
from protocols import StrategicDirective, decode
from tests.payloads import encode, iso, task
from tests.test_node_e2e import rpc

pytestmark = pytest.mark.nats


def directive_body(directive_id: str) -> bytes:
    return encode(
        {
            "schema": "strategic_directive/v1",
            "directive_id": directive_id,
            "issued_at": iso(datetime.now(UTC)),
            "business_impact_weights": {
                "api_performance": 0.55,
                "scalability": 0.15,
                "ai_processing": 0.15,
                "infrastructure_efficiency": 0.15,
            },
        }
    )


async def test_a_directive_another_replica_stored_applies_to_the_next_task(
    nc: Client, agent: AgentNode
) -> None:
    first = await rpc(nc, agent, task())
    assert first["report"]["directive_id"] is None
    # another replica's store on the same bucket: this agent's last read does not know it
    other = DirectiveStore(agent.directive_store.kv)
    raw = directive_body("from-another-replica")
    assert await other.offer(decode(StrategicDirective, raw), raw)
    known = agent.directive_store.known
    assert known is not None
    assert known.directive is None  # what the next task starts on is out of date
    reruns = agent.services.dispatcher.handler.compute.reruns
    second = await rpc(nc, agent, task())
    assert second["report"]["directive_id"] == "from-another-replica"
    assert agent.services.dispatcher.handler.compute.reruns == reruns + 1
    third = await rpc(nc, agent, task())  # now known: no second run
    assert third["report"]["directive_id"] == "from-another-replica"
    assert agent.services.dispatcher.handler.compute.reruns == reruns + 1


async def _plan_counted(agent: AgentNode) -> None:
    """A plan went out and the totals count it (a learning write, off the answer path)."""
    for _ in range(100):
        if (await agent.learning.snapshot()).totals.plans_issued:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the plan was never counted")


async def test_a_learning_state_behind_the_bucket_is_read_again(
    nc: Client, agent: AgentNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rpc(nc, agent, task())
    await _plan_counted(agent)
    # as if the mirror had not yet applied a write that changed what a strategy reads
    # (a feasibility that no longer holds) when the next task started
    behind = LearningState(infeasible={"caching|api_response_time": "not possible here"})
    monkeypatch.setattr(agent.learning, "current", lambda: (behind, 0))
    reruns = agent.services.dispatcher.handler.compute.reruns
    answer = await rpc(nc, agent, task())
    assert answer["status"] == "completed"
    assert agent.services.dispatcher.handler.compute.reruns == reruns + 1


async def test_a_state_behind_only_by_the_plans_counted_is_not_run_again(
    nc: Client, agent: AgentNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count of plans issued is folded off the answer path: no task is promised it at
    once, so a count the mirror has not applied yet does not cost a second strategy run."""
    await rpc(nc, agent, task())
    await _plan_counted(agent)
    monkeypatch.setattr(agent.learning, "current", lambda: (LearningState(), 0))
    reruns = agent.services.dispatcher.handler.compute.reruns
    answer = await rpc(nc, agent, task())
    assert answer["status"] == "completed"
    assert agent.services.dispatcher.handler.compute.reruns == reruns
