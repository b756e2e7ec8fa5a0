"""The one dispatcher both transports share: validate, route, answer once, dead-letter refusals.

Order matters and is the contract's: a body that cannot be read is refused before
anything else; a valid task already answered is answered again with the stored bytes
(redelivery and duplicates never make a second, different result); only then are the
deadline checked and the strategy run. Every refusal is dead-lettered with the original
bytes; the process never dies of input.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import msgspec
from nats.aio.msg import Msg

from agent.analysis.series import parse_window
from agent.config import Settings
from agent.errors import AgentError, InvalidParams, PayloadTooLarge
from agent.learning.state import LearningState
from agent.planning.handoff import handoff
from agent.runtime.counters import Counters
from agent.runtime.predictions import ENCODER as PREDICTION_ENCODER
from agent.runtime.predictions import Predictions, prediction_records
from agent.runtime.publisher import Publisher
from agent.runtime.task_records import Output, TaskRecord, TaskRecords
from agent.store import MetricStore
from agent.strategies import ROUTES, Report, Strategy, TaskContext, task_window
from agent.telemetry import tracing
from agent.telemetry.logs import task_id_var
from protocols import (
    DeadLetter,
    ErrorCode,
    ErrorInfo,
    Message,
    ProtocolError,
    StrategicDirective,
    TaskParams,
    TaskRequest,
    TaskResult,
    TaskType,
    decode,
    encode,
    read_envelope,
    subjects,
    to_builtins,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
M = TypeVar("M", bound=Message)


class DirectiveSource(Protocol):
    async def in_force(self, now: datetime) -> StrategicDirective | None: ...


class MetricSource(Protocol):
    async def fetch_window(
        self, settings: Settings, window_s: float, end: float, max_points: int = ...
    ) -> tuple[MetricStore, dict[str, Any]]: ...


class LearningSource(Protocol):
    async def snapshot(self) -> LearningState: ...

    async def plan_issued(self, plan_id: str, items: int) -> None: ...


DEAD_LETTER_OVERHEAD = 16 * 1024
"""Room left in a dead letter for its other fields and the headers of the refused message."""
UNREADABLE_TASK_ID = "-"
"""``task_id`` of an rpc reply to a body whose task id could not be read (never stored)."""


def configured_context(
    settings: Settings,
    *,
    task_id: str,
    task_type: TaskType,
    now: datetime,
    params: TaskParams,
    directive: StrategicDirective | None = None,
    learning: LearningState | None = None,
    store: MetricStore | None = None,
) -> TaskContext:
    """A strategy's context with what the configuration sets: default window, targets,
    business weights and scaling triggers (tasks, the monitor and ``analyze`` alike)."""
    return TaskContext(
        task_id=task_id,
        task_type=task_type,
        now=now,
        params=params,
        default_window=settings.default_window,
        target_overrides=settings.targets,
        business_weights=settings.business_weights,
        scaling_triggers=settings.scaling_triggers,
        directive=directive,
        learning=learning,
        store=store,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One task message as either transport received it."""

    subject: str
    data: bytes
    headers: Mapping[str, str] | None
    transport: Literal["jetstream", "rpc", "core"]
    message_ref: str | None = None
    """Where it came from (``stream:seq``), so a redelivered refusal is dead-lettered once."""


