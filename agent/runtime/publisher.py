"""Every publish of the agent: a PRODUCER span, trace context injected, retried when transient.

JetStream publishes carry ``Nats-Msg-Id`` so that a retried publish is stored once.
"""

from __future__ import annotations

import logging

import nats.errors
from nats.aio.client import Client
from nats.js.errors import ServiceUnavailableError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from agent.runtime.writer import JetStreamWriter
from agent.telemetry import tracing

log = logging.getLogger(__name__)

CONTENT_TYPE = {"Content-Type": "application/json"}
_TRANSIENT = (
    TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    ServiceUnavailableError,
    nats.errors.ConnectionReconnectingError,
)


class Publisher:
    """The one place that sends: results, dead letters, plans, baselines, alerts."""

    def __init__(self, nc: Client, writer: JetStreamWriter, *, attempts: int = 5) -> None:
        self.nc = nc
        self.writer = writer
        self.attempts = attempts

    @property
    def max_payload(self) -> int:
        """The largest message the connected server accepts."""
        return int(self.nc.max_payload)

    async def to_stream(
        self, subject: str, payload: bytes, *, msg_id: str | None = None, timeout: float = 5.0
    ) -> int:
        """Publish to JetStream, wait for the ack; returns the stream sequence (0 = duplicate)."""
        with tracing.producer_span(subject, msg_id):
            headers = tracing.inject(dict(CONTENT_TYPE))
            if msg_id:
                headers["Nats-Msg-Id"] = msg_id
            try:  # the common case without the retry machinery (~70 µs a publish)
                ack = await self.writer.publish(subject, payload, headers, timeout=timeout)
            except _TRANSIENT:
                log.debug("publish to %s failed; retrying", subject, exc_info=True)
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(_TRANSIENT),
                    wait=wait_exponential(multiplier=0.1, max=2.0),
                    stop=stop_after_attempt(max(1, self.attempts - 1)),
                    reraise=True,
                ):
                    with attempt:
                        ack = await self.writer.publish(subject, payload, headers, timeout=timeout)
            return 0 if ack.duplicate else int(ack.seq)

    async def to_subject(self, subject: str, payload: bytes) -> None:
        """Core NATS publish (a ``reply_to`` or an rpc inbox): fire and forget."""
        with tracing.producer_span(subject):
            headers = tracing.inject(dict(CONTENT_TYPE))
            await self.nc.publish(subject, payload, headers=headers)
