"""Helios's directives: the latest valid one applies to all later work and survives restarts.

Directives arrive durably on ``swarm.directives.<agent>``; the one in force is kept in
JetStream KV (``<PREFIX>_STATE``, key ``directive``), so every replica and every restart
sees it. A newer ``issued_at`` replaces an older one; an expired one (``valid_until``
passed) is no longer in force. A directive that cannot be decoded is dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from agent.runtime.dispatcher import Dispatcher, Inbound, Refusal
from protocols import ProtocolError, StrategicDirective, decode, subjects

log = logging.getLogger(__name__)

KEY = "directive"


class DirectiveStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def latest(self) -> StrategicDirective | None:
        try:
            entry = await self.kv.get(KEY)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        try:
            return decode(StrategicDirective, entry.value)
        except ProtocolError:  # pragma: no cover - only valid directives are stored
            log.error("stored directive is unreadable; ignoring it")
            return None

    async def in_force(self, now: datetime) -> StrategicDirective | None:
        """The stored directive unless it has expired."""
        directive = await self.latest()
        if directive is None:
            return None
        if directive.valid_until is not None and directive.valid_until <= now:
            return None
        return directive

    async def offer(self, directive: StrategicDirective, raw: bytes) -> bool:
        """Keep ``directive`` if it is newer than the stored one; True when it now applies."""
        current = await self.latest()
        if current is not None and current.issued_at >= directive.issued_at:
            return current.directive_id == directive.directive_id
        await self.kv.put(KEY, raw)
        return True


class DirectiveConsumer:
    """A durable pull consumer on ``swarm.directives.<agent>`` feeding the store."""

    def __init__(
        self,
        js: JetStreamContext,
        agent_id: str,
        stream: str,
        store: DirectiveStore,
        dispatcher: Dispatcher,
    ) -> None:
        self.js = js
        self.agent_id = agent_id
        self.stream = stream
        self.store = store
        self.dispatcher = dispatcher
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        sub: JetStreamContext.PullSubscription | None = None
        while not self._stopping.is_set():
            try:
                if sub is None:
                    sub = await self.js.pull_subscribe(
                        subjects.directives(self.agent_id),
                        durable=f"{self.agent_id}-directives",
                        stream=self.stream,
                        config=ConsumerConfig(
                            ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL,
                            max_deliver=10,
                        ),
                    )
                msgs = await sub.fetch(8, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception as exc:
                log.warning("reading directives failed (%r); retrying", exc)
                sub = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 2.0)
                continue
            for msg in msgs:
                try:
                    await self._handle(msg.subject, msg.data, msg.headers, msg.metadata)
                except Exception:
                    log.exception("could not apply a directive; it will be redelivered")
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=2.0)
                    continue
                await msg.ack()
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _handle(
        self, subject: str, data: bytes, headers: dict[str, str] | None, meta: object
    ) -> None:
        seq = getattr(getattr(meta, "sequence", None), "stream", None)
        try:
            directive = decode(StrategicDirective, data)
        except ProtocolError as exc:
            await self.dispatcher.dead_letter(
                Inbound(subject, data, headers, "jetstream", f"{self.stream}:{seq}"),
                Refusal(exc.code, exc.message, None),
            )
            return
        applied = await self.store.offer(directive, data)
        log.info(
            "directive %s %s", directive.directive_id, "in force" if applied else "older; ignored"
        )
