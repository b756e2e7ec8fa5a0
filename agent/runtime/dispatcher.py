"""The one dispatcher both transports share: validate, route, answer once, dead-letter refusals.

Order matters and is the contract's: a body that cannot be read is refused before
anything else; a valid task already answered is answered again with the stored bytes
(redelivery and duplicates never make a second, different result). Every refusal is
dead-lettered with the original bytes; the process never dies of input.

The work itself is the ``TaskHandler``'s (decode, strategy, outputs); this module stores
the answer once per task id and sends it through the ``Outbox``. What an answer costs,
in acknowledged round trips (each a batch of writes awaited together):

1. the claim (``TaskRecords.claim``, a KV create): the task is not read first — the
   create fails when an answer is stored already, and only then is that one read. (A
   duplicate is thus computed again before it is recognised: the price of sparing every
   other task a read. An expired deadline or a failing strategy reads first, so they are
   never refused or dead-lettered for a task that was answered.)
2. the plan's predictions (one KV value), when the report recommends: stored before the
   baseline that lets Athena verify them goes out;
3. everything else at once: plan, baseline, the plan-issued event and the result.

Nothing marks the answer "published" afterwards. A claim found by a later delivery
(redelivery after a crash, a duplicate, a second replica) is sent again in full while it
is younger than the streams' duplicate window (less a margin): ``Nats-Msg-Id`` stores
each message once, and an answer a crash cut short is completed. An older one is only
replied with: re-sent, it would be stored twice. The one answer this can leave unsent
is one whose agent died between its claim and its last ack *and* that nothing delivered
again for the whole window — a durable task is redelivered after ``ack_wait`` by any
running replica, and an rpc caller retries at once, both well within it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal

from agent.errors import AgentError
from agent.runtime.counters import Counters
from agent.runtime.dead_letters import DeadLetters
from agent.runtime.handler import Clock, TaskHandler, utc_now
from agent.runtime.inbound import Inbound, Refusal, token_or
from agent.runtime.outbox import Outbox, Output, first
from agent.runtime.publisher import Publisher
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
RESEND_MARGIN_S = 60.0
"""Of the duplicate window, what a re-send leaves unused (at most half of it): clock skew
between replicas, and the time between a claim and its publishes."""


def resend_within(duplicate_window_s: float) -> float:
    """How old a claim may be for its answer to be sent again safely: the duplicate window
    (the shortest of the streams an answer goes to) less ``RESEND_MARGIN_S``."""
    return max(0.0, duplicate_window_s - min(RESEND_MARGIN_S, duplicate_window_s / 2))


@dataclass(slots=True)
class WriteStats:
    """What the answers this agent stored cost on the bus (``$SRV.STATS``, ``writes``)."""

    answers: int = 0
    """Answers claimed by this agent and sent."""
    acked_writes: int = 0
    """Their acknowledged writes: claim, outputs and result."""
    acked_round_trips: int = 0
    """Their sequential waits for acknowledgements (writes awaited together count once)."""
    resent: int = 0
    """Answers found claimed and sent again (within the duplicate window)."""
    replied_only: int = 0
    """Answers found claimed and only replied with (sent before, or past the window)."""

    def snapshot(self) -> dict[str, float]:
        out: dict[str, float] = asdict(self)
        if self.answers:
            out["acked_writes_per_answer"] = round(self.acked_writes / self.answers, 3)
            out["acked_round_trips_per_answer"] = round(self.acked_round_trips / self.answers, 3)
        return out


class Dispatcher:
    """Answers each task once: every collaborator is given, none is filled in later."""

    def __init__(
        self,
        agent_id: str,
        handler: TaskHandler,
        records: TaskRecords,
        outbox: Outbox,
        publisher: Publisher,
        dead_letters: DeadLetters,
        counters: Counters,
        *,
        clock: Clock = utc_now,
        resend_within_s: float = resend_within(600.0),
    ) -> None:
        self.agent_id = agent_id
        self.handler = handler
        self.records = records
        self.outbox = outbox
        self.publisher = publisher
        self.dead_letters = dead_letters
        self.counters = counters
        self.clock = clock
        self.resend_within_s = resend_within_s
        """A claim younger than this is sent again in full when found (``resend_within``)."""
        self.writes = WriteStats()

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
        await self._settle(task_id, task_type, await self._store(task_id, result), None)

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
                return await self._settle(request.task_id, task_type, stored, request.reply_to)
            refusal = Refusal(
                ErrorCode.DEADLINE_EXCEEDED,
                f"deadline {request.deadline.isoformat()} passed before processing started",
                request.task_id,
            )
            return await self._refuse(inbound, refusal, started, t0, reply_to=request.reply_to)
        ctx = await self.handler.context(request, started)
        error: ErrorInfo | None = None
        outputs: list[Output] = []
        try:
            report, outputs = await self.handler.run(ctx)
        except AgentError as exc:
            error = ErrorInfo(code=exc.code, message=exc.message[:4000])
        except Exception as exc:
            if (stored := await self._stored(request.task_id)) is not None:
                return await self._settle(request.task_id, task_type, stored, request.reply_to)
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
        return await self._settle(request.task_id, task_type, stored, request.reply_to)

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
        return await self._settle(refusal.task_id, task_type, stored, reply_to)

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

    async def _settle(
        self, task_id: str, task_type: str, stored: tuple[TaskRecord, bool], reply_to: str | None
    ) -> bytes:
        """Send the stored answer (outputs, then the result on the results stream) unless it
        was sent for sure, and send it to ``reply_to``.

        ``won``: this agent just claimed it (one round trip so far). Otherwise it was found
        claimed: sent again while that is safe (see the module doc), else only replied.
        """
        record, won = stored
        payload = bytes(record.result)
        if won:
            trips = await self._send(task_id, task_type, record)
            self.writes.answers += 1
            self.writes.acked_writes += 2 + len(record.outputs)
            self.writes.acked_round_trips += 1 + trips
        elif self._may_resend(record):
            await self._send(task_id, task_type, record)
            self.writes.resent += 1
        else:
            self.writes.replied_only += 1
        if reply_to:
            await self.publisher.to_subject(reply_to, payload)
        return payload

    def _may_resend(self, record: TaskRecord) -> bool:
        """Whether a claimed answer found again may be sent again: every copy is deduped."""
        if record.published:  # an earlier agent marked it sent
            return False
        if record.claimed_at is None:  # an earlier agent's record, never marked: not sent
            return True
        return time.time() - record.claimed_at < self.resend_within_s

    async def _send(self, task_id: str, task_type: str, record: TaskRecord) -> int:
        """The outputs and the result, in as few waves as the order allows; returns the waves.

        The predictions go first (acknowledged before the baseline lets Athena verify
        them); plan, baseline, plan-issued event and result go together after them.
        """
        before = [o for o in record.outputs if first(o)]
        after = [o for o in record.outputs if not first(o)]
        if before:
            await asyncio.gather(*(self.outbox.send(o) for o in before))
        await asyncio.gather(
            *(self.outbox.send(o) for o in after),
            self.publisher.to_stream(
                subjects.results(self.agent_id, task_type),
                bytes(record.result),
                msg_id=subjects.result_msg_id(task_id),
            ),
        )
        return 2 if before else 1

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
