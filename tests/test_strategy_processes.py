"""Strategies in worker processes: the same reports as in the agent's process, the learning
state sent as changes, errors re-raised as the dispatcher tells them apart, and workers
that die replaced. The routes are ``tests.worker_routes``: a worker imports them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from agent.config import Settings
from agent.errors import (
    AgentError,
    InsufficientData,
    InvalidParams,
    PayloadTooLarge,
    SourceUnavailable,
)
from agent.learning.state import LearningState, OutcomeSummary, PlanProgress, Totals
from agent.runtime.handler import configured_context
from agent.runtime.node import AgentNode
from agent.runtime.strategy_processes import StrategyProcesses, WorkerDied, learning_delta
from agent.runtime.strategy_worker import READY, apply_delta, read_frame, write_frame
from agent.store import store_from_params
from agent.strategies import ROUTES, Report, TaskContext
from protocols import AnalysisReport, ErrorCode, StrategicDirective, TaskParams, TaskType
from tests.payloads import task as task_body
from tests.test_node_e2e import rpc, stream_messages
from tests.worker_routes import TEST_ROUTES, learning_digest

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = Settings(agent_id="worker-tests", targets={"api_response_time": 150.0})
API = TaskType.API_OPTIMIZATION
PLANNING = TaskType.STRATEGIC_BACKEND_PLANNING
ECHO = TaskType.CHAT_BACKEND_OPTIMIZATION  # echo_learning
INVALID = TaskType.PROMPT_FEED_BACKEND_OPTIMIZATION
SOURCE_DOWN = TaskType.REPORT_GENERATION_OPTIMIZATION
BOOM = TaskType.WEBSOCKET_SCALING_OPTIMIZATION
NAP = TaskType.CACHE_OPTIMIZATION


def series(base: float, slope: float, n: int) -> list[tuple[datetime | float, float]]:
    start = NOW.timestamp() - 300.0 * n
    return [(start + 300.0 * i, base + slope * i) for i in range(n)]


CHEAP = TaskParams(  # as scripts/bench.py's: small, off target, the report recommends
    window="1h",
    metrics={
        "api_response_time": series(100.0, 2.0, 12),
        "api_availability": 99.5,
        "error_rate": 2.0,
    },
)
PLAN = TaskParams(
    window="1d",
    metrics={
        "api_response_time": series(150.0, 0.5, 96),
        "error_rate": series(1.5, 0.01, 96),
        "api_availability": 99.5,
        "cpu_utilization": series(70.0, 0.1, 96),
    },
)


def context(task_type: TaskType, params: TaskParams = CHEAP, **fields: Any) -> TaskContext:
    return configured_context(
        SETTINGS,
        task_id=f"t-{uuid.uuid4().hex[:8]}",
        task_type=task_type,
        now=NOW,
        params=params,
        **fields,
    )


def summary(approach: str, metric: str, n: int) -> OutcomeSummary:
    return OutcomeSummary(
        approach_key=approach,
        metric=metric,
        count=n,
        successes=n // 2,
        ratio_count=n,
        ratio_sum=0.9 * n,
        ratio_sq_sum=0.85 * n,
        ratios=[0.9] * n,
        applied=[f"v-{approach}-{i}" for i in range(n)],
    )


def progress(plan_id: str, items: int) -> PlanProgress:
    return PlanProgress(plan_id=plan_id, statuses={f"r{i}": "implemented" for i in range(items)})


def learned() -> LearningState:
    pair = ("horizontal_scaling", "api_response_time")
    return LearningState(
        summaries={pair: summary(*pair, 12)},
        plans={"p-1": progress("p-1", 2)},
        infeasible={"caching|api_response_time": "no budget this quarter"},
        totals=Totals(verifications=12, plans_issued=3, items_issued=7),
    )


async def echoed(procs: StrategyProcesses, **fields: Any) -> str:
    """The digest of the learning state the worker gave ``echo_learning``."""
    report, _ = await procs.run(ECHO, context(ECHO, **fields))
    assert isinstance(report, AnalysisReport)
    return report.analysis_type


def worker_pid(procs: StrategyProcesses, slot: int = 0) -> int:
    return procs._slots[slot].started.result().proc.pid


@contextlib.asynccontextmanager
async def started(size: int) -> AsyncIterator[StrategyProcesses]:
    processes = StrategyProcesses.for_routes(size, TEST_ROUTES)
    assert processes is not None
    processes.start()
    try:
        yield processes
    finally:
        await processes.close()


@pytest.fixture(scope="module")
async def procs() -> AsyncIterator[StrategyProcesses]:
    """Two workers: each holds its own learning state."""
    async with started(2) as processes:
        yield processes


@pytest.fixture
async def solo() -> AsyncIterator[StrategyProcesses]:
    """One worker, for the tests that kill it."""
    async with started(1) as processes:
        yield processes


async def test_a_worker_reports_what_the_strategy_reports_in_process(
    procs: StrategyProcesses,
) -> None:
    directive = StrategicDirective(
        directive_id="d-1", issued_at=NOW, focus_areas=["api_response_time"]
    )
    contexts = [
        context(API),
        context(API, learning=learned(), directive=directive),
        context(API, params=TaskParams(window="1h"), store=store_from_params(CHEAP)),
        context(PLANNING, params=PLAN, learning=learned()),
    ]
    for ctx in contexts:
        pickle.loads(pickle.dumps(ctx, protocol=5))  # every part of a context pickles
        expected: Report = ROUTES[ctx.task_type](ctx)
        report, _ = await procs.run(ctx.task_type, ctx)
        assert report == expected


async def test_a_worker_reports_the_cpu_its_strategy_took_not_the_time_it_took(
    procs: StrategyProcesses,
) -> None:
    _, napped = await procs.run(NAP, napping(0.3))
    assert 0.0 <= napped < 0.1  # 0.3 s asleep: next to no CPU
    _, planned = await procs.run(PLANNING, context(PLANNING, params=PLAN))
    assert planned > 0.0


async def test_the_worker_sees_the_learning_state_the_agent_had(procs: StrategyProcesses) -> None:
    a, b, c, d = (("a", "m"), ("b", "m"), ("c", "m"), ("bb", "m"))
    s1 = LearningState(
        summaries={a: summary(*a, 3), b: summary(*b, 5), c: summary(*c, 2000)},
        plans={"p-1": progress("p-1", 2)},
    )
    s2 = s1.copy()  # the next snapshot: new containers, the same frozen values
    s2.summaries[b] = summary(*b, 6)
    s2.plans["p-2"] = progress("p-2", 1)
    s2.infeasible = {"x|m": "no budget"}
    s3 = s2.copy()
    del s3.summaries[a]
    s3.summaries = dict(sorted({**s3.summaries, d: summary(*d, 1)}.items()))  # added mid-order
    s3.totals = Totals(verifications=9)
    s4 = LearningState(plans={"p-2": progress("p-2", 3)}, infeasible={}, totals=s3.totals)
    s5 = s4.copy()
    s5.summaries[a] = summary(*a, 3)
    states: list[LearningState | None] = [LearningState(), s1, s2, None, s3, s3, s4, s5, s1]
    for state in states:  # one at a time: the first worker sees them all
        assert await echoed(procs, learning=state) == learning_digest(state)
    for state in [*reversed(states), s5]:  # two at once: one each
        both = await asyncio.gather(echoed(procs, learning=state), echoed(procs, learning=state))
        assert both == [learning_digest(state)] * 2
    s5.summaries[b] = summary(*b, 7)  # the very state both workers were sent, changed in place
    both = await asyncio.gather(echoed(procs, learning=s5), echoed(procs, learning=s5))
    assert both == [learning_digest(s5)] * 2


def test_a_delta_carries_only_what_changed() -> None:
    shipped = learned()
    pair = next(iter(shipped.summaries))
    new = shipped.copy()
    assert learning_delta(shipped, new) == learning_delta(new, new)
    new.summaries[pair] = summary(*pair, 13)
    new.summaries[("zz", "m")] = summary("zz", "m", 1)  # last: no order needed
    del new.plans["p-1"]
    delta = learning_delta(shipped, new)
    assert delta.summaries.put == {
        pair: new.summaries[pair],
        ("zz", "m"): new.summaries[("zz", "m")],
    }
    assert (delta.summaries.removed, delta.summaries.order) == ([], None)
    assert (delta.plans.put, delta.plans.removed) == ({}, ["p-1"])
    assert (delta.infeasible, delta.totals) == (None, None)
    held = shipped.copy()
    apply_delta(held, delta)
    assert learning_digest(held) == learning_digest(new)


async def test_an_agent_error_keeps_its_type_and_code(procs: StrategyProcesses) -> None:
    ctx = context(INVALID)
    with pytest.raises(InvalidParams) as raised:
        await procs.run(INVALID, ctx)
    assert raised.value.code is ErrorCode.INVALID_PARAMS
    assert raised.value.message == f"task {ctx.task_id}: no usable metric"


async def test_an_error_that_does_not_unpickle_comes_back_as_a_runtime_error(
    procs: StrategyProcesses,
) -> None:
    two_hours = msgspec.structs.replace(CHEAP, window="2h")
    with pytest.raises(RuntimeError) as raised:
        await procs.run(SOURCE_DOWN, context(SOURCE_DOWN, two_hours))
    assert type(raised.value) is RuntimeError
    assert str(raised.value) == "TwoArgs: prometheus: connection refused"


async def test_an_agent_error_of_any_constructor_keeps_its_type_and_code(
    procs: StrategyProcesses,
) -> None:
    with pytest.raises(SourceUnavailable) as raised:
        await procs.run(SOURCE_DOWN, context(SOURCE_DOWN))
    assert raised.value.code is ErrorCode.SOURCE_UNAVAILABLE
    assert raised.value.source == "prometheus"


async def test_another_error_keeps_its_type_and_the_worker_traceback(
    procs: StrategyProcesses,
) -> None:
    with pytest.raises(ValueError, match="boom") as raised:
        await procs.run(BOOM, context(BOOM))
    assert str(raised.value) == "boom"
    (note,) = raised.value.__notes__
    assert "in strategy worker process" in note
    assert 'raise ValueError("boom")' in note


def napping(seconds: float) -> TaskContext:
    return context(NAP, params=TaskParams(window="1h", metrics={"nap_s": seconds}))


async def test_a_worker_killed_mid_task_fails_the_tasks_it_holds_and_is_replaced(
    solo: StrategyProcesses,
) -> None:
    state = learned()
    await echoed(solo, learning=state)
    pid = worker_pid(solo)
    held = [
        asyncio.create_task(solo.run(NAP, napping(60.0))),
        asyncio.create_task(echoed(solo, learning=state)),  # next in its pipe
    ]
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    for task in held:
        with pytest.raises(WorkerDied, match=r"ended \(killed by SIGKILL\) while running task"):
            await task
    assert not issubclass(WorkerDied, AgentError)  # an internal error: dead-lettered
    assert await echoed(solo, learning=state) == learning_digest(state)  # a new one, sent it all
    assert worker_pid(solo) != pid


async def test_a_task_given_up_on_leaves_its_worker_running(solo: StrategyProcesses) -> None:
    await echoed(solo)
    pid = worker_pid(solo)
    running = asyncio.create_task(solo.run(NAP, napping(0.5)))
    await asyncio.sleep(0.1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await echoed(solo, learning=learned()) == learning_digest(learned())
    assert worker_pid(solo) == pid


async def test_a_worker_that_ended_while_idle_is_replaced_before_the_next_task(
    solo: StrategyProcesses,
) -> None:
    await solo.run(ECHO, context(ECHO))
    worker = solo._slots[0].started.result()
    worker.stdin.close()  # as when the agent is gone: EOF
    assert await asyncio.wait_for(worker.proc.wait(), 10) == 0
    assert await echoed(solo) == "none"


def start_worker() -> subprocess.Popen[bytes]:
    """A worker as ``StrategyProcesses`` starts one, driven by hand; ready."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.runtime.strategy_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    write_frame(proc.stdin, pickle.dumps(dict(TEST_ROUTES), protocol=5))
    assert read_frame(proc.stdout) == READY
    return proc


