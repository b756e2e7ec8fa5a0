"""What each task was answered, in JetStream KV: the basis of "one task, one result".

A task's answer (result bytes and every output) is claimed — a KV ``create``, so exactly
one answer per task id wins, on any replica — before anything is published or replied.
The claim is the only write of the record: it is never marked "published" afterwards.
The bucket is the answers' outbox: ``agent.runtime.relay`` reads its stream and sends
each claim's outputs and result; a claim found later (a redelivery, a duplicate, a second
replica) is only replied with.
"""

from __future__ import annotations

import time

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from agent.config import Settings
from agent.runtime.kv import bucket_name, open_bucket
from agent.runtime.outbox import Output
from agent.runtime.writer import BucketWrites, JetStreamWriter
from agent.telemetry import tracing


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
    trace: dict[str, str] = {}
    """The task's trace context (``traceparent``): the relay sends the answer in its trace."""

    @property
    def unsent_legacy(self) -> bool:
        """Claimed by an agent from before the relay (no ``claimed_at``) and never marked
        sent by it: no relay will send it unless it is found again."""
        return self.claimed_at is None and not self.published


TASKS_DONE = "TASKS_DONE"
"""The bucket's role (``<PREFIX>_TASKS_DONE``)."""
_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder(TaskRecord)


def decode_record(data: bytes) -> TaskRecord:
    return _DEC.decode(data)


def record_key(task_id: str) -> str:
    """A KV key for any task id (``:`` and leading dots are not valid in keys, hex is)."""
    return "t-" + task_id.encode().hex()


class TaskRecords:
    def __init__(self, kv: KeyValue, fast: BucketWrites | None = None) -> None:
        self.kv = kv
        self.fast = fast
        """The bucket's writes through the agent's writer: a claim's create made by it."""

    @classmethod
    async def open(
        cls, js: JetStreamContext, settings: Settings, writer: JetStreamWriter | None = None
    ) -> TaskRecords:
        kv = await open_bucket(
            js,
            settings,
            TASKS_DONE,
            description="the answer given to each task id",
            ttl_s=settings.task_record_ttl_s,
        )
        fast = None if writer is None else BucketWrites(writer, bucket_name(settings, TASKS_DONE))
        return cls(kv, fast)

    async def get(self, task_id: str) -> TaskRecord | None:
        try:
            entry = await self.kv.get(record_key(task_id))
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            return None
        if entry.value is None:
            return None
        return decode_record(entry.value)

    async def claim(
        self, task_id: str, result: bytes, outputs: list[Output] | None = None
    ) -> tuple[TaskRecord, bool]:
        """Store ``result`` as the task's answer unless one is stored already.

        Returns the answer that counts and whether it is this one (one acknowledged write;
        a read only when another answer was there first).
        """
        record = TaskRecord(
            result=msgspec.Raw(result),
            outputs=outputs or [],
            claimed_at=time.time(),
            trace=tracing.inject({}),
        )
        try:
            await self._create(record_key(task_id), _ENC.encode(record))
        except KeyWrongLastSequenceError:
            existing = await self.get(task_id)
            if existing is None:  # pragma: no cover - deleted between the two calls
                raise
            return existing, False
        return record, True

    async def _create(self, key: str, value: bytes) -> None:
        """The KV create: through the writer when there is one; when the key holds
        something, nats-py's own (which also takes a key whose value was deleted)."""
        if self.fast is not None:
            try:
                await self.fast.create(key, value)
                return
            except KeyWrongLastSequenceError:
                pass
        await self.kv.create(key, value)
