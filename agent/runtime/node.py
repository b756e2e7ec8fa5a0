"""The agent's lifecycle as one async context manager (nats.py's micro example, grown up).

``async with AgentNode(settings) as node: await node.wait()`` starts, in order: an
embedded nats-server when no URL is configured, the connection, the services (streams,
buckets, sources, dispatcher: ``Services``), the micro service, then the background loops
(durable tasks, max-deliveries advisories, directives, verifications and feedback, the
monitor) in one ``asyncio.TaskGroup``. Everything is entered on one ``AsyncExitStack``,
so leaving undoes it in reverse: the loops stop, the service stops, in-flight tasks
finish (or are returned for redelivery), the sources stop and the connection drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
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
from agent.runtime.dispatcher import Dispatcher
from agent.runtime.embedded import EmbeddedServer
from agent.runtime.handler import Clock, utc_now
from agent.runtime.kv import open_bucket
from agent.runtime.learning import LearningStore, learning_readers, plan_counter
from agent.runtime.monitor import Monitor
from agent.runtime.pool import WorkPool
from agent.runtime.reader import StreamReader
from agent.runtime.relay import caught_up
from agent.runtime.service import start_service
from agent.runtime.services import Services, open_services
from agent.runtime.streams import StreamSpec, ensure_stream
from agent.sources.kpi import KpiStats
from agent.store import MetricStore
from agent.strategies import ROUTES, Strategy
from protocols import TaskType

log = logging.getLogger(__name__)

LOOP_STOP_S = 5.0
"""How long a background loop may take to finish once asked to stop; then it is cancelled."""
RELAY_LOOP = "answer-relay"
"""The relay's loop (and task) name: the drain waits for it only while it runs."""


