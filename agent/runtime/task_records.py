"""What each task was answered, in JetStream KV: the basis of "one task, one result".

A task's answer (result bytes and every output) is claimed — a KV ``create``, so exactly
one answer per task id wins, on any replica — before anything is published. The claim is
the only write of the record: it is never marked "published" afterwards. What a claim
found later (a redelivery, a duplicate, a second replica) does with it is the
dispatcher's rule (``Dispatcher._settle``): within the streams' duplicate window it sends
everything again, which ``Nats-Msg-Id`` stores once, so an answer cut short by a crash is
completed; after it, it only replies with the stored bytes.
"""

from __future__ import annotations

import time

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from agent.config import Settings
from agent.runtime.kv import open_bucket
from agent.runtime.outbox import Output


class TaskRecord(msgspec.Struct, frozen=True, kw_only=True):
    result: msgspec.Raw
    """The ``task_result/v1`` bytes exactly as first made."""
    published: bool = False
    """Set by agents before the claim carried ``claimed_at``: the results stream (and every
    output before it) had acknowledged it. Never written now; read for older records."""
    outputs: list[Output] = []
    """Plan, baseline and predictions of the task, sent with the result."""
    claimed_at: float | None = None
    """Epoch seconds (the claiming agent's clock) when the answer was claimed; None in
    records of agents that marked ``published`` instead."""


_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder(TaskRecord)


def record_key(task_id: str) -> str:
    """A KV key for any task id (``:`` and leading dots are not valid in keys, hex is)."""
    return "t-" + task_id.encode().hex()


class TaskRecords:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, settings: Settings) -> TaskRecords:
        kv = await open_bucket(
            js,
            settings,
            "TASKS_DONE",
            description="the answer given to each task id",
            ttl_s=settings.task_record_ttl_s,
        )
        return cls(kv)

    async def get(self, task_id: str) -> TaskRecord | None:
        try:
            entry = await self.kv.get(record_key(task_id))
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            return None
        if entry.value is None:
            return None
        return _DEC.decode(entry.value)

    async def claim(
        self, task_id: str, result: bytes, outputs: list[Output] | None = None
    ) -> tuple[TaskRecord, bool]:
        """Store ``result`` as the task's answer unless one is stored already.

        Returns the answer that counts and whether it is this one (one acknowledged write;
        a read only when another answer was there first).
        """
        record = TaskRecord(
            result=msgspec.Raw(result), outputs=outputs or [], claimed_at=time.time()
        )
        try:
            await self.kv.create(record_key(task_id), _ENC.encode(record))
        except KeyWrongLastSequenceError:
            existing = await self.get(task_id)
            if existing is None:  # pragma: no cover - deleted between the two calls
                raise
            return existing, False
        return record, True
