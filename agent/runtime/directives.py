"""Helios's directives: the latest valid one applies to all later work and survives restarts.

Directives arrive durably on ``swarm.directives.<agent>``; the one in force is kept in
JetStream KV (``<PREFIX>_STATE``, key ``directive``), so every replica and every restart
sees it. A newer ``issued_at`` replaces an older one; an expired one (``valid_until``
passed) is no longer in force. A directive that cannot be decoded is dead-lettered.

A task reads the stored directive at its start, but need not wait for that read: it may
start on the one this agent read last (``known``), and ``confirm`` says, one request
later, whether that is still the stored one (same KV revision). The tasks that arrive
while a confirming read is in flight share the next one (``SharedRead``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import NamedTuple

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from agent.runtime.dead_letters import DeadLetters
from agent.runtime.reader import StreamReader
from agent.runtime.shared_read import SharedRead
from protocols import ProtocolError, StrategicDirective, decode, subjects

log = logging.getLogger(__name__)

KEY = "directive"


class Stored(NamedTuple):
    """The stored directive as of a KV revision (0: none was ever stored)."""

    revision: int
    directive: StrategicDirective | None

    def in_force(self, now: datetime) -> StrategicDirective | None:
        """The directive unless it has expired."""
        directive = self.directive
        if directive is None:
            return None
        if directive.valid_until is not None and directive.valid_until <= now:
            return None
        return directive


class DirectiveStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.known: Stored | None = None
        """What this agent read last (None before its first read)."""
        self.fresh = SharedRead(self.stored)
        """``stored``, one read for the tasks that ask at once (``confirm``)."""

    async def stored(self) -> Stored:
        """The stored directive and its revision (one request)."""
        try:
            entry = await self.kv.get(KEY)
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            found = Stored(0, None)
        else:
            found = Stored(entry.revision or 0, _decoded(entry.value))
        if self.known is None or found.revision >= self.known.revision:
            self.known = found
        return found

    async def latest(self) -> StrategicDirective | None:
        return (await self.stored()).directive

    async def in_force(self, now: datetime) -> StrategicDirective | None:
        """The stored directive unless it has expired."""
        return (await self.stored()).in_force(now)

    async def confirm(self, known: Stored) -> Stored | None:
        """None when ``known`` is still the stored directive, else the stored one."""
        found = await self.fresh()
        return None if found.revision == known.revision else found

    async def offer(self, directive: StrategicDirective, raw: bytes) -> bool:
        """Keep ``directive`` if it is newer than the stored one; True when it now applies."""
        current = await self.latest()
        if current is not None and current.issued_at >= directive.issued_at:
            return current.directive_id == directive.directive_id
        await self.kv.put(KEY, raw)
        return True


def _decoded(value: bytes | None) -> StrategicDirective | None:
    if not value:
        return None
    try:
        return decode(StrategicDirective, value)
    except ProtocolError:  # pragma: no cover - only valid directives are stored
        log.error("stored directive is unreadable; ignoring it")
        return None


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
