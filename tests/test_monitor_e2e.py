"""Continuous monitoring over a real nats-server; time is the test's clock (the replica test runs
the real schedule at a 1 s interval, with bounded waits)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.runtime.kv import open_bucket
from agent.runtime.monitor import Lease, Monitor
from agent.runtime.node import AgentNode
from agent.runtime.samples import SampleSource
from agent.sources.prometheus import PrometheusSource
from tests import synthetic
from tests.test_node_e2e import stream_messages

pytestmark = pytest.mark.nats

DAY0 = 1_764_288_000.0  # 2025-11-28T00:00:00Z
INTERVAL = 420.0


async def monitor_for(
    node: AgentNode, holder: str = "test", samples: SampleSource | None = None
) -> Monitor:
    services = node.services
    kv = await open_bucket(
        services.js, node.settings, "MONITOR", description="monitor state and lease"
    )
    return Monitor(
        node.settings,
        samples or services.samples,
        services.directives,
        services.outbox,
        kv,
        holder=holder,
    )


def feed(node: AgentNode, day: dict[str, Any], until: float, since: float = -1.0) -> None:
    """Write the day's samples in (since, until] into the agent's live store."""
    store = node.live_store
    assert store is not None
    for metric, (ts, values) in day.items():
        keep = (ts > since) & (ts <= until)
        if keep.any():
            store.add_many(metric, ts[keep], values[keep])


async def feed_kpi(
    nc: Client, node: AgentNode, day: dict[str, Any], until: float, since: float
) -> None:
    """Publish the day's samples in (since, until] as kpi_batch/v1 and wait until ingested."""
    samples = [
        {"metric": metric, "value": float(v), "ts": float(t)}
        for metric, (ts, values) in day.items()
        for t, v in zip(ts, values, strict=True)
        if since < t <= until
    ]
    before = node.kpi_stats.samples_accepted
    for k in range(0, len(samples), 100):
        batch = {"schema": "kpi_batch/v1", "source": "sim", "samples": samples[k : k + 100]}
        await nc.publish(f"swarm.kpi.backend.{node.settings.agent_id}", json.dumps(batch).encode())
    await nc.flush()
    for _ in range(400):
        if node.kpi_stats.samples_accepted >= before + len(samples):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("KPI samples not ingested in time")


async def alerts_of(
    nc: Client, node: AgentNode, expect: int, wait: float = 5.0
) -> list[dict[str, Any]]:
    msgs = await stream_messages(
        nc, node.streams["ALERTS"], "swarm.alerts.backend.>", expect, wait=wait
    )
    return [json.loads(m.data) for m in msgs]


@pytest.mark.slow
async def test_a_simulated_day_raises_each_incident_once_grouped(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kpi_stream=False)
    day = synthetic.monitored_day(DAY0)
    async with AgentNode(settings) as node:
        monitor = await monitor_for(node)
        fed = -1.0
        raised: list[tuple[float, Any]] = []
        now = DAY0 + 3600.0  # an hour of history before the first assessment
        while now <= DAY0 + 86_400.0:
            await feed_kpi(nc, node, day, now, fed)  # over NATS, as the KPI tracker sends them
            fed = now
            result = await monitor.run_once(now)
            raised += [(now, d) for d in result.alerts]
            now += INTERVAL
        opened = [(t, d) for t, d in raised if d.notification == "raise"]
        hours = sorted({round((t - DAY0) / 3600.0, 1) for t, _ in opened})
        # nothing in the quiet periods: every raise falls inside an incident (+ one run late)
        for t, d in opened:
            h = (t - DAY0) / 3600.0
            assert any(a <= h <= b + INTERVAL / 3600 for _, a, b in synthetic.INCIDENTS), (h, d)
        # the DB incident: one problem, the database named as its cause
        db = [d for t, d in opened if 6.0 <= (t - DAY0) / 3600.0 <= 8.2]
        problems = {d.problem_id for d in db if d.problem_id}
        assert problems, db
        cause_alert = next(d for d in db if d.metric == "database_query_time")
        assert {"api_response_time", "feed_generation_time"} <= set(cause_alert.symptoms) or any(
            "database_query_time" in d.caused_by for d in db if d.metric != "database_query_time"
        )
        # each incident's metric raised once per episode: no floods
        keys = [d.episode_key for _, d in opened]
        timeline = [
            (round((t - DAY0) / 3600, 2), d.episode_key, d.notification, d.problem_id)
            for t, d in raised
        ]
        assert len(keys) == len(set(keys)), "; ".join(map(str, timeline))
        # every alert of the DB incident belongs to one problem, caused by the database
        db_problems = {d.problem_id or d.alert_id for d in db if d.notification == "raise"}
        assert len(db_problems) == 1, "; ".join(map(str, timeline))
        # so does every alert of the error spike, caused by the failing requests
        spike = [d for t, d in opened if 15.0 <= (t - DAY0) / 3600.0 <= 16.0]
        assert {d.metric for d in spike} >= {"error_rate", "api_availability"}
        assert len({d.problem_id or d.alert_id for d in spike}) == 1, "; ".join(map(str, timeline))
        # and both incidents resolved once they were over
        resolved = {d.metric for _, d in raised if d.notification == "resolve"}
        assert {"database_query_time", "error_rate"} <= resolved
        assert hours  # for the failure message above
        published = await alerts_of(nc, node, len(raised))
        assert len(published) == len(raised)  # once each on the stream (Nats-Msg-Id)


