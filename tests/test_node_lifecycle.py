"""Lifecycle and limits with real processes: embedded default, late server, shutdown, bounds."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.runtime.embedded import EmbeddedServer, free_port
from agent.runtime.node import AgentNode
from agent.strategies import ROUTES, TaskContext
from agent.strategies.base import Report
from protocols import TaskType
from tests.payloads import encode, task
from tests.test_node_e2e import stream_messages

pytestmark = pytest.mark.nats


def slow_routes(seconds: float) -> dict[TaskType, Any]:
    """The real routes, with api_optimization taking ``seconds`` longer (a long task)."""

    def slow(ctx: TaskContext) -> Report:
        time.sleep(seconds)
        return ROUTES[TaskType.API_OPTIMIZATION](ctx)

    return {**ROUTES, TaskType.API_OPTIMIZATION: slow}


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_run_without_nats_url_starts_an_embedded_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "PROMETHEUS_BACKEND"))}
    env |= {
        "PROMETHEUS_BACKEND_STATE_DIR": str(tmp_path / "state"),
        "PROMETHEUS_BACKEND_LOG_FORMAT": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "run",
        cwd=tmp_path,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    url = None
    lines: list[dict[str, Any]] = []
    try:
        while True:
            raw = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert raw, f"agent exited early: {lines}"
            line = json.loads(raw)
            lines.append(line)
            if "embedded nats-server" in line["msg"]:
                url = re.search(r"nats://[\d.]+:\d+", line["msg"]).group(0)  # type: ignore[union-attr]
            if "serving" in line["msg"]:
                break
        assert url is not None
        assert (tmp_path / "state" / "nats").is_dir()
        nc = await nats.connect(url)
        ping = await nc.request("$SRV.PING.prometheus-backend", b"", timeout=5)
        assert json.loads(ping.data)["name"] == "prometheus-backend"
        await nc.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # the embedded server went away with the agent
    host, port = url.removeprefix("nats://").split(":")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))


async def test_agent_waits_for_a_server_that_comes_later(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        nats_url=f"nats://127.0.0.1:{port}",
        agent_id="late-server",
        state_dir=tmp_path,
        nats_start_backoff_max_s=0.5,
    )
    node = AgentNode(settings)
    starting = asyncio.create_task(node.__aenter__())
    await asyncio.sleep(1.5)
    assert not starting.done()
    async with EmbeddedServer(tmp_path / "nats", port=port):
        await asyncio.wait_for(starting, 30)
        try:
            nc = await nats.connect(f"nats://127.0.0.1:{port}")
            reply = await nc.request(
                "swarm.rpc.late-server.api_optimization", encode(task()), timeout=30
            )
            assert json.loads(reply.data)["status"] == "completed"
            await nc.close()
        finally:
            await node.__aexit__(None, None, None)


async def test_shutdown_finishes_in_flight_work(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    body = task()
    async with AgentNode(settings, routes=slow_routes(1.5)) as node:
        await nc.jetstream().publish(
            f"swarm.tasks.{settings.agent_id}.api_optimization", encode(body)
        )
        await wait_for(lambda: node.pool.running == 1)
    # left the context while the task was running: it finished, was published and acked
    results = await stream_messages(
        nc, node.streams["RESULTS"], f"swarm.results.{settings.agent_id}.api_optimization", 1
    )
    assert [json.loads(m.data)["task_id"] for m in results] == [body["task_id"]]
    info = await nc.jetstream().consumer_info(node.streams["TASKS"], f"{settings.agent_id}-tasks")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_long_task_is_kept_alive_with_in_progress(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(ack_wait_s=1.0)
    async with AgentNode(settings, routes=slow_routes(3.5)) as node:
        await nc.jetstream().publish(
            f"swarm.tasks.{settings.agent_id}.api_optimization", encode(task())
        )
        await wait_for(lambda: node.counters.completed == 1)
        await asyncio.sleep(1.5)  # a redelivery would have arrived by now
        assert node.counters.redelivered == 0
        assert node.counters.received == 1


async def test_a_replica_holds_no_more_long_tasks_than_it_computes_now_and_next(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    """Tasks fetched wait behind one strategy at a time: a replica that held all its slots
    of long tasks would sit on work another replica could start."""
    settings = make_settings()
    async with AgentNode(settings, routes=slow_routes(0.3)) as node:
        subject = f"swarm.rpc.{settings.agent_id}.api_optimization"
        await nc.request(subject, encode(task()), timeout=30)  # how long a strategy takes
        js = nc.jetstream()
        for _ in range(8):
            await js.publish(f"swarm.tasks.{settings.agent_id}.api_optimization", encode(task()))
        consumer, held = node.running.consumer, [0]

        def watch() -> bool:
            held[0] = max(held[0], consumer.held)
            return node.counters.completed == 9

        await wait_for(watch, timeout=30)
        assert 1 <= held[0] <= 2  # the one computing and the next (the slots are 16)
        assert settings.max_in_flight == 16


async def test_rpc_is_refused_with_overloaded_when_the_queue_is_full(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_in_flight=1, rpc_queue_limit=1)
    async with AgentNode(settings, routes=slow_routes(1.0)) as node:
        subject = f"swarm.rpc.{settings.agent_id}.api_optimization"
        replies = await asyncio.gather(
            *(nc.request(subject, encode(task()), timeout=30) for _ in range(4))
        )
        results = [json.loads(r.data) for r in replies]
        codes = sorted((r["error"] or {}).get("code", r["status"]) for r in results)
        assert codes == ["completed", "completed", "overloaded", "overloaded"]
        assert node.pool.peak_running == 1
        assert node.counters.overloaded == 2


async def test_oversize_payload_is_refused(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_payload_bytes=2048)
    async with AgentNode(settings) as node:
        big = task()
        big["issuer"] = "x" * 100
        big["params"]["metrics"]["api_response_time"] = [
            [1_764_000_000 + i, 100.0] for i in range(200)
        ]
        reply = await nc.request(
            f"swarm.rpc.{settings.agent_id}.api_optimization", encode(big), timeout=30
        )
        result = json.loads(reply.data)
        assert result["status"] == "rejected"
        assert result["error"]["code"] == "payload_too_large"
        letters = await stream_messages(
            nc, node.streams["DEADLETTER"], f"swarm.deadletter.{settings.agent_id}", 1
        )
        assert json.loads(letters[0].data)["error_code"] == "payload_too_large"


async def test_dead_letter_of_a_payload_near_the_server_limit_is_cut_and_says_so(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_payload_bytes=64 * 1024)
    async with AgentNode(settings) as node:
        data = b'{"schema":"task_request/v1","task_id":"big-1","pad":"' + b"x" * 900_000 + b'"}'
        reply = await nc.request(
            f"swarm.rpc.{settings.agent_id}.api_optimization", data, timeout=30
        )
        assert json.loads(reply.data)["error"]["code"] == "payload_too_large"
        letters = await stream_messages(
            nc, node.streams["DEADLETTER"], f"swarm.deadletter.{settings.agent_id}", 1
        )
        letter = json.loads(letters[0].data)
        assert letter["payload_truncated"] is True
        assert letter["payload_size"] == len(data)
        kept = base64.b64decode(letter["payload_b64"])
        assert data.startswith(kept)
        assert 0 < len(kept) < len(data)
        assert letter["payload_sha256"] == hashlib.sha256(data).hexdigest()
