"""Dead letters: refused input published whole (or cut to fit) with why, on one subject.

Tasks, directives, verifications, feedback and KPI batches all refuse input the same way:
the original bytes, their headers, the error code and reason, on
``swarm.deadletter.<agent>``; a durable message is dead-lettered once however often it is
redelivered (``Nats-Msg-Id`` = its ``stream:seq``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from nats.aio.msg import Msg

from agent.runtime.counters import Counters
from agent.runtime.inbound import Inbound, Refusal
from agent.runtime.publisher import Publisher
from protocols import DeadLetter, Message, ProtocolError, decode, encode, subjects

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

DEAD_LETTER_OVERHEAD = 16 * 1024
"""Room left in a dead letter for its other fields and the headers of the refused message."""


class DeadLetters:
    def __init__(
        self,
        publisher: Publisher,
        agent_id: str,
        counters: Counters,
        clock: Callable[[], datetime],
    ) -> None:
        self.publisher = publisher
        self.subject = subjects.deadletter(agent_id)
        self.counters = counters
        self.clock = clock

    async def send(self, inbound: Inbound, refusal: Refusal) -> None:
        """Publish the refused bytes with why; cut to fit the server's max payload if needed."""
        room = max(1024, (self.publisher.max_payload - DEAD_LETTER_OVERHEAD) * 3 // 4)
        kept = inbound.data[:room]
        letter = DeadLetter(
            received_at=self.clock(),
            subject=inbound.subject,
            reason=refusal.message[:4000],
            error_code=refusal.code.value,
            payload_b64=base64.b64encode(kept).decode("ascii"),
            headers=dict(inbound.headers or {}),
            task_id=refusal.task_id,
            payload_size=len(inbound.data),
            payload_sha256=hashlib.sha256(inbound.data).hexdigest(),
            payload_truncated=len(kept) < len(inbound.data),
        )
        msg_id = f"{inbound.message_ref}:dead_letter" if inbound.message_ref else None
        await self.publisher.to_stream(self.subject, encode(letter), msg_id=msg_id)
        self.counters.dead_lettered += 1
        log.warning(
            "dead-lettered a message on %s: %s (%s)",
            inbound.subject,
            refusal.code.value,
            refusal.message[:200],
        )

    async def decode_or_send(self, msg: Msg, stream: str, cls: type[M]) -> M | None:
        """A durable message of an inbound stream as ``cls``, or None once dead-lettered."""
        try:
            return decode(cls, msg.data)
        except ProtocolError as exc:
            seq = msg.metadata.sequence.stream
            await self.send(
                Inbound(msg.subject, msg.data, msg.headers, "jetstream", f"{stream}:{seq}"),
                Refusal(exc.code, exc.message, None),
            )
            return None

    async def core(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None, why: ProtocolError
    ) -> None:
        """A core NATS message that is not what its subject carries (a KPI batch)."""
        await self.send(
            Inbound(subject, data, headers, "core"), Refusal(why.code, why.message, None)
        )
