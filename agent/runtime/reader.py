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
BatchHandler = Callable[[list[Msg]], Awaitable[None]]


class StreamReader:
    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        subject: str,
        durable: str,
        handler: Handler | None = None,
        on_batch: BatchHandler | None = None,
        max_deliver: int = 20,
        batch: int = 16,
        linger_s: float = 0.0,
    ) -> None:
        if (handler is None) == (on_batch is None):
            raise ValueError("a reader handles each message or each batch: give one")
        self.js = js
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.handler = handler
        """Called per message; acked when it returns, redelivered when it raises."""
        self.on_batch = on_batch
        """Called per fetch: all of it acked, or all redelivered when it raises."""
        self.max_deliver = max_deliver
        self.batch = batch
        self.linger_s = linger_s
        """After a batch that was not full, how long to wait before the next fetch, so that
        messages arriving one by one are handled several at a time (0: fetch at once). An
        idle reader is not delayed: its fetch waits and returns with the first message."""
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
            if self.on_batch is not None:
                await _settle(msgs, self.on_batch(msgs), self.subject)
                if self.linger_s > 0 and len(msgs) < self.batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self.linger_s)
                continue
            assert self.handler is not None
            for msg in msgs:
                await _settle([msg], self.handler(msg), self.subject)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


async def _settle(msgs: list[Msg], handled: Awaitable[None], subject: str) -> None:
    """Ack ``msgs`` once ``handled`` is done; nak them (redelivered later) when it raises."""
    try:
        await handled
    except Exception:
        log.exception("handling %d message(s) on %s failed; redelivered later", len(msgs), subject)
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.nak(delay=2.0)
        return
    for msg in msgs:
        with contextlib.suppress(Exception):
            await msg.ack()
