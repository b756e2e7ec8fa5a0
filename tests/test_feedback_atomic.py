"""A crash between the writes of a feedback update loses nothing (issue 17).

An implementation update is three compare-and-set writes (the infeasible pair, the plan's
progress, the totals). The process is "killed" after each number of them in turn — the
KV write that would come next raises, and the store is dropped — then a fresh store (the
restarted agent) applies the redelivered update: the infeasible flag must be there, the
update counted once, and the state equal to the rebuild from the event log. Then the same
through a running agent: a failing write makes the reader nak the message, and the
redelivery completes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.learning.state import infeasible_key
from agent.runtime.kv import open_bucket
from agent.runtime.learning import LearningStore
from agent.runtime.node import AgentNode
from agent.runtime.predictions import PlanPredictions, Predictions
from protocols import encode, subjects
from tests.test_learning_core import prediction, update

pytestmark = pytest.mark.nats

PAIR = infeasible_key("query_optimization", "api_response_time")
WRITES = 3
"""KV writes of an update that reports a feasibility for a known approach and metric."""


class Crash(Exception):
    """The process died here."""


def crash_after(store: LearningStore, allowed: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Let ``allowed`` KV writes of ``store`` through, then fail every later one."""
    done: list[str] = []
    kv = store.kv
    create, update_ = kv.create, kv.update

    async def guarded(real: Callable[..., Any], key: str, *args: Any, **kwargs: Any) -> Any:
        if len(done) >= allowed:
            raise Crash(f"killed before writing {key} (after {done})")
        out = await real(key, *args, **kwargs)
        done.append(key)
        return out

    monkeypatch.setattr(kv, "create", lambda key, *a, **k: guarded(create, key, *a, **k))
    monkeypatch.setattr(kv, "update", lambda key, *a, **k: guarded(update_, key, *a, **k))
    return done


async def plan_predictions(nc: Client, settings: Settings) -> Predictions:
    """The plan's predictions as an agent stores them now: one value, keyed by the plan."""
    kv = await open_bucket(nc.jetstream(), settings, "PREDICTIONS", description="predictions")
    predictions = Predictions(kv)
    value = PlanPredictions(plan_id="plan-1", predictions=[prediction("rec-1")])
    await predictions.put_plan("plan-1", msgspec.json.encode(value))
    return predictions


@pytest.mark.parametrize("allowed", range(WRITES + 1))
async def test_a_kill_between_the_feedback_writes_loses_nothing(
    nc: Client,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    allowed: int,
) -> None:
    settings = make_settings()
    predictions = await plan_predictions(nc, settings)
    u = update("u-1", "rec-1", "rejected", feasibility="infeasible", reason="no window")

    dying = await LearningStore.open(nc.jetstream(), settings)
    written = crash_after(dying, allowed, monkeypatch)
    if allowed < WRITES:
        with pytest.raises(Crash):
            await dying.update(u, predictions)
    else:
        assert await dying.update(u, predictions) == "applied"
    assert len(written) == allowed
    monkeypatch.undo()

    restarted = await LearningStore.open(nc.jetstream(), settings)  # nothing kept in memory
    await restarted.update(u, predictions)  # the redelivery
    await restarted.update(u, predictions)  # and a duplicate of it
    state = await restarted.read()
    assert state.infeasible == {PAIR: "no window"}
    assert state.totals.updates == 1
    assert state.plans["plan-1"].statuses == {"rec-1": "rejected"}
    assert state.plans["plan-1"].applied_updates == ["u-1"]
    assert await restarted.rebuild() == state  # what the event log says, exactly


async def test_a_later_feasible_update_is_not_undone_by_the_replay(
    nc: Client, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay re-applies the pair only for an update its plan has not recorded."""
    settings = make_settings()
    predictions = await plan_predictions(nc, settings)
    store = await LearningStore.open(nc.jetstream(), settings)
    no = update("u-1", "rec-1", "rejected", feasibility="infeasible", reason="no window")
    yes = update("u-2", "rec-1", "accepted", hours=2, feasibility="feasible")
    await store.update(no, predictions)
    await store.update(yes, predictions)
    await store.update(no, predictions)  # redelivered late
    state = await store.read()
    assert state.infeasible == {}
    assert state.totals.updates == 2


async def test_a_running_agent_completes_an_update_cut_short(
    nc: Client, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    async with AgentNode(settings) as node:
        kv = node.learning.kv
        update_ = kv.update
        failed: list[str] = []

        async def once(key: str, *args: Any, **kwargs: Any) -> Any:
            if key.startswith("plan.") and not failed:  # after the infeasible pair's write
                failed.append(key)
                raise Crash(f"killed before writing {key}")
            return await update_(key, *args, **kwargs)

        await plan_predictions(nc, settings)
        # the plan's progress exists already, so its next write is an update
        first = update("u-0", "rec-1", "accepted")
        await nc.jetstream().publish(subjects.feedback(settings.agent_id), encode(first))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (await node.learning.read()).totals.updates < 1:
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        monkeypatch.setattr(kv, "update", once)
        u = update("u-1", "rec-1", "rejected", hours=2, feasibility="infeasible", reason="no")
        await nc.jetstream().publish(subjects.feedback(settings.agent_id), encode(u))
        deadline = loop.time() + 30
        while (state := await node.learning.read()).totals.updates < 2:
            assert loop.time() < deadline, state
            await asyncio.sleep(0.05)
        assert failed  # the first delivery died between the writes
        assert state.infeasible == {PAIR: "no"}
        assert state.plans["plan-1"].statuses == {"rec-1": "rejected"}