class Refusal(Exception):
    """Input the agent will not process: answered ``rejected`` and dead-lettered."""

    def __init__(self, code: ErrorCode, message: str, task_id: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.task_id = task_id


def _token_or(value: str, fallback: str) -> str:
    return value if value and all(c.isalnum() or c in "_-" for c in value) else fallback


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        records: TaskRecords,
        *,
        routes: Mapping[TaskType, Strategy] = ROUTES,
        clock: Clock = utc_now,
        counters: Counters | None = None,
        directives: DirectiveSource | None = None,
        predictions: Predictions | None = None,
        learning: LearningSource | None = None,
        live_store: MetricStore | None = None,
        prometheus: MetricSource | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.records = records
        self.routes = routes
        self.clock = clock
        self.counters = counters or Counters()
        self.directives = directives
        self.predictions = predictions
        self.learning = learning
        self.live_store = live_store
        self.prometheus = prometheus
        self._computing = asyncio.Semaphore(settings.max_strategy_threads)

    # --- entry points ----------------------------------------------------------------

    async def handle(self, inbound: Inbound) -> bytes:
        """Answer one task message; returns the ``task_result/v1`` bytes sent for it."""
        started = self.clock()
        t0 = time.perf_counter()
        self.counters.received += 1
        with tracing.consumer_span(inbound.subject, inbound.headers) as span:
            try:
                request = self._validate(inbound)
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
        await self.dead_letter(inbound, refusal)
        if task_id is None:
            return
        task_type = _token_or(subjects.task_type_of(inbound.subject), "unknown")
        error = ErrorInfo(code=refusal.code, message=refusal.message[:4000])
        now = self.clock()
        result = self._result(task_id, task_type, "failed", now, 0.0, error=error)
        stored = await self._store(task_id, result)
        await self._settle(task_id, task_type, stored, None)

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
        task_type = _token_or(subjects.task_type_of(inbound.subject), "unknown")
        error = ErrorInfo(code=code, message=message[:4000])
        now = self.clock()
        return encode(
            self._result(task_id or UNREADABLE_TASK_ID, task_type, status, now, 0.0, error=error)
        )

    # --- steps -----------------------------------------------------------------------

    def _validate(self, inbound: Inbound) -> TaskRequest:
        size = len(inbound.data)
        if size > self.settings.max_payload_bytes:
            err = PayloadTooLarge(size, self.settings.max_payload_bytes)
            raise Refusal(err.code, err.message, None)
        try:
            envelope = read_envelope(inbound.data)
            request = decode(TaskRequest, inbound.data, envelope)
        except ProtocolError as exc:
            raise Refusal(exc.code, exc.message, exc.task_id) from None
        subject_type = subjects.task_type_of(inbound.subject)
        if TaskType.parse(subject_type) is None:
            raise Refusal(
                ErrorCode.UNKNOWN_TASK_TYPE,
                f"unknown task type {subject_type[:64]!r}; known: {', '.join(TaskType)}",
                request.task_id,
            )
        if request.task_type != subject_type:
            raise Refusal(
                ErrorCode.TASK_TYPE_MISMATCH,
                f"body says task_type {request.task_type!r} but the subject says "
                f"{subject_type!r}; the subject is authoritative",
                request.task_id,
            )
        return request

    async def _answer(
        self, inbound: Inbound, request: TaskRequest, started: datetime, t0: float
    ) -> bytes:
        stored = await self.records.get(request.task_id)
        if stored is not None:
            self.counters.duplicates += 1
            log.info("task %s seen again; answering with its stored result", request.task_id)
            return await self._settle(request.task_id, request.task_type, stored, request.reply_to)
        task_type = TaskType(request.task_type)
        if request.deadline is not None and request.deadline <= started:
            refusal = Refusal(
                ErrorCode.DEADLINE_EXCEEDED,
                f"deadline {request.deadline.isoformat()} passed before processing started",
                request.task_id,
            )
            return await self._refuse(inbound, refusal, started, t0, reply_to=request.reply_to)
        ctx = configured_context(
            self.settings,
            task_id=request.task_id,
            task_type=task_type,
            now=started,
            params=request.params,
            directive=await self.directives.in_force(started) if self.directives else None,
            learning=await self.learning.snapshot() if self.learning else None,
        )
        error: ErrorInfo | None = None
        outputs: list[Output] = []
        try:
            store, source_report = await self._source_store(task_type, request, started)
            if store is not None:
                ctx = dataclasses.replace(ctx, store=store, source_report=source_report)
            async with self._computing:
                report = await asyncio.to_thread(self.routes[task_type], ctx)
            outputs = self._outputs(report, request.task_id, request.params.service)
        except AgentError as exc:
            error = ErrorInfo(code=exc.code, message=exc.message[:4000])
        except Exception as exc:
            log.exception("strategy %s failed on task %s", task_type, request.task_id)
            refusal = Refusal(
                ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:4000], request.task_id
            )
            await self.dead_letter(inbound, refusal)
            error = ErrorInfo(code=refusal.code, message=refusal.message)
        if error is not None:
            result = self._result(request.task_id, task_type, "failed", started, t0, error=error)
        else:
            result = self._result(
                request.task_id, task_type, "completed", started, t0, report=to_builtins(report)
            )
        stored = await self._store(request.task_id, result, outputs)
        return await self._settle(request.task_id, task_type, stored, request.reply_to)

    async def _refuse(
        self,
        inbound: Inbound,
        refusal: Refusal,
        started: datetime,
        t0: float,
        *,
        reply_to: str | None = None,
    ) -> bytes:
        await self.dead_letter(inbound, refusal)
        task_type = _token_or(subjects.task_type_of(inbound.subject), "unknown")
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

    async def _source_store(
        self, task_type: TaskType, request: TaskRequest, started: datetime
    ) -> tuple[MetricStore | None, dict[str, Any]]:
        """The samples a task is judged on: its inline data, the KPI store, or Prometheus.

        ``params.source`` decides; without one, inline data is used when the task has
        some, else ``default_source`` (auto: Prometheus when configured, else the KPI
        store when ingestion is on, else nothing: ``insufficient_data``). Live data is
        the task's window up to now. None: build from inline data.
        """
        params = request.params
        source = params.source or (
            "inline" if params.metrics or params.samples else self.settings.default_source
        )
        if source == "auto":
            live = "kpi" if self.live_store is not None else "inline"
            source = "prometheus" if self.prometheus is not None else live
        if source == "inline":
            return None, {}
        window_s = parse_window(task_window(task_type, params, self.settings.default_window))
        end = started.timestamp()
        if source == "prometheus":
            if self.prometheus is None:
                raise InvalidParams("source prometheus: no prometheus_url is configured")
            return await self.prometheus.fetch_window(self.settings, window_s, end)
        if source == "kpi":
            if self.live_store is None:
                raise InvalidParams("source kpi: KPI ingestion is disabled (kpi_enabled)")
            return self.live_store.snapshot(window_s=window_s, end=end), {
                "kpi": {"window_s": window_s}
            }
        raise InvalidParams(f"unknown source {source!r}: use inline, kpi or prometheus")

    def _outputs(self, report: Report, task_id: str, service: str | None) -> list[Output]:
        """Plan, baseline and predictions of a report that recommends something."""
        made = handoff(report, task_id=task_id, agent_id=self.settings.agent_id, service=service)
        if made is None:
            return []
        plan, baseline = made
        outputs = [
            Output(
                kind="prediction",
                target=record.recommendation_id,
                payload=msgspec.Raw(PREDICTION_ENCODER.encode(record)),
            )
            for record in prediction_records(plan, baseline, task_id)
        ]
        outputs.append(
            Output(
                kind="publish",
                target=subjects.plans(self.settings.hephaestus_id),
                payload=msgspec.Raw(encode(plan)),
                msg_id=plan.plan_id,
            )
        )
        outputs.append(
            Output(
                kind="publish",
                target=subjects.baselines(self.settings.athena_id),
                payload=msgspec.Raw(encode(baseline)),
                msg_id=baseline.baseline_id,
            )
        )
        outputs.append(
            Output(
                kind="plan_issued",
                target=plan.plan_id,
                payload=msgspec.Raw(msgspec.json.encode({"items": len(plan.items)})),
            )
        )
        return outputs

    async def _store(
        self, task_id: str, result: TaskResult, outputs: list[Output] | None = None
    ) -> tuple[TaskRecord, int]:
        """Store ``result`` as the task's answer; if another was stored first, that one wins."""
        payload = encode(result)
        record, revision = await self.records.claim(task_id, payload, outputs)
        if bytes(record.result) == payload:
            self._count_and_log(result)
        else:
            self.counters.duplicates += 1
        return record, revision

    async def _settle(
        self, task_id: str, task_type: str, stored: tuple[TaskRecord, int], reply_to: str | None
    ) -> bytes:
        """Publish the stored answer once to the results stream, and send it to ``reply_to``."""
        record, revision = stored
        payload = bytes(record.result)
        if not record.published:
            # before the result (a result means all was sent), in two waves: the predictions
            # are stored before the baseline that lets Athena verify them goes out
            predictions = [o for o in record.outputs if o.kind == "prediction"]
            await asyncio.gather(*(self._send(o) for o in predictions))
            await asyncio.gather(*(self._send(o) for o in record.outputs if o.kind != "prediction"))
            await self.publisher.to_stream(
                subjects.results(self.settings.agent_id, task_type),
                payload,
                msg_id=subjects.result_msg_id(task_id),
            )
            await self.records.mark_published(task_id, record, revision)
        if reply_to:
            await self.publisher.to_subject(reply_to, payload)
        return payload

    async def _send(self, output: Output) -> None:
        """One output of a stored answer; each is idempotent (msg id, KV key), so a retry of
        the whole answer after a crash sends nothing twice."""
        if output.kind == "prediction" and self.predictions is not None:
            await self.predictions.put_raw(output.target, bytes(output.payload))
        elif output.kind == "publish":
            await self.publisher.to_stream(
                output.target, bytes(output.payload), msg_id=output.msg_id
            )
        elif output.kind == "plan_issued" and self.learning is not None:
            items = int(msgspec.json.decode(bytes(output.payload))["items"])
            await self.learning.plan_issued(output.target, items)

    async def decode_or_dead_letter(self, msg: Msg, stream: str, cls: type[M]) -> M | None:
        """A durable message of an inbound stream as ``cls``, or None once dead-lettered."""
        try:
            return decode(cls, msg.data)
        except ProtocolError as exc:
            seq = msg.metadata.sequence.stream
            await self.dead_letter(
                Inbound(msg.subject, msg.data, msg.headers, "jetstream", f"{stream}:{seq}"),
                Refusal(exc.code, exc.message, None),
            )
            return None

    async def dead_letter(self, inbound: Inbound, refusal: Refusal) -> None:
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
        await self.publisher.to_stream(
            subjects.deadletter(self.settings.agent_id), encode(letter), msg_id=msg_id
        )
        self.counters.dead_lettered += 1
        log.warning(
            "dead-lettered a message on %s: %s (%s)",
            inbound.subject,
            refusal.code.value,
            refusal.message[:200],
        )

    # --- helpers -----------------------------------------------------------------------

    def _result(
        self,
        task_id: str,
        task_type: str,
        status: Literal["completed", "failed", "rejected"],
        started: datetime,
        t0: float,
        *,
        report: dict[str, object] | None = None,
        error: ErrorInfo | None = None,
    ) -> TaskResult:
        return TaskResult(
            task_id=task_id,
            task_type=task_type,
            agent_id=self.settings.agent_id,
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
