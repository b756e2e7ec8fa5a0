"""The learning mirror over a real nats-server: the same state as a direct read, at a cost
that does not grow with the number of keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.learning.state import (
    LearningState,
    PlanProgress,
    Totals,
    apply_plan_issued,
    plan_key,
    summary_key,
)
from agent.runtime import learning
from agent.runtime.embedded import EmbeddedServer
from agent.runtime.kv import open_bucket
from agent.runtime.learning import LearningStore
from agent.runtime.node import AgentNode
from agent.runtime.predictions import Predictions
from tests.payloads import task
from tests.test_learning_core import prediction, update, verification
from tests.test_node_e2e import rpc

pytestmark = pytest.mark.nats


@asynccontextmanager
async def mirrored(nc: Client, settings: Settings) -> AsyncIterator[LearningStore]:
    """A store of its own with its mirror running: one replica's view."""
    store = await LearningStore.open(nc.jetstream(), settings)
    store.start()
    try:
        yield store
    finally:
        await store.stop()


async def predictions_with(nc: Client, settings: Settings, *records: Any) -> Predictions:
    kv = await open_bucket(nc.jetstream(), settings, "PREDICTIONS", description="predictions")
    for record in records:
        await kv.put(record.recommendation_id, msgspec.json.encode(record))
    return Predictions(kv)


async def from_mirror(store: LearningStore) -> LearningState:
    """``snapshot()``, asserting the mirror answered (it never fell back to a direct read)."""
    state = await store.snapshot()
    assert store.mirror is not None
    assert store.mirror.restarts == 0
    assert not store._lagging
    return state


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def issue(store: LearningStore, plan_id: str, items: int) -> None:
    """A plan logged (the answer's path) and counted (``plan_counter``'s fold)."""
    await store.plan_issued(plan_id, items)
    await store.count_plans(lambda t: apply_plan_issued(t, plan_id, items))


def plan_value(plan_id: str) -> bytes:
    return msgspec.json.encode(PlanProgress(plan_id=plan_id, statuses={"rec": "accepted"}))


