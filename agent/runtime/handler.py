"""One task's work: decode it, gather what the strategy reads, run it, make its outputs.

The ``TaskHandler`` knows nothing of storing or publishing: the dispatcher does that once
per task id with what this returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, TypeVar

import msgspec

from agent.config import Settings
from agent.errors import PayloadTooLarge
from agent.learning.state import LearningState
from agent.planning.handoff import handoff
from agent.runtime.counters import ComputeStats
from agent.runtime.directives import DirectiveStore, Stored
from agent.runtime.inbound import Inbound, Refusal
from agent.runtime.learning import LearningStore
from agent.runtime.outbox import IssuedItems, Output, PlanIssued, PlanPredictionsOut, Publish
from agent.runtime.predictions import ENCODER as PREDICTION_ENCODER
from agent.runtime.predictions import plan_predictions
from agent.runtime.samples import SampleSource
from agent.runtime.strategy_processes import StrategyProcesses
from agent.store import MetricStore
from agent.strategies import Report, Strategy, TaskContext
from protocols import (
    ErrorCode,
    ProtocolError,
    StrategicDirective,
    TaskParams,
    TaskRequest,
    TaskType,
    decode,
    encode,
    read_envelope,
    subjects,
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class DirectiveSource(Protocol):
    async def in_force(self, now: datetime) -> StrategicDirective | None: ...


class ReadFailed(Exception):
    """The directive or the learning state could not be read: the bus failed, not the task
    (the task is not answered: redelivered, or told ``unavailable``)."""


class Known(NamedTuple):
    """What this agent read last: a task's strategy may start on it (``TaskHandler.run``)."""

    directive: Stored
    learning: LearningState
    learning_seq: int


T = TypeVar("T")


async def _reading(reads: Awaitable[T]) -> T:
    try:
        return await reads
    except Exception as exc:
        raise ReadFailed(f"{type(exc).__name__}: {exc}") from exc


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


SEND_TURNS = 4
"""Loop turns a task yields after asking for its reads (``TaskHandler.run``): the read
tasks start, put their requests in the client's buffer, and its flusher writes them."""
INLINE_BUDGET_S = 0.010
"""The most CPU a small task's strategy may take to be run on the event loop (``_compute``):
about what 20 metrics of a few samples each cost; the loop serves nothing else meanwhile."""
INLINE_WALL_S = 0.050
"""The longest a small task's strategy may take by the clock and still count as quick: CPU
time alone would call a strategy that waits (on a lock, a sleep) quick, while the clock
alone calls one slow that merely waited for the GIL in its thread or for a core."""


def _timed(strategy: Strategy, ctx: TaskContext) -> tuple[Report, float, float]:
    """The strategy's report, the CPU seconds of the thread that ran it, and the seconds it
    took by the clock."""
    c0, t0 = time.thread_time(), time.perf_counter()
    report = strategy(ctx)
    return report, time.thread_time() - c0, time.perf_counter() - t0


def _quick(cpu_s: float, wall_s: float) -> bool:
    return cpu_s <= INLINE_BUDGET_S and wall_s <= INLINE_WALL_S


def inline_samples(params: TaskParams, limit: int) -> int:
    """How many samples a task carries inline (a scalar metric is one), counted up to just
    past ``limit``."""
    count = len(params.samples)
    if count > limit:
        return count
    for value in params.metrics.values():
        count += len(value) if isinstance(value, list) else 1
        if count > limit:
            break
    return count


def answer_outputs(
    report: Report, settings: Settings, task_id: str, service: str | None
) -> list[Output]:
    """The plan's predictions (one value), plan, baseline and the plan's size, for a report
    that recommends: what an answer sends besides its result (pure: the bench times it)."""
    made = handoff(report, task_id=task_id, agent_id=settings.agent_id, service=service)
    if made is None:
        return []
    plan, baseline = made
    predictions = plan_predictions(plan, baseline, task_id)
    outputs: list[Output] = []
    if predictions.predictions:
        payload = msgspec.Raw(PREDICTION_ENCODER.encode(predictions))
        outputs.append(PlanPredictionsOut(plan_id=plan.plan_id, payload=payload))
    outputs.append(
        Publish(
            subject=subjects.plans(settings.hephaestus_id),
            payload=msgspec.Raw(encode(plan)),
            msg_id=plan.plan_id,
        )
    )
    outputs.append(
        Publish(
            subject=subjects.baselines(settings.athena_id),
            payload=msgspec.Raw(encode(baseline)),
            msg_id=baseline.baseline_id,
        )
    )
    outputs.append(PlanIssued(plan_id=plan.plan_id, issued=IssuedItems(len(plan.items))))
    return outputs


