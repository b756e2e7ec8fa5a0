"""One read for every task that asked before it was sent: read-your-writes, batched.

Each task confirms the directive and the learning state it started on with a read of the
bus (``TaskHandler.run``). What a task needs of that read is only that it was issued
after the task arrived: then everything acknowledged before the task was sent is in it.
So the tasks that arrive while a read is in flight can share the next one — the
read-index batching of consensus systems — and a burst of tasks costs one or two
requests, not one each, for at most one more read's wait (which the strategy, computing
meanwhile, mostly hides).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    """``read``, issued on behalf of every caller waiting when it starts; at most one in
    flight. A caller always gets the result of a read issued after it called."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._next: asyncio.Future[T] | None = None
        """What the callers since the last read started wait for: the next read."""
        self._in_flight: asyncio.Future[T] | None = None
        self.reads = 0
        """Reads issued (callers over reads: how many a read served)."""

    async def __call__(self) -> T:
        waiting = self._next
        if waiting is None:
            waiting = self._next = asyncio.get_running_loop().create_future()
            if self._in_flight is None:
                self._issue(waiting)
        return await asyncio.shield(waiting)  # a caller cancelled leaves the others theirs

    def _issue(self, waiting: asyncio.Future[T]) -> None:
        self.reads += 1
        self._in_flight = read = asyncio.ensure_future(self._start(waiting))
        read.add_done_callback(lambda done: self._done(done, waiting))

    async def _start(self, waiting: asyncio.Future[T]) -> T:
        if self._next is waiting:  # the read starts now: who calls from here on waits
            self._next = None  # for the next one
        return await self._read()

    def _done(self, read: asyncio.Future[T], waiting: asyncio.Future[T]) -> None:
        self._in_flight = None
        if self._next is waiting:  # cancelled before it started
            self._next = None
        if not waiting.done():
            if read.cancelled():
                waiting.cancel()
            elif (exc := read.exception()) is not None:
                waiting.set_exception(exc)
            else:
                waiting.set_result(read.result())
        if self._next is not None:  # the callers that came while this one was in flight
            self._issue(self._next)