async def test_state_survives_a_restart_and_a_second_replica_waits(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kpi_stream=False)
    day = synthetic.monitored_day(DAY0)
    at = DAY0 + 7.0 * 3600  # inside the DB incident
    async with AgentNode(settings) as node:
        feed(node, day, at)
        first = await monitor_for(node, "replica-a")
        opened = (await first.run_once(at)).alerts
        assert any(d.metric == "database_query_time" for d in opened)
    async with AgentNode(settings) as restarted:  # a restarted agent: no re-raise
        feed(restarted, day, at + INTERVAL)
        again = await monitor_for(restarted, "replica-b")
        later = (await again.run_once(at + INTERVAL)).alerts
        assert not [
            d for d in later if d.notification == "raise" and d.metric == "database_query_time"
        ]
        # two replicas: one lease
        kv = again.kv
        a, b = Lease(kv, "replica-a", ttl_s=60), Lease(kv, "replica-b", ttl_s=60)
        assert await a.acquire(at)
        assert not await b.acquire(at + 10)
        assert await a.acquire(at + 30)  # renewing
        assert not await b.acquire(at + 80)  # a renewed at +30: good until +90
        assert await b.acquire(at + 91)  # a died: b takes over after the lease time
        assert not await a.acquire(at + 100)
        await b.release()  # a graceful stop gives it up at once (the key is deleted)
        assert await a.acquire(at + 101)


async def test_the_schedule_does_not_drift_and_counts_skipped_runs(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kpi_stream=False, monitor_interval_s=1.0)
    async with AgentNode(settings) as node:
        clock = {"now": DAY0}
        monitor = await monitor_for(node)
        monitor.wall_clock = lambda: clock["now"]
        runs: list[float] = []

        async def slow_run(now: float) -> Any:
            runs.append(now)
            clock["now"] += 2.5 if len(runs) == 1 else 0.2  # the first run overruns 2.5 slots
            if len(runs) == 3:
                monitor.stop()
            return None

        monitor.run_once = slow_run  # type: ignore[method-assign]
        await monitor.run()
        assert monitor.skipped == 2  # slots 1 and 2 were missed
        assert runs[0] == DAY0
        assert runs[1] == pytest.approx(DAY0 + 2.5)  # the fake clock stood still while it waited