class TaskHandler:
    def __init__(
        self,
        settings: Settings,
        routes: Mapping[TaskType, Strategy],
        samples: SampleSource,
        directives: DirectiveStore,
        learning: LearningStore,
        processes: StrategyProcesses | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.samples = samples
        self.directives = directives
        self.learning = learning
        self.processes = processes
        """Worker processes that run the strategies; None: this process does (``_compute``)."""
        self._computing = asyncio.Semaphore(settings.max_strategy_threads)
        """Strategies computing at once in this process (without worker processes)."""
        self.compute = ComputeStats()
        self._quick: dict[TaskType, bool] = {}
        """By task type: whether its last small task was quick (``_compute``)."""

    def decode(self, inbound: Inbound) -> TaskRequest:
        """The task a message carries, or a ``Refusal`` saying why it is none."""
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

    async def run(self, request: TaskRequest, started: datetime) -> tuple[Report, list[Output]]:
        """The strategy's report on the task and the outputs it calls for, with the directive
        in force and what was learnt as they stood when the task started.

        Those two reads are a round trip; the strategy does not wait for it when this agent
        read them before: it starts on what it read last (``_known``) while the reads
        ``confirm`` that nothing was written since, and runs again on the new values when
        something was (a directive, a verification or a feedback between two tasks: rare;
        not the plans counted off the answer path meanwhile, which a task may not see).

        Raises ``ReadFailed`` when the reads fail (the bus, not the task), else what the
        sources and the strategy raise (``AgentError``: the task failed).
        """
        known = self._known()
        if known is None:
            directive, learning = await _reading(self._read(started))
            return await self._run(self._context(request, started, directive, learning))
        check = asyncio.ensure_future(_reading(self._confirm(known, started)))
        for _ in range(SEND_TURNS):  # the reads reach the socket before a strategy on the
            await asyncio.sleep(0)  # loop holds it: their answers wait for us meanwhile
        try:
            guess = self._context(
                request, started, known.directive.in_force(started), known.learning
            )
            try:
                out = await self._run(guess)
            except Exception:
                if (fresh := await check) is None:
                    raise
            else:
                if (fresh := await check) is None:
                    return out
            self.compute.reruns += 1
            return await self._run(self._context(request, started, *fresh))
        finally:
            check.cancel()

    def _known(self) -> Known | None:
        """What this agent read last of the directive and the learning state, or None."""
        directive = self.directives.known
        learning = self.learning.current()
        if directive is None or learning is None:
            return None
        return Known(directive, *learning)

    async def _read(self, started: datetime) -> tuple[StrategicDirective | None, LearningState]:
        """The directive in force and what was learnt (the two reads at once)."""
        directive, learning = await asyncio.gather(
            self.directives.in_force(started), self.learning.snapshot()
        )
        return directive, learning

    async def _confirm(
        self, known: Known, started: datetime
    ) -> tuple[StrategicDirective | None, LearningState] | None:
        """None when ``known`` is still what is stored, else what is (the two reads at once)."""
        directive, learning = await asyncio.gather(
            self.directives.confirm(known.directive), self.learning.confirm(known.learning_seq)
        )
        if learning is not None and learning.same_but_plans_counted(known.learning):
            learning = None  # only the plans counted since: not worth the strategy again
        if directive is None and learning is None:
            return None
        return (directive or known.directive).in_force(started), learning or known.learning

    def _context(
        self,
        request: TaskRequest,
        started: datetime,
        directive: StrategicDirective | None,
        learning: LearningState,
    ) -> TaskContext:
        return configured_context(
            self.settings,
            task_id=request.task_id,
            task_type=TaskType(request.task_type),
            now=started,
            params=request.params,
            directive=directive,
            learning=learning,
        )

    async def _run(self, ctx: TaskContext) -> tuple[Report, list[Output]]:
        """The strategy's report on the task's samples and the outputs it calls for."""
        store, source_report = await self.samples.for_task(
            ctx.task_type, ctx.params, ctx.now.timestamp()
        )
        if store is not None:
            ctx = dataclasses.replace(ctx, store=store, source_report=source_report)
        small = store is None and self._small(ctx.params)
        report = await self._compute(ctx, small)
        return report, answer_outputs(report, self.settings, ctx.task_id, ctx.params.service)

    def _small(self, params: TaskParams) -> bool:
        """Whether a task on its inline data is small enough to compute on the event loop
        (``inline_strategy_max_samples``)."""
        limit = self.settings.inline_strategy_max_samples
        return limit > 0 and inline_samples(params, limit) <= limit

    async def _compute(self, ctx: TaskContext, small: bool) -> Report:
        """The strategy's report: in a worker process when there are some (the loop never
        waits on it). Else on the event loop for a ``small`` task of a type whose
        last small task was quick (``INLINE_BUDGET_S`` of CPU, ``INLINE_WALL_S`` by the
        clock: the thread hand-off and the GIL ping-pong with the loop cost more than such a
        strategy), else in a worker thread. Judged on CPU time, a type does not fall back to
        threads because the machine was busy (another process on its core, the GIL held by
        the loop while it ran in a thread), where it would then cost more still.

        A type's first small task runs in a thread and is timed, so a strategy that is slow
        whatever its data (a stub that sleeps, a pathological input) never blocks the loop
        (heartbeats, acks, other tasks' replies) beyond one overrun, after which its type
        goes back to threads until a small task is quick there again.
        """
        compute = self.compute
        if self.processes is not None:  # bounded by the workers' own capacity
            compute.processes += 1
            t0 = time.perf_counter()
            report, cpu_s = await self.processes.run(ctx.task_type, ctx)
            compute.cpu_s += cpu_s
            compute.took(time.perf_counter() - t0)
            return report
        strategy = self.routes[ctx.task_type]
        async with self._computing:
            if small and self._quick.get(ctx.task_type, False):
                compute.inline += 1
                c0, t0 = time.thread_time(), time.perf_counter()
                try:
                    return strategy(ctx)
                finally:
                    cpu_s, wall_s = time.thread_time() - c0, time.perf_counter() - t0
                    compute.cpu_s += cpu_s
                    compute.took(wall_s)
                    if not _quick(cpu_s, wall_s):
                        self._quick[ctx.task_type] = False
            compute.threads += 1
            report, cpu_s, wall_s = await asyncio.to_thread(_timed, strategy, ctx)
            compute.cpu_s += cpu_s
            compute.took(wall_s)
            if small:
                self._quick[ctx.task_type] = _quick(cpu_s, wall_s)
            return report
