"""Strategies for the worker process tests: module-level, so they go over by pickle (by
module and name) and a worker imports them from here."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping

import msgspec

from agent.errors import InvalidParams, SourceUnavailable
from agent.learning.state import LearningState
from agent.strategies import ROUTES, Report, Strategy, TaskContext
from protocols import AnalysisReport, TaskType


def learning_digest(state: LearningState | None) -> str:
    """Every entry of ``state``, in order (sums over them depend on it), hashed."""
    if state is None:
        return "none"
    parts = (list(state.summaries.items()), list(state.plans.items()), state.infeasible)
    data = msgspec.json.encode((parts, state.totals))
    return hashlib.sha256(data).hexdigest()


def echo_learning(ctx: TaskContext) -> Report:
    """A report whose ``analysis_type`` is the digest of the learning state it was given."""
    print("a stray print: must not reach the frames")
    return AnalysisReport(
        analysis_type=learning_digest(ctx.learning),
        timestamp=ctx.now,
        window=ctx.params.window or ctx.default_window,
        performance={},
        bottlenecks=[],
        recommendations=[],
    )


def invalid(ctx: TaskContext) -> Report:
    raise InvalidParams(f"task {ctx.task_id}: no usable metric")


class TwoArgs(Exception):
    """An error whose constructor takes two arguments: it does not unpickle."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")


def source_down(ctx: TaskContext) -> Report:
    """A source that fails: ``SourceUnavailable`` (an ``AgentError``: pickled whole, though
    its constructor takes two arguments), or with the window ``2h`` an error that does not
    unpickle."""
    if ctx.params.window == "2h":
        raise TwoArgs("prometheus", "connection refused")
    raise SourceUnavailable("prometheus", "connection refused")


def boom(ctx: TaskContext) -> Report:
    raise ValueError("boom")


def nap(ctx: TaskContext) -> Report:
    """A task that takes its ``nap_s`` metric's seconds (to be killed or given up on), then
    echoes the learning state."""
    nap_s = ctx.params.metrics["nap_s"]
    assert isinstance(nap_s, float)
    time.sleep(nap_s)
    return echo_learning(ctx)


TEST_ROUTES: Mapping[TaskType, Strategy] = {
    TaskType.API_OPTIMIZATION: ROUTES[TaskType.API_OPTIMIZATION],
    TaskType.STRATEGIC_BACKEND_PLANNING: ROUTES[TaskType.STRATEGIC_BACKEND_PLANNING],
    TaskType.CHAT_BACKEND_OPTIMIZATION: echo_learning,
    TaskType.PROMPT_FEED_BACKEND_OPTIMIZATION: invalid,
    TaskType.REPORT_GENERATION_OPTIMIZATION: source_down,
    TaskType.WEBSOCKET_SCALING_OPTIMIZATION: boom,
    TaskType.CACHE_OPTIMIZATION: nap,
}