@pytest.mark.slow
async def test_two_replicas_one_monitor_and_a_takeover_without_re_raising(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    agent_id = f"pb-ha-{DAY0:.0f}"[:20]
    settings = make_settings(
        agent_id=agent_id,
        kpi_stream=False,
        monitor_enabled=True,
        monitor_interval_s=1.0,
        monitor_lease_s=3.0,
    )
    wall = time.time()
    # the database is far over its target for the last half hour
    samples = [
        {"metric": "database_query_time", "value": 120.0 + (i % 3), "ts": wall - 60.0 * (30 - i)}
        for i in range(31)
    ]
    batch = json.dumps({"schema": "kpi_batch/v1", "source": "t", "samples": samples}).encode()
    async with AgentNode(settings) as first:
        async with AgentNode(settings) as second:
            await nc.publish(f"swarm.kpi.backend.{agent_id}", batch)  # both replicas ingest it
            await nc.flush()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while loop.time() < deadline:
                runs = [n.monitor.runs if n.monitor else 0 for n in (first, second)]
                if sum(runs) >= 3:
                    break
                await asyncio.sleep(0.1)
            runs = [n.monitor.runs if n.monitor else 0 for n in (first, second)]
            assert min(runs) == 0, runs  # exactly one of them monitors
            assert max(runs) >= 3, runs
            leader, standby = (first, second) if runs[0] else (second, first)
            # the leader dies: its monitor stops without releasing the lease, as a killed
            # process would; the standby takes over once the lease runs out
            assert standby.monitor is not None
            leader.running.tasks["monitor"].cancel()
            deadline = loop.time() + 3.0 + 2.0 + 5.0  # lease + an interval + slack
            while standby.monitor.runs == 0 and loop.time() < deadline:
                await asyncio.sleep(0.1)
            assert standby.monitor.runs > 0
            await asyncio.sleep(1.5)  # a run or two by the new holder
        raised = [  # the alerts stream is shared by the session: this test's only
            a
            for a in await alerts_of(nc, first, 1)
            if a["metric"] == "database_query_time"
            and a["kind"] == "target_breach"
            and datetime.fromisoformat(a["raised_at"]).timestamp() >= wall - 5
        ]
        assert len(raised) == 1, raised  # raised once, not again by the replica


async def test_a_directive_target_holds_for_the_monitor_too(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    """Helios's targets apply to all later work: with the database's target raised to
    150 ms, the 95 ms incident is no breach for the monitor either."""
    day = synthetic.monitored_day(DAY0)
    at = DAY0 + 7.0 * 3600  # inside the DB incident (95 ms against the catalog's 50)
    directive = {
        "schema": "strategic_directive/v1",
        "directive_id": "db-budget",
        "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "targets": {"database_query_time": 150.0},
    }
    async with AgentNode(make_settings(kpi_stream=False)) as node:
        feed(node, day, at)
        await nc.jetstream().publish(
            f"swarm.directives.{node.settings.agent_id}", json.dumps(directive).encode()
        )
        store = node.directive_store
        assert store is not None
        for _ in range(200):
            if await store.latest() is not None:
                break
            await asyncio.sleep(0.05)
        result = await (await monitor_for(node)).run_once(at)
        assert result.report is not None
        judged = result.report.performance["database_query_time"]
        assert judged.target == 150.0
        assert judged.meeting_target
        assert not [d for d in result.alerts if d.metric == "database_query_time"]


async def test_from_prometheus_the_judged_hour_has_enough_samples_for_every_rule(
    make_settings: Callable[..., Settings],
) -> None:
    """The monitor's range query covers 7 days at Prometheus's full resolution: at a task's
    240 steps the judged hour would hold 3 samples, too few for trends (8), change points
    and outliers (20). The answer is built from the requested step (an HTTP transport
    playing Prometheus over the synthetic day)."""
    day = synthetic.monitored_day(DAY0)
    at = DAY0 + 7.0 * 3600
    steps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        start, end, step = float(form["start"]), float(form["end"]), float(form["step"])
        steps.append(step)
        ts, values = day["database_query_time"]
        grid = np.arange(max(start, ts[0]), min(end, ts[-1]) + 1e-9, step)
        points = [[t, str(v)] for t, v in zip(grid, np.interp(grid, ts, values), strict=True)]
        body = {
            "status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": points}]},
        }
        return httpx.Response(200, json=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    source = PrometheusSource(
        "http://prom:9090",
        queries={"database_query_time": "q"},
        timeout_s=5,
        retries=0,
        client=client,
    )
    async with AgentNode(make_settings(kpi_stream=False)) as node:
        samples = SampleSource(node.settings, prometheus=source)
        result = await (await monitor_for(node, samples=samples)).run_once(at)
    await client.aclose()
    assert steps == [55.0]  # 7 days in 11 000 steps, not 42-minute steps
    assert result.report is not None
    assert result.report.performance["database_query_time"].samples >= 60
