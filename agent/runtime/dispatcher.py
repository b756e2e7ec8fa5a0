"""The one dispatcher both transports share: validate, route, answer once, dead-letter refusals.

Order matters and is the contract's: a body that cannot be read is refused before
anything else; a valid task already answered is answered again with the stored bytes
(redelivery and duplicates never make a second, different result). Every refusal is
dead-lettered with the original bytes; the process never dies of input.

The work itself is the ``TaskHandler``'s (decode, strategy, outputs); this module stores
the answer once per task id and answers the caller. What an answer costs on its path is
one acknowledged round trip: the claim (``TaskRecords.claim``, a KV create holding the
result and every output). The task is not read first — the create fails when an answer
is stored already, and only then is that one read. (A duplicate is thus computed again
before it is recognised: the price of sparing every other task a read. An expired
deadline or a failing strategy reads first, so they are never refused or dead-lettered
for a task that was answered.)

The caller is answered as soon as the claim is acknowledged: the rpc reply, or the
durable task's ack by the consumer. The outputs and the result on the results stream are
the ``AnswerRelay``'s (``agent.runtime.relay``), which reads every claim from the
bucket's stream and survives a crash of the agent that claimed it. A claim found by a
later delivery (a duplicate, a redelivery, a second replica) is thus only replied with —
unless an agent from before the relay claimed it and never marked it sent: that one is
sent here, once.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Literal

from agent.errors import AgentError
from agent.runtime.counters import Counters, WriteStats
from agent.runtime.dead_letters import DeadLetters
from agent.runtime.handler import Clock, ReadFailed, TaskHandler, utc_now
from agent.runtime.inbound import Inbound, Refusal, token_or
from agent.runtime.outbox import Output
from agent.runtime.publisher import Publisher
from agent.runtime.relay import AnswerRelay
from agent.runtime.task_records import TaskRecord, TaskRecords
from agent.strategies import Report
from agent.telemetry import tracing
from agent.telemetry.logs import task_id_var
from protocols import (
    ErrorCode,
    ErrorInfo,
    ProtocolError,
    TaskRequest,
    TaskResult,
    TaskType,
    encode,
    read_envelope,
    subjects,
)

log = logging.getLogger(__name__)

UNREADABLE_TASK_ID = "-"
"""``task_id`` of an rpc reply to a body whose task id could not be read (never stored)."""


class Dispatcher:
    """Answers each task once: every collaborator is given, none is filled in later."""

    def __init__(
        self,
        agent_id: str,
        handler: TaskHandler,
        records: TaskRecords,
        relay: AnswerRelay,
        publisher: Publisher,
        dead_letters: DeadLetters,
        counters: Counters,
        writes: WriteStats,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.agent_id = agent_id
        self.handler = handler
        self.records = records
        self.relay = relay
        self.publisher = publisher
        self.dead_letters = dead_letters
        self.counters = counters
        self.writes = writes
        self.clock = clock

    # --- entry points ----------------------------------------------------------------

    async def handle(self, inbound: Inbound) -> bytes:
        """Answer one task message; returns the ``task_result/v1`` bytes sent for it."""
        started = self.clock()
        t0 = time.perf_counter()
        self.counters.received += 1
        with tracing.consumer_span(inbound.subject, inbound.headers) as span:
            try:
                request = self.handler.decode(inbound)
            except Refusal as refusal:
                span.set_attribute("error.type", refusal.code.value)
                return await self._refuse(inbound, refusal, started, t0)
            token = task_id_var.set(request.task_id)
            span.set_attribute("messaging.message.id", request.task_id)
            try:
                return await self._answer(inbound, request, started, t0)
            finally:
                task_id_var.reset(token)

    async def give_up(self, inbound: Inbound, deliveries: int, why: str) -> None:
        """A durable task out of deliveries: dead-letter it and answer ``failed`` once."""
        try:
            task_id = read_envelope(inbound.data).readable_task_id
        except ProtocolError:
            task_id = None
        if task_id is not None and await self.records.get(task_id) is not None:
            return  # answered after all (a late delivery finished it)
        refusal = Refusal(
            ErrorCode.MAX_DELIVERIES, f"not answered after {deliveries} deliveries: {why}", task_id
        )
        await self.dead_letters.send(inbound, refusal)
        if task_id is None:
            return
        task_type = token_or(subjects.task_type_of(inbound.subject), "unknown")
        error = ErrorInfo(code=refusal.code, message=refusal.message[:4000])
        now = self.clock()
        result = self._result(task_id, task_type, "failed", now, 0.0, error=error)
        await self._settle(await self._store(task_id, result), None)

    def overloaded(self, inbound: Inbound) -> bytes:
        """The reply when no worker is free: ``rejected``/``overloaded``, not stored, retryable."""
        self.counters.overloaded += 1
        return self._unstored(
            inbound, "rejected", ErrorCode.OVERLOADED, "all workers busy; retry later"
        )

    def unavailable(self, inbound: Inbound, exc: Exception) -> bytes:
        """The rpc reply when the answer could not be stored or published (the bus is failing)."""
        return self._unstored(
            inbound, "failed", ErrorCode.INTERNAL_ERROR, f"result could not be recorded: {exc!r}"
        )

    def _unstored(
        self,
        inbound: Inbound,
        status: Literal["failed", "rejected"],
        code: ErrorCode,
        message: str,
    ) -> bytes:
        """A result that is sent to the caller only: the task may be retried with its id."""
        try:
            task_id = read_envelope(inbound.data).readable_task_id
        except ProtocolError:
            task_id = None
        task_type = token_or(subjects.task_type_of(inbound.subject), "unknown")
        error = ErrorInfo(code=code, message=message[:4000])
        now = self.clock()
        return encode(
            self._result(task_id or UNREADABLE_TASK_ID, task_type, status, now, 0.0, error=error)
        )

    # --- steps -----------------------------------------------------------------------

    async def _answer(
        self, inbound: Inbound, request: TaskRequest, started: datetime, t0: float
    ) -> bytes:
        task_type = TaskType(request.task_type)
        if request.deadline is not None and request.deadline <= started:
            if (stored := await self._stored(request.task_id)) is not None:
                return await self._settle(stored, request.reply_to)
            refusal = Refusal(
                ErrorCode.DEADLINE_EXCEEDED,
                f"deadline {request.deadline.isoformat()} passed before processing started",
                request.task_id,
            )
            return await self._refuse(inbound, refusal, started, t0, reply_to=request.reply_to)
        error: ErrorInfo | None = None
        outputs: list[Output] = []
        try:
            report, outputs = await self.handler.run(request, started)
        except ReadFailed:
            raise  # the bus, not the task: not answered (redelivered, or `unavailable`)
        except AgentError as exc:
            error = ErrorInfo(code=exc.code, message=exc.message[:4000])
        except Exception as exc:
            if (stored := await self._stored(request.task_id)) is not None:
                return await self._settle(stored, request.reply_to)
            log.exception("strategy %s failed on task %s", task_type, request.task_id)
            refusal = Refusal(
                ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:4000], request.task_id
            )
            await self.dead_letters.send(inbound, refusal)
            error = ErrorInfo(code=refusal.code, message=refusal.message)
        if error is not None:
            result = self._result(request.task_id, task_type, "failed", started, t0, error=error)
        else:
            result = self._result(
                request.task_id, task_type, "completed", started, t0, report=report
            )
        stored = await self._store(request.task_id, result, outputs)
        return await self._settle(stored, request.reply_to)

    async def _stored(self, task_id: str) -> tuple[TaskRecord, bool] | None:
        """The answer already stored for ``task_id`` (a read: only off the common path)."""
        record = await self.records.get(task_id)
        if record is None:
            return None
        self.counters.duplicates += 1
        log.info("task %s seen again; answering with its stored result", task_id)
        return record, False

    async def _refuse(
        self,
        inbound: Inbound,
        refusal: Refusal,
        started: datetime,
        t0: float,
        *,
        reply_to: str | None = None,
    ) -> bytes:
        await self.dead_letters.send(inbound, refusal)
        task_type = token_or(subjects.task_type_of(inbound.subject), "unknown")
        result = self._result(
            refusal.task_id or UNREADABLE_TASK_ID,
            task_type,
            "rejected",
            started,
            t0,
            error=ErrorInfo(code=refusal.code, message=refusal.message[:4000]),
        )
        if refusal.task_id is None:
            self._count_and_log(result)
            return encode(result)  # no id: nothing to answer on the results stream
        stored = await self._store(refusal.task_id, result)
        return await self._settle(stored, reply_to)

    async def _store(
        self, task_id: str, result: TaskResult, outputs: list[Output] | None = None
    ) -> tuple[TaskRecord, bool]:
        """Claim ``result`` as the task's answer; if another was stored first, that one wins.

        Returns the answer that counts and whether it is this one.
        """
        payload = encode(result)
        record, won = await self.records.claim(task_id, payload, outputs)
        if won:
            self._count_and_log(result)
        else:
            self.counters.duplicates += 1
            log.info("task %s seen again; answering with its stored result", task_id)
        return record, won

    async def _settle(self, stored: tuple[TaskRecord, bool], reply_to: str | None) -> bytes:
        """Answer with the stored answer (to ``reply_to`` too); its outputs and result are
        the relay's.

        ``won``: this agent just claimed it. Otherwise it was found claimed: only replied
        with, unless an agent from before the relay claimed it and never marked it sent.
        """
        record, won = stored
        payload = bytes(record.result)
        if won:
            self.writes.answers += 1
        elif record.unsent_legacy:
            await self.relay.send_one(record)
            self.writes.resent += 1
        else:
            self.writes.replied_only += 1
        if reply_to:
            await self.publisher.to_subject(reply_to, payload)
        return payload

    # --- helpers -----------------------------------------------------------------------

    def _result(
        self,
        task_id: str,
        task_type: str,
        status: Literal["completed", "failed", "rejected"],
        started: datetime,
        t0: float,
        *,
        report: Report | None = None,
        error: ErrorInfo | None = None,
    ) -> TaskResult:
        return TaskResult(
            task_id=task_id,
            task_type=task_type,
            agent_id=self.agent_id,
            status=status,
            started_at=started,
            completed_at=self.clock(),
            duration_ms=round(max(0.0, (time.perf_counter() - t0) * 1000.0), 3) if t0 else 0.0,
            report=report,
            error=error,
        )

    def _count_and_log(self, result: TaskResult) -> None:
        if result.status == "completed":
            self.counters.completed += 1
        elif result.status == "failed":
            self.counters.failed += 1
        else:
            self.counters.rejected += 1
        log.info(
            "task %s %s %s in %.1f ms%s",
            result.task_id,
            result.task_type,
            result.status,
            result.duration_ms,
            f" ({result.error.code})" if result.error else "",
            extra={"status": result.status, "task_type": result.task_type},
        )