def test_a_worker_leaves_on_eof_of_its_stdin() -> None:
    proc = start_worker()
    proc.communicate(timeout=10)  # closes its stdin, as the kernel does for a killed agent
    assert proc.returncode == 0


def test_a_worker_leaves_on_sigterm() -> None:
    proc = start_worker()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    proc.communicate()


def strategy_of_main(ctx: TaskContext) -> Report:
    return ROUTES[API](ctx)


def test_routes_a_worker_cannot_load_keep_the_strategies_in_process(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="agent.runtime.strategy_processes")
    assert StrategyProcesses.for_routes(0, ROUTES) is None
    assert StrategyProcesses.for_routes(1, ROUTES) is not None
    assert StrategyProcesses.for_routes(1, {API: lambda ctx: ROUTES[API](ctx)}) is None
    assert "cannot be sent to a worker process" in caplog.text
    # pickle sends a function of __main__ by name, but a worker's __main__ is its own
    monkeypatch.setattr(strategy_of_main, "__module__", "__main__")
    monkeypatch.setattr(
        sys.modules["__main__"], "strategy_of_main", strategy_of_main, raising=False
    )
    assert pickle.dumps(strategy_of_main)
    assert StrategyProcesses.for_routes(1, {API: strategy_of_main}) is None


@pytest.mark.parametrize(
    "error",
    [
        InsufficientData("two samples", counts={"api_response_time": 2}),
        InvalidParams("unknown window"),
        SourceUnavailable("prometheus", "connection refused"),
        PayloadTooLarge(2_000_000, 1_048_576),
    ],
)
def test_every_agent_error_crosses_a_process_boundary_whole(error: AgentError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert (back.code, back.message, str(back)) == (error.code, error.message, str(error))
    assert back.__dict__ == error.__dict__


@pytest.mark.nats
async def test_an_agent_with_a_worker_answers_as_one_without(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    """The same task to an agent computing in its own process and to one with a worker:
    the same report (but for when it was made), and the plan still reaches Hephaestus."""
    body = task_body()
    answers = []
    for processes in (0, 1):
        async with AgentNode(make_settings(strategy_processes=processes)) as node:
            assert (node.services.dispatcher.handler.processes is None) == (processes == 0)
            answer = await rpc(nc, node, {**body, "task_id": f"{body['task_id']}-{processes}"})
            plans = await stream_messages(
                nc, node.streams["PLANS"], f"swarm.plans.{node.settings.hephaestus_id}", 1
            )
            assert plans
            answers.append(answer["report"])
            compute = node.services.dispatcher.handler.compute
            assert compute.cpu_s > 0.0  # measured where the strategy ran, worker or not
            assert compute.processes == processes
    in_process, in_worker = answers
    assert in_worker["recommendations"]

    def plan(report: dict[str, Any]) -> list[tuple[str, str, Any]]:
        return [
            (r["target"], r["approach"], r["expected_improvement_pct"])
            for r in report["recommendations"]
        ]

    assert plan(in_worker) == plan(in_process)
    assert in_worker["performance"] == in_process["performance"]
