"""Strategies in worker processes, so the analysis and the bus plumbing use separate cores.

A strategy is pure CPU-bound Python and numpy: in the agent's own process it holds the GIL
against the event loop (heartbeats, acks, other tasks' replies). Here each of ``size``
child processes (``agent.runtime.strategy_worker``) runs one strategy at a time, the next
task already in its pipe (``PIPELINE``), and the loop only pickles the context and decodes
the report (msgpack: a fifth of unpickling it). The learning state, large and seldom
changed, goes over as changes to the one the worker was sent last (``learning_delta``).

Plain child processes on pipes, not ``multiprocessing``: no management thread in the
agent competing for the GIL, and a child leaves when its stdin closes, so it never outlives
the agent. The routes go over by pickle, which sends a function by its module and name;
routes that cannot (a closure, a lambda, anything of ``__main__``) keep the strategies in
the agent's process (``for_routes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import os
import pickle
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from agent.learning.state import LearningState
from agent.runtime.strategy_worker import CPU_SECONDS, REPORT, Changes, LearningDelta
from agent.strategies import Report, Strategy, TaskContext
from protocols import TaskType

log = logging.getLogger(__name__)

WORKER_MODULE = "agent.runtime.strategy_worker"
PIPELINE = 2
"""Tasks a worker holds at once: it runs one while the next waits in its pipe, so it starts
that one as soon as it answers, not when the event loop gets round to sending it (under
load that took ~1 ms: a third of a small task's strategy)."""
CLOSE_GRACE_S = 2.0
"""How long ``close`` lets a worker finish its tasks and leave before killing it."""

_REPORTS = msgspec.msgpack.Decoder(Report)

K = TypeVar("K")
V = TypeVar("V")


class WorkerDied(RuntimeError):
    """A worker process ended with a task in hand (killed, crashed): an internal error."""


def changes(sent: dict[K, V], new: dict[K, V]) -> Changes[K, V]:
    """What turns ``sent`` into ``new``: values are frozen and replaced when they change, so
    an entry changed when its value is another object. A replaced value keeps its place."""
    put = {key: value for key, value in new.items() if sent.get(key) is not value}
    added = [key for key in put if key not in sent]
    kept = len(new) - len(added)
    removed = [key for key in sent if key not in new] if kept < len(sent) else []
    order = None
    if added and kept:  # the worker appends added keys: say the order if they are not last
        keys = list(new)
        order = None if keys[kept:] == added else keys
    return Changes(put=put, removed=removed, order=order)


def learning_delta(sent: LearningState, new: LearningState) -> LearningDelta:
    return LearningDelta(
        summaries=changes(sent.summaries, new.summaries),
        plans=changes(sent.plans, new.plans),
        infeasible=None if new.infeasible == sent.infeasible else dict(new.infeasible),
        totals=None if new.totals is sent.totals else new.totals,
    )


class _ByReference(pickle.Pickler):
    """Refuses what ``__main__`` defines: a worker's ``__main__`` is its own module."""

    def reducer_override(self, obj: Any) -> Any:
        if getattr(obj, "__module__", None) == "__main__":
            raise pickle.PicklingError(f"{obj!r} is defined in __main__")
        return NotImplemented


def _exit_status(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


class _Worker:
    """One child process: requests go down its stdin and replies come back in the same
    order (``read_replies``); ``sent`` is the learning state it holds once it has read every
    request sent."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self.proc = proc
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.sent = LearningState()
        self.ended = ""
        """How it ended (``_exit_status``), once it has."""
        self._replies: deque[tuple[str, asyncio.Future[bytes]]] = deque()
        self.reader = asyncio.create_task(self.read_replies())

    @property
    def running(self) -> bool:
        return self.proc.returncode is None and not self.reader.done()

    def send(self, request: bytes, doing: str) -> asyncio.Future[bytes]:
        """Its reply to come; ``doing`` says what was lost if the process ends first."""
        if not self.running:
            raise WorkerDied(f"strategy worker process {self.proc.pid} has ended")
        self.stdin.write(len(request).to_bytes(4, "big") + request)
        reply = asyncio.get_running_loop().create_future()
        self._replies.append((doing, reply))
        return reply

    async def read_replies(self) -> None:
        """Each reply to its request's future (one given up on is dropped), until the process
        ends: then every request still waiting fails with ``WorkerDied``."""
        try:
            with contextlib.suppress(asyncio.IncompleteReadError):  # EOF: it is ending
                while True:
                    size = int.from_bytes(await self.stdout.readexactly(4), "big")
                    reply = await self.stdout.readexactly(size)
                    _, future = self._replies.popleft()
                    if not future.done():
                        future.set_result(reply)
        except BaseException:  # no more replies: a process still there is of no use
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            raise
        finally:
            self.ended = _exit_status(await self.proc.wait())
            while self._replies:
                doing, future = self._replies.popleft()
                if not future.done():
                    future.set_exception(
                        WorkerDied(
                            f"strategy worker process {self.proc.pid} ended ({self.ended}) {doing}"
                        )
                    )

    async def end(self, grace: float) -> None:
        """Close its stdin (it leaves on EOF once it has answered what it holds), kill it past
        ``grace``; return once it is reaped."""
        self.stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.reader


class _Slot:
    """Where one worker runs: ``started`` starts it, or has (``_renew`` starts another)."""

    started: asyncio.Task[_Worker] | None = None
    in_hand = 0
    """Tasks sent to its worker or about to be."""

    def lost(self) -> bool:
        """Whether it has no worker, or one that could not start or has ended."""
        task = self.started
        if task is None:
            return True
        if not task.done():
            return False
        return task.cancelled() or task.exception() is not None or not task.result().running


class StrategyProcesses:
    """``size`` worker processes, each running one task's strategy at a time with up to
    ``PIPELINE`` tasks in hand."""

    def __init__(self, size: int, routes: bytes) -> None:
        self.size = size
        self.capacity = size * PIPELINE
        """Tasks the workers hold at most; more wait in ``run``."""
        self._routes = routes
        self._env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        """The agent's import path: the worker imports the routes' modules as the agent does."""
        self._slots: list[_Slot] = []
        self._room = asyncio.Semaphore(self.capacity)
        self._closing = False

    @classmethod
    def for_routes(cls, size: int, routes: Mapping[TaskType, Strategy]) -> StrategyProcesses | None:
        """Worker processes for ``routes``; None runs the strategies in the agent's process:
        ``size`` 0, or routes a worker cannot load (said at INFO)."""
        if size == 0:
            return None
        blob = io.BytesIO()
        try:
            _ByReference(blob, protocol=5).dump(dict(routes))
        except Exception as exc:
            log.info(
                "strategies run in the agent's process: their routes cannot be sent to a "
                "worker process (%s: %s)",
                type(exc).__name__,
                exc,
            )
            return None
        return cls(size, blob.getvalue())

    def start(self) -> None:
        """Start every worker; the first tasks for each wait until it is ready (~1 s)."""
        for _ in range(self.size):
            slot = _Slot()
            self._renew(slot)
            self._slots.append(slot)

    async def run(self, task_type: TaskType, ctx: TaskContext) -> tuple[Report, float]:
        """``task_type``'s strategy on ``ctx`` in a worker, and the CPU seconds it took there;
        raises what it raised, or ``WorkerDied``."""
        async with self._room:  # then some worker holds fewer than PIPELINE tasks
            slot = min(self._slots, key=lambda s: s.in_hand)
            slot.in_hand += 1
            try:
                return await self._run(slot, task_type, ctx)
            finally:
                slot.in_hand -= 1

    async def _run(
        self, slot: _Slot, task_type: TaskType, ctx: TaskContext
    ) -> tuple[Report, float]:
        started = self._renew(slot)
        worker = await asyncio.shield(started)
        learning = ctx.learning
        delta = None if learning is None else learning_delta(worker.sent, learning)
        request = pickle.dumps(
            (task_type, dataclasses.replace(ctx, learning=None), delta), protocol=5
        )
        reply = worker.send(request, f"while running task {ctx.task_id}")
        if learning is not None:
            worker.sent = learning.copy()  # its own containers: the caller's may change
        try:
            with contextlib.suppress(ConnectionError):  # it ended: the reply says so
                await worker.stdin.drain()
            data = await reply
        finally:
            reply.cancel()  # given up on (cancelled): dropped when it comes
        body = memoryview(data)[1:]
        if data[:1] == REPORT:
            (cpu_s,) = CPU_SECONDS.unpack_from(body)
            return _REPORTS.decode(body[CPU_SECONDS.size :]), cpu_s
        exc, trace = pickle.loads(body)
        if trace:
            exc.add_note(f"in strategy worker process {worker.proc.pid}:\n{trace}")
        raise exc

    def _renew(self, slot: _Slot) -> asyncio.Task[_Worker]:
        """``slot``'s worker; a new one when it could not start or has ended."""
        if slot.started is None or slot.lost():
            slot.started = asyncio.create_task(self._spawn(slot))
        return slot.started

    async def _spawn(self, slot: _Slot) -> _Worker:
        """A new worker, ready; one that ends later is replaced at once."""
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKER_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
        )
        worker = _Worker(proc)
        try:
            await worker.send(self._routes, "while starting (its stderr says why)")
        except BaseException:
            await worker.end(0.0)
            raise
        log.info("strategy worker process %d ready in %.2f s", proc.pid, time.perf_counter() - t0)
        worker.reader.add_done_callback(lambda _: self._ended(slot, worker))
        return worker

    def _ended(self, slot: _Slot, worker: _Worker) -> None:
        """A worker that ended is replaced at once (but on ``close``)."""
        if not self._closing:
            log.warning("strategy worker process %d ended (%s)", worker.proc.pid, worker.ended)
            self._renew(slot)

    async def close(self) -> None:
        """Ask every worker to leave (EOF on its stdin); kill those still there after
        ``CLOSE_GRACE_S``. Those still starting are stopped at once."""
        self._closing = True
        starts = [slot.started for slot in self._slots if slot.started is not None]
        for start in starts:
            start.cancel()
        started = await asyncio.gather(*starts, return_exceptions=True)
        await asyncio.gather(*(w.end(CLOSE_GRACE_S) for w in started if isinstance(w, _Worker)))
