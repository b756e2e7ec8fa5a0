"""The request/reply path: a NATS micro service named ``<agent>``, one endpoint per task type.

``$SRV.PING/INFO/STATS`` come with the service (so ``nats micro ls`` finds the agent);
STATS carries the agent's counters as endpoint data. Each callback only hands the request
to the shared pool (micro endpoints run callbacks one at a time, nats.py #447); when the
pool's queue is full the caller gets ``rejected``/``overloaded`` at once, not a timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointStats, Service

from agent import __version__
from agent.config import Settings
from agent.runtime.counters import Counters
from agent.runtime.dispatcher import Dispatcher
from agent.runtime.inbound import Inbound
from agent.runtime.pool import WorkPool
from agent.telemetry import tracing
from protocols import TaskType, subjects

log = logging.getLogger(__name__)

DESCRIPTION = (
    "prometheus-backend strategist: judges backend metrics, ranks bottlenecks, "
    "plans optimisations (task_request/v1 -> task_result/v1)"
)


async def start_service(
    nc: Client,
    settings: Settings,
    dispatcher: Dispatcher,
    pool: WorkPool,
    counters: Counters,
    *,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> Service:
    def stats(_: EndpointStats) -> Any:
        data = {**counters.snapshot(), "in_flight": pool.running, "queued": pool.pending}
        return {**data, **extra()} if extra is not None else data

    service = await add_service(
        nc,
        name=settings.agent_id,
        version=__version__,
        description=DESCRIPTION,
        metadata={"protocol": "swarm/v1", "agent_id": settings.agent_id},
        stats_handler=stats,
    )

    async def handler(request: Request) -> None:
        inbound = Inbound(request.subject, request.data, request.headers, "rpc")

        async def work() -> None:
            with tracing.continued(request.headers):
                try:
                    payload = await dispatcher.handle(inbound)
                except Exception as exc:
                    log.exception("rpc task on %s could not be answered", request.subject)
                    payload = dispatcher.unavailable(inbound, exc)
                await _respond(request, payload)

        if not pool.try_submit(work):
            await _respond(request, dispatcher.overloaded(inbound))

    for task_type in TaskType:
        await service.add_endpoint(
            name=task_type.value,
            subject=subjects.rpc(settings.agent_id, task_type),
            handler=handler,
            metadata={"task_type": task_type.value, "schema": "task_request/v1"},
        )
    return service


def _reply_subject(request: Request) -> str:
    """Where the caller waits for the answer ("" when it sent none).

    nats-py's micro ``Request`` exposes subject, headers and data but not the reply
    subject (nats.go added ``Request.Reply()`` in nats-io/nats.go#1589; nats.py has no
    equivalent yet): read from the message it wraps, for the PRODUCER span's destination.
    """
    return str(request._msg.reply or "")


async def _respond(request: Request, payload: bytes) -> None:
    reply = _reply_subject(request)
    if not reply:  # published without a reply subject: nobody to tell
        return
    with tracing.producer_span(reply):
        headers = tracing.inject({"Content-Type": "application/json"})
        await request.respond(payload, headers=headers)