class _Loop(Protocol):
    def stop(self) -> None: ...

    async def run(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Running:
    """What a started node holds: its services, its micro service and its loops."""

    url: str
    services: Services
    service: Service
    consumer: TaskConsumer
    learning_readers: tuple[StreamReader, ...]
    monitor: Monitor | None
    """None when the configuration turns it off (``monitor_enabled``)."""
    tasks: Mapping[str, asyncio.Task[None]]
    """Each background loop's task, by name, in the node's task group."""


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
        self.kpi_stats = KpiStats()
        self._stack = AsyncExitStack()
        self._running: Running | None = None
        """Set once by ``__aenter__``: everything else is reached through it."""
        self._stopped = asyncio.Event()
        self.fatal: str | None = None

    # --- what a started node holds ---------------------------------------------------

    @property
    def running(self) -> Running:
        if self._running is None:
            raise RuntimeError("the node is not started: use `async with AgentNode(...)`")
        return self._running

    @property
    def services(self) -> Services:
        return self.running.services

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def nc(self) -> Client:
        return self.services.nc

    @property
    def streams(self) -> Mapping[str, str]:
        return self.services.streams

    @property
    def dispatcher(self) -> Dispatcher:
        return self.services.dispatcher

    @property
    def learning(self) -> LearningStore:
        return self.services.learning

    @property
    def learning_readers(self) -> tuple[StreamReader, ...]:
        return self.running.learning_readers

    @property
    def directive_store(self) -> DirectiveStore:
        return self.services.directives

    @property
    def live_store(self) -> MetricStore | None:
        return self.services.samples.live

    @property
    def monitor(self) -> Monitor | None:
        return self.running.monitor

    @property
    def service(self) -> Service:
        return self.running.service

    # --- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the node to shut down (signal handlers call this)."""
        self._stopped.set()

    async def wait(self) -> None:
        """Until ``stop()`` or the connection closes for good."""
        await self._stopped.wait()

    async def __aenter__(self) -> AgentNode:
        try:
            self._running = await self._start(self._stack)
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
        self._stopped.set()
        await self._stack.aclose()
        log.info("agent %s stopped: %s", self.settings.agent_id, self.counters.snapshot())

    async def _start(self, stack: AsyncExitStack) -> Running:
        settings = self.settings
        servers = settings.servers
        if not servers:
            store = settings.state_dir / "nats"
            embedded = await stack.enter_async_context(
                EmbeddedServer(store, port=settings.embedded_port)
            )
            servers = [embedded.url]
            log.info(
                "no NATS_URL set: started an embedded nats-server at %s (JetStream store %s)",
                embedded.url,
                store,
            )
        url = ",".join(servers)
        kpi_errors: list[Callable[[Exception], bool]] = []
        """The connection reports errors before the KPI source it counts them for exists."""

        async def on_closed() -> None:
            if not self._stopped.is_set():
                self.fatal = "NATS connection closed for good"
                self._stopped.set()

        def on_error(exc: Exception) -> bool:
            """Slow-consumer drops on KPI subjects are counted (and logged by the source)."""
            return any(hook(exc) for hook in kpi_errors)

        nc = await connect(settings, servers, on_closed=on_closed, on_error=on_error)
        stack.push_async_callback(_close_connection, nc)
        services = await open_services(
            stack,
            settings,
            nc,
            routes=self.routes,
            clock=self.clock,
            counters=self.counters,
            kpi_stats=self.kpi_stats,
        )
        if services.kpi is not None:
            kpi_errors.append(services.kpi.on_error)
        js, streams, dispatcher = services.js, services.streams, services.dispatcher
        # Closed in reverse: the intake stops (task consumer, then the rpc service), work in
        # flight finishes, the relay sends what it claimed, then every other loop stops.
        group = await stack.enter_async_context(asyncio.TaskGroup())
        loops: list[tuple[str, _Loop]] = []
        tasks: list[asyncio.Task[None]] = []
        stack.push_async_callback(_stop_loops, loops, tasks)
        relay = services.relay.reader(js, settings)
        stack.push_async_callback(_drain, relay, tasks, settings.nats_drain_timeout_s)
        stack.push_async_callback(self._finish_work)
        service = await start_service(
            nc,
            settings,
            dispatcher,
            self.pool,
            self.counters,
            extra=lambda: {
                "kpi": self.kpi_stats.snapshot(),
                "writes": services.writes.snapshot(),
                "strategy": dispatcher.handler.compute.snapshot(),
            },
        )
        stack.push_async_callback(_stop_service, service)
        consumer = TaskConsumer(
            js, settings, streams["TASKS"], dispatcher, self.pool, self.counters
        )
        await consumer.subscribe()
        advisories = await ensure_stream(
            js,
            settings,
            StreamSpec(
                "ADVISORIES",
                (max_deliveries_subject(streams["TASKS"], consumer.durable),),
                "tasks the server stopped delivering",
            ),
        )
        readers = tuple(
            learning_readers(
                js,
                settings,
                dict(streams),
                services.learning,
                services.predictions,
                services.dead_letters,
            )
        )
        loops += [
            ("task-consumer", consumer),
            (RELAY_LOOP, relay),
            (
                "max-deliveries",
                max_deliveries_reader(
                    js, settings.agent_id, advisories, streams["TASKS"], dispatcher
                ),
            ),
            (
                "directives",
                directive_reader(
                    js,
                    settings.agent_id,
                    streams["DIRECTIVES"],
                    services.directives,
                    services.dead_letters,
                ),
            ),
            *((f"learning-{r.durable}", r) for r in readers),
            ("learning-plans", plan_counter(js, settings, services.learning)),
        ]
        monitor: Monitor | None = None
        if settings.monitor_enabled:
            monitor_kv = await open_bucket(
                js, settings, "MONITOR", description="monitor state and lease"
            )
            monitor = Monitor(
                settings,
                services.samples,
                services.directives,
                services.outbox,
                monitor_kv,
                holder=f"{settings.agent_id}-{nc.client_id}-{id(self)}",
            )
            loops.append(("monitor", monitor))
        tasks += [group.create_task(_supervised(name, loop.run), name=name) for name, loop in loops]
        stack.callback(consumer.stop)  # first on the way out: no new task is fetched
        self._write_service_file(stack, service, url)
        log.info(
            "agent %s serving: rpc on swarm.rpc.%s.*, durable tasks on swarm.tasks.%s.>",
            settings.agent_id,
            settings.agent_id,
            settings.agent_id,
        )
        return Running(
            url=url,
            services=services,
            service=service,
            consumer=consumer,
            learning_readers=readers,
            monitor=monitor,
            tasks={task.get_name(): task for task in tasks},
        )

    @property
    def service_file(self) -> Path:
        """Where this instance says who it is, for ``prometheus-backend ping --self``."""
        return self.settings.state_dir / "service.json"

    def _write_service_file(self, stack: AsyncExitStack, service: Service, url: str) -> None:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        info = {"agent_id": self.settings.agent_id, "service_id": service.id, "url": url}
        self.service_file.write_text(json.dumps(info) + "\n", encoding="utf-8")
        stack.callback(self.service_file.unlink, missing_ok=True)

    async def _finish_work(self) -> None:
        """Let in-flight tasks finish; what cannot in time is returned for redelivery."""
        if not await self.pool.join(self.settings.nats_drain_timeout_s):
            log.warning("in-flight tasks did not finish in time; returning them for redelivery")
            self.pool.cancel_all()
            await self.pool.join(5.0)


async def _supervised(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """A loop that ends with an error is logged, never taken for the whole node's."""
    try:
        await run()
    except Exception:
        log.exception("background loop %s stopped with an error", name)


async def _drain(relay: StreamReader, tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Until the relay has sent every claim (its consumer has nothing pending), at most
    ``timeout``; what is left is sent by the next relay to run (it stays in the stream)."""
    if not any(t.get_name() == RELAY_LOOP and not t.done() for t in tasks):
        return
    if not await caught_up(relay, timeout):
        log.warning("the relay had not sent every claimed answer in %g s; the next run will")


async def _stop_loops(loops: list[tuple[str, _Loop]], tasks: list[asyncio.Task[None]]) -> None:
    """Ask every loop to stop; cancel those still running after ``LOOP_STOP_S``.

    The task group's own exit (next on the stack) then finds them all done.
    """
    for _, loop in loops:
        loop.stop()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=LOOP_STOP_S)
        for task in pending:
            task.cancel()


async def _stop_service(service: Service) -> None:
    with contextlib.suppress(Exception):
        await service.stop()


async def _close_connection(nc: Client) -> None:
    if nc.is_closed:
        return
    try:
        await nc.drain()
    except Exception:
        log.warning("drain failed; closing", exc_info=True)
        with contextlib.suppress(Exception):
            await nc.close()
