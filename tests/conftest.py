"""Shared fixtures: one real nats-server per test session, an agent per test on its own subjects.

Set ``PB_TEST_NATS_URL`` to run the suite against an existing JetStream server instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent.config import Settings
from agent.runtime.embedded import EmbeddedServer
from agent.runtime.node import AgentNode

_SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_SPANS))
trace.set_tracer_provider(_provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _SPANS.clear()
    yield _SPANS
    _SPANS.clear()


@pytest.fixture(scope="session")
async def nats_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    existing = os.environ.get("PB_TEST_NATS_URL")
    if existing:
        yield existing
        return
    async with EmbeddedServer(tmp_path_factory.mktemp("nats-server")) as server:
        yield server.url


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A bare nats-py connection: the peer's view, none of the project's client code."""
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
def make_settings(nats_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for an agent with its own id, so its subjects and streams are its own."""

    def make(**overrides: Any) -> Settings:
        agent_id = overrides.pop("agent_id", f"pb-{uuid.uuid4().hex[:10]}")
        values: dict[str, Any] = {
            "nats_url": nats_url,
            "agent_id": agent_id,
            "hephaestus_id": f"{agent_id}-heph",  # its own plan and baseline subjects
            "athena_id": f"{agent_id}-athena",
            "state_dir": tmp_path / "state",
            "nats_drain_timeout_s": 5.0,
            "monitor_enabled": False,  # the monitor tests turn it on, with their own clock
            # the KPI stream captures swarm.kpi.backend.> for every agent on the server: only
            # the tests about it replay it, so one test's KPI input is not the next one's
            "kpi_stream": False,
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
async def agent(make_settings: Callable[..., Settings]) -> AsyncIterator[AgentNode]:
    async with AgentNode(make_settings()) as node:
        yield node
