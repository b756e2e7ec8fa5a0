"""Helios's directives: the latest valid one applies to all later work and survives restarts.

Directives arrive durably on ``swarm.directives.<agent>``; the one in force is kept in
JetStream KV (``<PREFIX>_STATE``, key ``directive``), so every replica and every restart
sees it. A newer ``issued_at`` replaces an older one; an expired one (``valid_until``
passed) is no longer in force. A directive that cannot be decoded is dead-lettered.
"""

from __future__ import annotations

import logging
from datetime import datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from agent.runtime.dead_letters import DeadLetters
from agent.runtime.reader import StreamReader
from protocols import ProtocolError, StrategicDirective, decode, subjects

log = logging.getLogger(__name__)

KEY = "directive"


class DirectiveStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def latest(self) -> StrategicDirective | None:
        try:
            entry = await self.kv.get(KEY)
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
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


def directive_reader(
    js: JetStreamContext,
    agent_id: str,
    stream: str,
    store: DirectiveStore,
    dead_letters: DeadLetters,
) -> StreamReader:
    """A durable reader of ``swarm.directives.<agent>`` feeding ``store``."""

    async def handle(msg: Msg) -> None:
        directive = await dead_letters.decode_or_send(msg, stream, StrategicDirective)
        if directive is None:
            return
        applied = await store.offer(directive, msg.data)
        log.info(
            "directive %s %s", directive.directive_id, "in force" if applied else "older; ignored"
        )

    return StreamReader(
        js,
        stream=stream,
        subject=subjects.directives(agent_id),
        durable=f"{agent_id}-directives",
        handler=handle,
    )
