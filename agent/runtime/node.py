"""The agent's lifecycle as one async context manager (nats.py's micro example, grown up).

``async with AgentNode(settings) as node: await node.wait()`` starts, in order: an
embedded nats-server when no URL is configured, the connection, the streams, the task
records, the micro service and the durable consumer. Leaving stops fetching, lets
in-flight tasks finish (naks what cannot finish in time), stops the service and drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Protocol

from nats.aio.client import Client
from nats.micro.service import Service

from agent.config import Settings
from agent.runtime.connection import connect
from agent.runtime.consumer import TaskConsumer, max_deliveries_reader, max_deliveries_subject
from agent.runtime.counters import Counters
from agent.runtime.directives import DirectiveStore, directive_reader
from agent.runtime.dispatcher import Clock, Dispatcher, Inbound, Refusal, utc_now
from agent.runtime.embedded import EmbeddedServer
from agent.runtime.kv import open_bucket
from agent.runtime.learning import LearningStore, learning_readers
from agent.runtime.monitor import Monitor
from agent.runtime.pool import WorkPool
from agent.runtime.predictions import Predictions
from agent.runtime.publisher import Publisher
from agent.runtime.reader import StreamReader
from agent.runtime.service import start_service
from agent.runtime.streams import StreamSpec, ensure_stream, ensure_streams
from agent.runtime.task_records import TaskRecords
from agent.sources.kpi import KpiSource, KpiStats
from agent.sources.prometheus import PrometheusSource
from agent.store import MetricStore
from agent.strategies import ROUTES, Strategy
from protocols import ProtocolError, TaskType

log = logging.getLogger(__name__)


class AgentNode:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        routes: Mapping[TaskType, Strategy] = ROUTES,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.routes = routes
        self.counters = Counters()
        self.pool = WorkPool(settings.max_in_flight, settings.rpc_queue_limit)
        self.embedded: EmbeddedServer | None = None
        self.nc: Client | None = None
        self.service: Service | None = None
        self.consumer: TaskConsumer | None = None
        self.dispatcher: Dispatcher | None = None
        self.streams: dict[str, str] = {}
        self._stack = AsyncExitStack()
        self._consumer_task: asyncio.Task[None] | None = None
        self.watcher: StreamReader | None = None
        self.directive_store: DirectiveStore | None = None
        self.directive_consumer: StreamReader | None = None
        self._directives_task: asyncio.Task[None] | None = None
        self.learning: LearningStore | None = None
        self.prometheus: PrometheusSource | None = None
        self.live_store: MetricStore | None = None
        self.monitor: Monitor | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self.kpi: KpiSource | None = None
        self.kpi_stats = KpiStats()
        self.learning_readers: list[StreamReader] = []
        self._learning_tasks: list[asyncio.Task[None]] = []
        self._watcher_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.fatal: str | None = None

    @property
    def url(self) -> str:
        return self.embedded.url if self.embedded else ",".join(self.settings.servers)

    def stop(self) -> None:
        """Ask the node to shut down (signal handlers call this)."""
        self._stopped.set()

    async def wait(self) -> None:
        """Until ``stop()`` or the connection closes for good."""
        await self._stopped.wait()

    async def __aenter__(self) -> AgentNode:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _start(self) -> None:
        settings = self.settings
        servers = settings.servers
        if not servers:
            store = settings.state_dir / "nats"
            self.embedded = EmbeddedServer(store, port=settings.embedded_port)
            await self._stack.enter_async_context(self.embedded)
            servers = [self.embedded.url]
            log.info(
                "no NATS_URL set: started an embedded nats-server at %s (JetStream store %s)",
                self.embedded.url,
                store,
            )

        async def on_closed() -> None:
            if not self._stopped.is_set():
                self.fatal = "NATS connection closed for good"
                self._stopped.set()

        self.nc = await connect(settings, servers, on_closed=on_closed, on_error=self._on_error)
        self._stack.push_async_callback(self._close_connection)
        js = self.nc.jetstream()
        self.streams = await ensure_streams(js, settings)
        records = await TaskRecords.open(js, settings)
        predictions = Predictions(
            await open_bucket(js, settings, "PREDICTIONS", description="predictions by id")
        )
        self.directive_store = DirectiveStore(
            await open_bucket(js, settings, "STATE", description="the directive in force")
        )
        publisher = Publisher(self.nc, js)
        if settings.kpi_enabled:
            self.live_store = MetricStore(
                max_samples_per_series=settings.store_max_samples_per_series,
                max_series=settings.store_max_series,
                max_age_s=settings.store_max_age_s,
            )
        if settings.prometheus_url:
            self.prometheus = PrometheusSource.from_settings(settings)
            self._stack.push_async_callback(self.prometheus.aclose)
        self.dispatcher = Dispatcher(
            settings,
            publisher,
            records,
            routes=self.routes,
            clock=self.clock,
            counters=self.counters,
            directives=self.directive_store,
            predictions=predictions,
            prometheus=self.prometheus,
            live_store=self.live_store,
        )
        if self.live_store is not None:
            dispatcher = self.dispatcher

            async def kpi_dead_letter(
                subject: str, data: bytes, headers: Mapping[str, str] | None, why: ProtocolError
            ) -> None:
                await dispatcher.dead_letter(
                    Inbound(subject, data, headers, "core"), Refusal(why.code, why.message, None)
                )

            self.kpi = KpiSource(
                self.nc, js, settings, self.live_store, self.kpi_stats, kpi_dead_letter
            )
            await self.kpi.start()
            self._stack.push_async_callback(self.kpi.stop, settings.nats_drain_timeout_s)
        self.learning = await LearningStore.open(js, settings)
        self.learning.start()  # the mirror every task's snapshot reads
        self._stack.push_async_callback(self.learning.stop)
        self.dispatcher.learning = self.learning
        self.learning_readers = learning_readers(
            js, settings, self.streams, self.learning, predictions, self.dispatcher
        )
        self._learning_tasks = [
            asyncio.create_task(r.run(), name=f"learning-{r.durable}")
            for r in self.learning_readers
        ]
        if settings.monitor_enabled:
            self.monitor = Monitor(
                settings,
                self.dispatcher,
                publisher,
                await open_bucket(js, settings, "MONITOR", description="monitor state and lease"),
                holder=f"{settings.agent_id}-{self.nc.client_id}-{id(self)}",
            )
            self._monitor_task = asyncio.create_task(self.monitor.run(), name="monitor")
        self.directive_consumer = directive_reader(
            js, settings.agent_id, self.streams["DIRECTIVES"], self.directive_store, self.dispatcher
        )
        self._directives_task = asyncio.create_task(
            self.directive_consumer.run(), name="directives"
        )
        self.service = await start_service(
            self.nc,
            settings,
            self.dispatcher,
            self.pool,
            self.counters,
            extra=lambda: {"kpi": self.kpi_stats.snapshot()},
        )
        self.consumer = TaskConsumer(
            js, settings, self.streams["TASKS"], self.dispatcher, self.pool, self.counters
        )
        await self.consumer.subscribe()
        self._consumer_task = asyncio.create_task(self.consumer.run(), name="task-consumer")
        advisories = await ensure_stream(
            js,
            settings,
            StreamSpec(
                "ADVISORIES",
                (max_deliveries_subject(self.streams["TASKS"], self.consumer.durable),),
                "tasks the server stopped delivering",
            ),
        )
        self.watcher = max_deliveries_reader(
            js, settings.agent_id, advisories, self.streams["TASKS"], self.dispatcher
        )
        self._watcher_task = asyncio.create_task(self.watcher.run(), name="max-deliveries")
        self._write_service_file()
        log.info(
            "agent %s serving: rpc on swarm.rpc.%s.*, durable tasks on swarm.tasks.%s.>",
            settings.agent_id,
            settings.agent_id,
            settings.agent_id,
        )

    @property
    def service_file(self) -> Path:
        """Where this instance says who it is, for ``prometheus-backend ping --self``."""
        return self.settings.state_dir / "service.json"

    def _write_service_file(self) -> None:
        assert self.service is not None
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        info = {"agent_id": self.settings.agent_id, "service_id": self.service.id, "url": self.url}
        self.service_file.write_text(json.dumps(info) + "\n", encoding="utf-8")
        self._stack.callback(self.service_file.unlink, missing_ok=True)

    def _on_error(self, exc: Exception) -> bool:
        """Slow-consumer drops on KPI subjects are counted (and logged by the source)."""
        return self.kpi.on_error(exc) if self.kpi is not None else False

    async def _shutdown(self) -> None:
        self._stopped.set()
        await asyncio.gather(
            _stop_loop(self.consumer, self._consumer_task),
            _stop_loop(self.watcher, self._watcher_task),
            _stop_loop(self.directive_consumer, self._directives_task),
            _stop_loop(self.monitor, self._monitor_task),
            *(
                _stop_loop(r, t)
                for r, t in zip(self.learning_readers, self._learning_tasks, strict=True)
            ),
        )
        if self.service is not None:
            with contextlib.suppress(Exception):
                await self.service.stop()
        if not await self.pool.join(self.settings.nats_drain_timeout_s):
            log.warning("in-flight tasks did not finish in time; returning them for redelivery")
            self.pool.cancel_all()
            await self.pool.join(5.0)
        await self._stack.aclose()
        log.info("agent %s stopped: %s", self.settings.agent_id, self.counters.snapshot())

    async def _close_connection(self) -> None:
        nc = self.nc
        if nc is None or nc.is_closed:
            return
        try:
            await nc.drain()
        except Exception:
            log.warning("drain failed; closing", exc_info=True)
            with contextlib.suppress(Exception):
                await nc.close()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


async def _stop_loop(loop: _Stoppable | None, task: asyncio.Task[None] | None) -> None:
    """Ask a background loop to stop and give it a moment; cancel it if it will not."""
    if loop is not None:
        loop.stop()
    if task is not None:
        try:
            await asyncio.wait_for(task, 5.0)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
