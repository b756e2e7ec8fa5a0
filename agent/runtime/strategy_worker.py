"""A strategy worker process: runs the agent's strategies off its event loop, one at a time.

Started by ``StrategyProcesses`` as ``python -m agent.runtime.strategy_worker``; the agent
talks to it over its stdin and stdout in frames (4-byte big-endian length, then the body):

- in: the routes (pickled; unpickling them imports the strategies, numpy and scipy), then
  per task ``(task type, context without its learning state, LearningDelta | None)``;
- out: ``READY`` once the routes are loaded, then per task, in order, ``REPORT`` + the
  CPU seconds the strategy took (``CPU_SECONDS``) + the report in msgpack, or ``FAILED`` +
  the pickled ``(exception, traceback)`` the strategy raised. The agent may send the next
  task before this one is answered: it waits in the pipe.

It leaves on EOF of stdin (the agent closed it, or is gone), so it never outlives the agent.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from types import FrameType
from typing import IO, Generic, TypeVar

import msgspec

from agent.errors import AgentError
from agent.learning.state import LearningState, OutcomeSummary, PlanProgress, Totals
from agent.runtime.gc_tuning import tune_gc

READY = b"S"
REPORT = b"R"
FAILED = b"E"
CPU_SECONDS = struct.Struct(">d")
"""After ``REPORT``: the CPU time of the strategy call, which the agent adds to its own
strategies' (``ComputeStats.cpu_s``) as it does for those it runs itself."""

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Changes(Generic[K, V]):
    """How one dict of the learning state differs from the one the worker holds."""

    put: dict[K, V]
    """Entries added or replaced."""
    removed: list[K]
    order: list[K] | None = None
    """Every key in the agent's order, when an added key is not last there: sums over the
    entries must come out the same as in the agent."""


@dataclass(frozen=True, slots=True)
class LearningDelta:
    """A task's learning state as changes to the last one the worker was sent (it is large:
    hundreds of summaries of thousands of ids; few entries change between two tasks)."""

    summaries: Changes[tuple[str, str], OutcomeSummary]
    plans: Changes[str, PlanProgress]
    infeasible: dict[str, str] | None
    """None: unchanged."""
    totals: Totals | None
    """None: unchanged."""


def apply_changes(into: dict[K, V], changes: Changes[K, V]) -> None:
    for key in changes.removed:
        del into[key]
    into.update(changes.put)
    if changes.order is not None:
        ordered = {key: into[key] for key in changes.order}
        into.clear()
        into.update(ordered)


def apply_delta(state: LearningState, delta: LearningDelta) -> None:
    apply_changes(state.summaries, delta.summaries)
    apply_changes(state.plans, delta.plans)
    if delta.infeasible is not None:
        state.infeasible = delta.infeasible
    if delta.totals is not None:
        state.totals = delta.totals


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame; None at EOF."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: IO[bytes], body: bytes) -> None:
    stream.write(len(body).to_bytes(4, "big") + body)
    stream.flush()


def failure(exc: Exception) -> bytes:
    """What the agent re-raises: ``exc`` itself when it survives pickling (the dispatcher
    tells ``AgentError`` by type), else a ``RuntimeError`` naming it; the traceback for the
    agent's log, but for an ``AgentError`` (a task's expected failure, answered by code)."""
    trace = "" if isinstance(exc, AgentError) else traceback.format_exc()
    try:
        blob = pickle.dumps((exc, trace), protocol=5)
        pickle.loads(blob)
    except Exception:
        blob = pickle.dumps((RuntimeError(f"{type(exc).__name__}: {exc}"), trace), protocol=5)
    return FAILED + blob


_busy = False
_stop = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Leave now when idle, else once the task in hand is answered (the agent is draining)."""
    global _stop
    if not _busy:
        raise SystemExit(0)
    _stop = True


def main() -> None:
    """Load the routes, say ``READY``, then answer each task in turn until EOF."""
    global _busy
    # Ctrl-C reaches the whole process group: the agent drains, then closes our stdin
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # fd 1 carries frames only: a stray print (ours, a library's) goes to stderr instead
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer

    if (blob := read_frame(inp)) is None:
        return
    routes = pickle.loads(blob)  # a route that cannot load ends us, its traceback on stderr
    tune_gc()  # as the agent's own process does
    write_frame(out, READY)
    state = LearningState()
    encoder = msgspec.msgpack.Encoder()
    while (frame := read_frame(inp)) is not None:
        _busy = True
        task_type, ctx, delta = pickle.loads(frame)
        if delta is not None:
            apply_delta(state, delta)
            ctx = dataclasses.replace(ctx, learning=state.copy())
        try:
            c0 = time.thread_time()
            report = routes[task_type](ctx)
            cpu_s = time.thread_time() - c0
            reply = REPORT + CPU_SECONDS.pack(cpu_s) + encoder.encode(report)
        except Exception as exc:
            reply = failure(exc)
        write_frame(out, reply)
        _busy = False
        if _stop:
            return


if __name__ == "__main__":
    main()
