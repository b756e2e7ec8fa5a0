"""What each task was answered, in JetStream KV: the basis of "one task, one result".

A task's result is stored before it is published and marked once published, so a
redelivered or duplicated task (even after the stream's dedupe window, even on another
replica) is answered with the same bytes and never published twice.
"""

from __future__ import annotations

import contextlib

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
    """Whether the results stream (and every output before it) has acknowledged it."""
    outputs: list[Output] = []
    """Plan, baseline and predictions of the task, sent before the result."""


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

    async def get(self, task_id: str) -> tuple[TaskRecord, int] | None:
        try:
            entry = await self.kv.get(record_key(task_id))
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            return None
        if entry.value is None:
            return None
        return _DEC.decode(entry.value), int(entry.revision or 0)

    async def claim(
        self, task_id: str, result: bytes, outputs: list[Output] | None = None
    ) -> tuple[TaskRecord, int]:
        """Store ``result`` as the task's answer unless one is stored already; return the winner."""
        record = TaskRecord(result=msgspec.Raw(result), outputs=outputs or [])
        try:
            revision = await self.kv.create(record_key(task_id), _ENC.encode(record))
        except KeyWrongLastSequenceError:
            existing = await self.get(task_id)
            if existing is None:  # pragma: no cover - deleted between the two calls
                raise
            return existing
        return record, revision

    async def mark_published(self, task_id: str, record: TaskRecord, revision: int) -> None:
        done = TaskRecord(result=record.result, published=True, outputs=record.outputs)
        # another replica may have marked it first: same answer, already published
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self.kv.update(record_key(task_id), _ENC.encode(done), last=revision)