async def test_the_mirror_equals_the_direct_read_through_writes_deletes_and_a_rebuild(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    predictions = await predictions_with(
        nc,
        settings,
        prediction("rec-1", plan_id="plan-1"),
        prediction("rec-2", approach_key="connection_pooling", plan_id="plan-1"),
        prediction("rec-3", approach_key="multi_level_caching", plan_id="plan-2"),
    )
    async with mirrored(nc, settings) as store:
        steps: list[Callable[[], Awaitable[object]]] = [
            lambda: issue(store, "plan-1", 2),
            lambda: issue(store, "plan-2", 1),
            lambda: store.verification(verification("v-1", "rec-1", 100, 60), predictions),
            lambda: store.verification(verification("v-2", "rec-2", 100, 80), predictions),
            lambda: store.verification(verification("v-1", "rec-1", 100, 60), predictions),
            lambda: store.verification(
                verification("v-3", "rec-3", 100, 70, plan_id="plan-2"), predictions
            ),
            lambda: store.verification(verification("v-4", "rec-nobody", 1, 1), predictions),
            lambda: store.update(update("u-1", "rec-1", "implemented"), predictions),
            lambda: store.update(
                update(
                    "u-2",
                    "rec-2",
                    "rejected",
                    feasibility="infeasible",
                    reason="no window",
                ),
                predictions,
            ),
        ]
        for step in steps:
            await step()
            assert await from_mirror(store) == await store.read()
        state = await from_mirror(store)
        assert set(state.plans) == {"plan-1", "plan-2"}
        assert len(state.summaries) == 3
        assert state.totals.plans_issued == 2
        assert state.totals.unknown_verifications == 1
        assert state.infeasible

        # a deleted key and a purged one read as absent, on both paths
        await store.kv.delete(plan_key("plan-2"))
        await store.kv.purge(summary_key("multi_level_caching", "api_response_time"))
        await store.kv.put(plan_key("stray"), plan_value("stray"))  # not in the event log
        state = await from_mirror(store)
        assert state == await store.read()
        assert "plan-2" not in state.plans
        assert "stray" in state.plans
        assert ("multi_level_caching", "api_response_time") not in state.summaries

        # the rebuild writes the two back and deletes the stray: the mirror follows
        rebuilt = await store.rebuild()
        state = await from_mirror(store)
        assert state == rebuilt == await store.read()
        assert set(state.plans) == {"plan-1", "plan-2"}
        assert len(state.summaries) == 3

        # a mirror started now (a restarted agent) begins from the same values
        async with mirrored(nc, settings) as fresh:
            assert await from_mirror(fresh) == rebuilt


async def test_the_copy_handed_out_is_the_callers_own(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    predictions = await predictions_with(nc, settings, prediction("rec-1"))
    async with mirrored(nc, settings) as store:
        await store.verification(verification("v-1", "rec-1", 100, 60), predictions)
        before = await from_mirror(store)
        mine = await from_mirror(store)
        mine.plans.clear()
        mine.summaries.clear()
        mine.infeasible["x|y"] = "scribbled"
        mine.totals = Totals()
        again = await from_mirror(store)
        assert again == before
        assert again.plans
        assert again.summaries
        assert not again.infeasible


async def test_a_write_by_another_replica_is_seen_at_once(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    predictions = await predictions_with(nc, settings, prediction("rec-1"))
    writer = await LearningStore.open(nc.jetstream(), settings)
    async with mirrored(nc, settings) as reader:
        await from_mirror(reader)  # the initial values are in
        for i in range(20):
            await issue(writer, f"plan-{i}", 1)
            assert (await from_mirror(reader)).totals.plans_issued == i + 1
            await writer.update(update(f"u-{i}", "rec-1", "in_progress", hours=i), predictions)
            assert (await from_mirror(reader)).totals.updates == i + 1
        # and the other way round: both replicas mirror, each sees the other's last write
        async with mirrored(nc, settings) as other:
            await issue(other, "plan-last", 1)
            assert (await from_mirror(reader)).totals.plans_issued == 21
            await issue(reader, "plan-last-but-one", 1)
            assert (await from_mirror(other)).totals.plans_issued == 22


async def test_a_snapshot_costs_the_same_with_5_keys_as_with_500(
    nc: Client, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    requests: list[str] = []
    request = nc.request

    async def counted(subject: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(subject)
        return await request(subject, *args, **kwargs)

    async def cost(read: Callable[[], Awaitable[LearningState]]) -> int:
        requests.clear()
        await read()
        return len(requests)

    async with mirrored(nc, settings) as store:
        for i in range(5):
            await store.kv.put(plan_key(f"plan-{i}"), plan_value(f"plan-{i}"))
        assert len((await from_mirror(store)).plans) == 5
        monkeypatch.setattr(nc, "request", counted)
        few, few_direct = await cost(store.snapshot), await cost(store.read)
        monkeypatch.undo()
        await asyncio.gather(
            *(store.kv.put(plan_key(f"plan-{i}"), plan_value(f"plan-{i}")) for i in range(5, 500))
        )
        assert len((await from_mirror(store)).plans) == 500
        monkeypatch.setattr(nc, "request", counted)
        many, many_direct = await cost(store.snapshot), await cost(store.read)
        monkeypatch.undo()
    assert few == many == 1  # the stream's last sequence, nothing per key
    assert (few_direct, many_direct) == (6, 501)  # what it replaces: a listing and a get per key


async def test_without_a_running_mirror_the_snapshot_reads_directly(
    nc: Client,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings()
    async with mirrored(nc, settings) as store:
        await issue(store, "plan-1", 1)
        assert (await from_mirror(store)).totals.plans_issued == 1
    # stopped: no watcher, still the right state (written after the stop, too)
    assert store.mirror is not None
    assert not store.mirror.running
    await issue(store, "plan-2", 1)
    await store.kv.put(plan_key("plan-2"), plan_value("plan-2"))
    state = await store.snapshot()
    assert state.totals.plans_issued == 2
    assert set(state.plans) == {"plan-2"}
    assert state == await store.read()

    # a watcher that cannot be set up: the snapshot waits a moment, reads directly, says so once
    monkeypatch.setattr(learning, "MIRROR_WAIT_S", 0.3)
    monkeypatch.setattr(learning, "MIRROR_RETRY_S", 0.1)

    async def broken(**_: Any) -> Any:
        raise nats.errors.TimeoutError

    monkeypatch.setattr(store.kv, "watchall", broken)
    caplog.set_level(logging.INFO, logger=learning.__name__)
    store.start()
    try:
        for i in range(3, 6):
            await issue(store, f"plan-{i}", 1)
            assert (await store.snapshot()).totals.plans_issued == i
        behind = [r for r in caplog.records if "reading the bucket directly" in r.getMessage()]
        assert len(behind) == 1
        assert behind[0].levelno == logging.WARNING
        failed = [r for r in caplog.records if "failed (" in r.getMessage()]
        assert failed
        assert failed[0].levelno == logging.WARNING
        assert all(r.levelno < logging.WARNING for r in failed[1:])  # said once

        monkeypatch.undo()  # the watch works again: the mirror catches up and answers
        mirror = store.mirror

        async def back() -> bool:
            await store.snapshot()
            return not store._lagging

        await until(back, timeout=10)
        assert mirror.ready
        assert (await store.snapshot()) == await store.read()
        assert any("caught up" in r.getMessage() for r in caplog.records)
    finally:
        await store.stop()


async def test_a_bucket_made_anew_under_the_mirror_is_read_anew(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    js = nc.jetstream()
    async with mirrored(nc, settings) as store:
        for i in range(5):
            await store.kv.put(plan_key(f"old-{i}"), plan_value(f"old-{i}"))
        assert len((await from_mirror(store)).plans) == 5
        await js.delete_key_value(f"{settings.streams_token}_LEARNING")
        await open_bucket(js, settings, "LEARNING", description="made anew")
        await store.kv.put(plan_key("new"), plan_value("new"))  # sequence 1: "caught up"
        state = await store.snapshot()
        assert set(state.plans) == {"new"}
        assert state == await store.read()

        async def back() -> bool:
            return set((await store.snapshot()).plans) == {"new"} and not store._lagging

        await until(back, timeout=10)


async def test_the_agent_runs_the_mirror_and_removes_its_consumer_on_exit(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    async with AgentNode(settings) as node:
        assert node.learning is not None
        assert node.learning.mirror is not None
        reply = await rpc(nc, node, task())
        assert reply["status"] == "completed"
        assert node.learning.mirror.running
        assert node.learning.mirror.restarts == 0
        kv_stream = node.learning.kv_stream
        mirror = node.learning.mirror
    assert not mirror.running
    info = await nc.jetstream().stream_info(kv_stream)
    assert info.state.consumer_count == 0


@pytest.mark.slow
async def test_the_mirror_follows_the_bucket_across_a_server_restart(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    server = EmbeddedServer(tmp_path / "js")
    await server.start()
    try:
        settings = make_settings(nats_url=server.url)
        client = await nats.connect(server.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
        try:
            async with mirrored(client, settings) as store:
                await store.kv.put(plan_key("before"), plan_value("before"))
                assert "before" in (await from_mirror(store)).plans
                mirror = store.mirror
                assert mirror is not None

                await server.stop()  # same port, same store: the bucket survives
                await asyncio.sleep(1.0)
                await server.start()

                for _ in range(150):  # the client's reconnect may take a moment
                    try:
                        await store.kv.put(plan_key("after"), plan_value("after"))
                        break
                    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                        await asyncio.sleep(0.2)
                last = (await client.jetstream().stream_info(store.kv_stream)).state.last_seq

                # nats-py's ordered consumer re-creates itself (missed heartbeats): the same
                # watcher, no restart of ours, gets the write made after the restart
                async def followed() -> bool:
                    return mirror.caught_up(last)

                await until(followed, timeout=45)
                assert mirror.restarts == 0
                state = await from_mirror(store)
                assert {"before", "after"} <= set(state.plans)
                assert state == await store.read()
        finally:
            await client.drain()
    finally:
        await server.stop()
