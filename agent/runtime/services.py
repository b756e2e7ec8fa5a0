"""Everything a running agent works with, made once on start and never changed after.

``open_services`` builds the collaborators in dependency order on the caller's
``AsyncExitStack`` (each one that holds a resource is closed by it, in reverse), and
returns them frozen: nothing is patched in later, nothing is optional but what the
configuration turns off (the KPI source).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext

from agent.config import Settings
from agent.runtime.counters import Counters, WriteStats
from agent.runtime.dead_letters import DeadLetters
from agent.runtime.directives import DirectiveStore
from agent.runtime.dispatcher import Dispatcher
from agent.runtime.handler import Clock, TaskHandler
from agent.runtime.kv import bucket_name, open_bucket
from agent.runtime.learning import LearningStore
from agent.runtime.outbox import Outbox
from agent.runtime.predictions import Predictions
from agent.runtime.publisher import Publisher
from agent.runtime.relay import AnswerRelay, resend_within
from agent.runtime.samples import SampleSource
from agent.runtime.strategy_processes import StrategyProcesses
from agent.runtime.streams import ensure_streams
from agent.runtime.task_records import TaskRecords
from agent.runtime.writer import BucketWrites, JetStreamWriter
from agent.sources.kpi import KpiSource, KpiStats
from agent.store import MetricStore
from agent.strategies import Strategy
from protocols import TaskType

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    nc: Client
    js: JetStreamContext
    streams: Mapping[str, str]
    """Stream role → the name of the stream actually used."""
    counters: Counters
    publisher: Publisher
    records: TaskRecords
    predictions: Predictions
    directives: DirectiveStore
    learning: LearningStore
    samples: SampleSource
    dead_letters: DeadLetters
    outbox: Outbox
    relay: AnswerRelay
    """Sends each claimed answer's outputs and result (its reader runs in the node)."""
    writes: WriteStats
    dispatcher: Dispatcher
    kpi: KpiSource | None
    """None when KPI ingestion is off (``kpi_enabled``)."""


async def open_services(
    stack: AsyncExitStack,
    settings: Settings,
    nc: Client,
    *,
    routes: Mapping[TaskType, Strategy],
    clock: Clock,
    counters: Counters,
    kpi_stats: KpiStats,
) -> Services:
    """Streams, buckets, sources and the dispatcher; the KPI source and the learning
    mirror are started (every task reads them) and stopped by ``stack``."""
    js = nc.jetstream()
    writer = JetStreamWriter(nc)
    await writer.start()
    stack.push_async_callback(writer.close)  # last: everything else writes through it
    streams = await ensure_streams(js, settings)
    records = await TaskRecords.open(js, settings, writer)
    predictions = Predictions(
        await open_bucket(js, settings, "PREDICTIONS", description="predictions by id"),
        BucketWrites(writer, bucket_name(settings, "PREDICTIONS")),
    )
    directives = DirectiveStore(
        await open_bucket(js, settings, "STATE", description="the directive in force")
    )
    publisher = Publisher(nc, writer)
    dead_letters = DeadLetters(publisher, settings.agent_id, counters, clock)
    live = None
    if settings.kpi_enabled:
        live = MetricStore(
            max_samples_per_series=settings.store_max_samples_per_series,
            max_series=settings.store_max_series,
            max_age_s=settings.store_max_age_s,
        )
    samples = await SampleSource.open(settings, stack, live=live)
    kpi = None
    if live is not None:
        kpi = KpiSource(nc, js, settings, live, kpi_stats, dead_letters.core)
        await kpi.start()
        stack.push_async_callback(kpi.stop, settings.nats_drain_timeout_s)
    learning = await LearningStore.open(
        js, settings, connected=lambda: nc.is_connected, writer=writer
    )
    learning.start()  # the mirror every task's snapshot reads
    stack.push_async_callback(learning.stop)
    outbox = Outbox(publisher, predictions, learning)
    processes = StrategyProcesses.for_routes(settings.strategy_processes, routes)
    if processes is not None:
        processes.start()
        stack.push_async_callback(processes.close)
    handler = TaskHandler(settings, routes, samples, directives, learning, processes)
    writes = WriteStats()
    relay = AnswerRelay(
        settings.agent_id,
        outbox,
        publisher,
        writes,
        resend_within_s=resend_within(await _duplicate_window(js, settings, streams)),
    )
    dispatcher = Dispatcher(
        settings.agent_id,
        handler,
        records,
        relay,
        publisher,
        dead_letters,
        counters,
        writes,
        clock=clock,
    )
    return Services(
        settings=settings,
        nc=nc,
        js=js,
        streams=streams,
        counters=counters,
        publisher=publisher,
        records=records,
        predictions=predictions,
        directives=directives,
        learning=learning,
        samples=samples,
        dead_letters=dead_letters,
        outbox=outbox,
        relay=relay,
        writes=writes,
        dispatcher=dispatcher,
        kpi=kpi,
    )


async def _duplicate_window(
    js: JetStreamContext, settings: Settings, streams: Mapping[str, str]
) -> float:
    """The shortest duplicate window of the streams an answer is published to, as they are
    (an operator's stream may keep another than ``duplicate_window_s``)."""
    windows = [settings.duplicate_window_s]
    for role in ("RESULTS", "PLANS", "BASELINES"):
        info = await js.stream_info(streams[role])
        if info.config.duplicate_window:
            windows.append(float(info.config.duplicate_window))
    return min(windows)
