"""A durable JetStream reader: the one fetch loop behind every inbound stream but tasks.

Directives, verifications, feedback and max-deliveries advisories all need the same
thing: a durable pull consumer, a bounded fetch, a handler per message, ack on success,
a delayed nak on failure (so a broken handler cannot spin), and a consumer re-made when
the server forgets it (nats.py #504). Tasks have their own loop: they share the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

log = logging.getLogger(__name__)

Handler = Callable[[Msg], Awaitable[None]]


class StreamReader:
    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        subject: str,
        durable: str,
        handler: Handler,
        max_deliver: int = 20,
        batch: int = 16,
    ) -> None:
        self.js = js
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.handler = handler
        self.max_deliver = max_deliver
        self.batch = batch
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        sub: JetStreamContext.PullSubscription | None = None
        while not self._stopping.is_set():
            try:
                if sub is None:
                    sub = await self.js.pull_subscribe(
                        self.subject,
                        durable=self.durable,
                        stream=self.stream,
                        config=ConsumerConfig(
                            ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL,
                            max_deliver=self.max_deliver,
                            filter_subject=self.subject,
                        ),
                    )
                msgs = await sub.fetch(self.batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception as exc:
                log.warning("reading %s failed (%r); retrying", self.subject, exc)
                if sub is not None:  # an abandoned inbox would keep a fetch alive, stall drain
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                sub = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 2.0)
                continue
            for msg in msgs:
                try:
                    await self.handler(msg)
                except Exception:
                    log.exception(
                        "handling a message on %s failed; it will be redelivered", msg.subject
                    )
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=2.0)
                    continue
                with contextlib.suppress(Exception):
                    await msg.ack()
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
