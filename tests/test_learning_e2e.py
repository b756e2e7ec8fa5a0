"""The learning loop over a real nats-server: verifications in, calibrated predictions out."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.learning.records import PredictionRecord
from agent.learning.state import fold
from agent.runtime.learning import LearningStore
from agent.runtime.node import AgentNode
from protocols import ImprovementRange
from tests.payloads import encode, iso, task
from tests.test_node_e2e import rpc, stream_messages

pytestmark = pytest.mark.nats


def slow_api() -> dict[str, Any]:
    """A single slow API: the playbook's first pick is query optimisation."""
    return {"metrics": {"api_response_time": 200.0}}


def verification(
    rec: dict[str, Any], plan_id: str, baseline: float, measured: float
) -> dict[str, Any]:
    return {
        "schema": "verification_result/v1",
        "verification_id": f"ver-{uuid.uuid4().hex[:10]}",
        "plan_id": plan_id,
        "recommendation_id": rec["recommendation_id"],
        "metric": rec["target"],
        "baseline_value": baseline,
        "measured_value": measured,
        "verified_at": iso(datetime.now(UTC)),
    }


async def until(check: Callable[[], Any], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def sent_to_peer(nc: Client, node: AgentNode, stream: str, subject: str) -> None:
    """Wait until the plan (or baseline) of the answer just received is out, as the peer
    that reports back on it got it: the rpc reply comes before the relay sends them, the
    plan's predictions first (a report on a plan whose predictions are not stored yet
    cannot say which approach it was about)."""
    assert await stream_messages(nc, node.streams[stream], subject, 1)


async def test_verifications_calibrate_later_predictions_and_survive_a_restart(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    agent_id = settings.agent_id
    js = nc.jetstream()
    async with AgentNode(settings) as node:
        first = await rpc(nc, node, task(params=slow_api()), "api_optimization")
        rec = first["report"]["recommendations"][0]
        assert rec["calibrated"] is False
        prior = rec["expected_improvement_pct"]["expected"]
        plan_id = f"plan-{__import__('hashlib').sha256(first['task_id'].encode()).hexdigest()[:16]}"
        await sent_to_peer(nc, node, "BASELINES", f"swarm.baselines.{settings.athena_id}")
        # Athena measured 90 % of what was expected, three times; one of them twice
        sent = []
        for _ in range(3):
            v = verification(rec, plan_id, 200.0, 200.0 * (1 - 0.9 * prior / 100.0))
            sent.append(v)
            await js.publish(f"swarm.verifications.{agent_id}", encode(v))
        await js.publish(
            f"swarm.verifications.{agent_id}",
            encode(sent[0]),
            headers={"Nats-Msg-Id": "a-retry-with-another-id"},
        )
        stranger = verification({**rec, "recommendation_id": "rec-nobody"}, plan_id, 1, 1)
        await js.publish(f"swarm.verifications.{agent_id}", encode(stranger))
        learning = node.learning
        assert learning is not None

        async def settled() -> bool:
            totals = (await learning.snapshot()).totals
            return totals.verifications + totals.unknown_verifications >= 4

        await until(settled)
        await asyncio.sleep(0.3)  # a double count, if there were one, would land by now
        state = await learning.snapshot()
        summary = state.summaries[("query_optimization", "api_response_time")]
        assert summary.count == 3  # the duplicate counted once
        assert state.totals.unknown_verifications == 1  # kept and reported, not dropped
        assert state.totals.unknown_ids == ["rec-nobody"]

        second = await rpc(nc, node, task(params=slow_api()), "api_optimization")
        again = next(
            r for r in second["report"]["recommendations"] if r["approach"] == rec["approach"]
        )
        assert again["calibrated"] is True
        assert again["verifications"] == 3
        assert again["expected_improvement_pct"]["expected"] < prior

        # the whole store rebuilt from the event log equals the live one, once the plans
        # counted off the answer path (plan_counter) caught up with the log
        enc = msgspec.json.encode

        async def counted() -> bool:
            folded = fold(*await learning.events())  # the log's state, nothing written
            return enc((await learning.snapshot()).totals) == enc(folded.totals)

        await until(counted)
        live = await learning.snapshot()
        rebuilt = await learning.rebuild()
        assert enc(rebuilt.summaries[("query_optimization", "api_response_time")]) == enc(
            live.summaries[("query_optimization", "api_response_time")]
        )
        assert enc(rebuilt.totals) == enc(live.totals)
        assert enc(rebuilt.plans) == enc(live.plans)

    async with AgentNode(settings) as restarted:  # what it learned is kept
        third = await rpc(nc, restarted, task(params=slow_api()), "api_optimization")
        kept = next(
            r for r in third["report"]["recommendations"] if r["approach"] == rec["approach"]
        )
        assert kept["calibrated"] is True
        assert kept["expected_improvement_pct"] == again["expected_improvement_pct"]

    # and the operator can read the figures
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "learning",
        "show",
        "--json",
        env={
            **os.environ,
            "NATS_URL": settings.nats_url or "",
            "PROMETHEUS_BACKEND_AGENT_ID": agent_id,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    shown = json.loads(out)
    assert shown["verified_outcomes"] == 3
    assert shown["unknown_verifications"] == 1
    assert shown["recommendation_accuracy"]["value"] == 1.0


async def test_an_infeasible_approach_sinks_in_the_next_plan(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    params = slow_api()
    async with AgentNode(settings) as node:
        first = await rpc(
            nc,
            node,
            task("strategic_backend_planning", params=params),
            "strategic_backend_planning",
        )
        item = first["report"]["prioritized_plan"][0]
        await sent_to_peer(nc, node, "PLANS", f"swarm.plans.{settings.hephaestus_id}")
        update = {
            "schema": "implementation_update/v1",
            "update_id": f"upd-{uuid.uuid4().hex[:8]}",
            "plan_id": first["report"]["plan_id"],
            "recommendation_id": item["recommendation_id"],
            "status": "rejected",
            "reported_at": iso(datetime.now(UTC)),
            "feasibility": "infeasible",
            "reason": "no maintenance window for index builds this quarter",
        }
        await nc.jetstream().publish(f"swarm.feedback.{settings.agent_id}", encode(update))
        learning = node.learning
        assert learning is not None

        async def noted() -> bool:
            return bool((await learning.snapshot()).infeasible)

        await until(noted)
        second = await rpc(
            nc,
            node,
            task("strategic_backend_planning", params=params),
            "strategic_backend_planning",
        )
        approaches = [e["approach"] for e in second["report"]["prioritized_plan"]]
        assert item["approach"] not in approaches
        reasons = [s.get("reason", "") for s in second["report"]["skipped"]]
        assert any("no maintenance window" in r for r in reasons)
        report = second["report"]["learning_report"]
        assert report["rejected_share"]["numerator"] == 1


@pytest.mark.slow
async def test_two_agent_processes_lose_no_update(
    nc: Client, make_settings: Callable[..., Settings], tmp_path: Any
) -> None:
    settings = make_settings()
    agent_id = settings.agent_id
    async with AgentNode(settings):  # streams, buckets and one prediction to score
        predictions = await nc.jetstream().key_value(f"{settings.streams_token}_PREDICTIONS")
        record = PredictionRecord(
            recommendation_id="rec-shared",
            task_id="t-shared",
            plan_id="plan-shared",
            baseline_id="baseline-shared",
            metric="api_response_time",
            approach="Connection pooling",
            approach_key="connection_pooling",
            direction="lower_is_better",
            baseline_value=200.0,
            target_value=100.0,
            expected_improvement_pct=ImprovementRange(low=30, expected=40, high=50),
            expected_value=120.0,
            created_at=datetime.now(UTC),
        )
        await predictions.put("rec-shared", msgspec.json.encode(record))
    learning = await LearningStore.open(nc.jetstream(), settings)  # the test's own view
    env = {
        **os.environ,
        "NATS_URL": settings.nats_url or "",
        "PROMETHEUS_BACKEND_AGENT_ID": agent_id,
        "PROMETHEUS_BACKEND_HEPHAESTUS_ID": settings.hephaestus_id,
        "PROMETHEUS_BACKEND_ATHENA_ID": settings.athena_id,
        "PROMETHEUS_BACKEND_LOG_LEVEL": "WARNING",
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent",
            "run",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        js = nc.jetstream()
        n = 200
        for i in range(n):
            v = verification(
                {"recommendation_id": "rec-shared", "target": "api_response_time"},
                "plan-shared",
                200.0,
                200.0 - (i % 50),
            )
            await js.publish(f"swarm.verifications.{agent_id}", encode(v))

        async def all_counted() -> bool:
            summary = (await learning.snapshot()).summaries.get(
                ("connection_pooling", "api_response_time")
            )
            return summary is not None and summary.count >= n

        await until(all_counted, timeout=90)
        await asyncio.sleep(0.5)
        state = await learning.snapshot()
        assert state.summaries[("connection_pooling", "api_response_time")].count == n
        assert state.totals.verifications == n
        # both processes took part (the durable consumer is shared between them)
        info = await js.consumer_info(
            f"{settings.streams_token}_VERIFICATIONS", f"{agent_id}-verifications"
        )
        assert info.num_ack_pending == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 30)
