"""A bounded worker pool both transports share, so in-flight work never exceeds its limit.

nats-py runs each subscription's callbacks one at a time (nats.py #272): callbacks only
hand work to this pool. The durable path fetches only as many tasks as there are free slots,
so it never pulls more than it can soon run; the rpc path may queue a bounded number of requests and
is told to refuse (``overloaded``) beyond that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class WorkPool:
    def __init__(self, size: int, queue_limit: int) -> None:
        self.size = size
        self.queue_limit = queue_limit
        self._sem = asyncio.Semaphore(size)
        self._tasks: set[asyncio.Task[None]] = set()
        self.waiting = 0
        self.running = 0
        self.peak_running = 0

    async def wait_free(self) -> int:
        """Wait until at least one slot is free, without taking it; returns how many are free."""
        while self._sem.locked():
            await self._sem.acquire()
            self._sem.release()
            await asyncio.sleep(0)
        return self.size - self.running

    def run_durable(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run fetched durable work as soon as a slot frees (its count is bounded by the fetch)."""
        self._track(self._run(work, queued=False))

    def try_submit(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Queue ``work`` for a slot unless the queue is full; False means refuse the request."""
        if self._sem.locked() and self.waiting >= self.queue_limit:
            return False
        self._track(self._run(work, queued=True))
        return True

    async def join(self, timeout: float) -> bool:
        """Wait for all work to finish; False when some was still running at the timeout."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _track(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Callable[[], Awaitable[None]], *, queued: bool) -> None:
        self.waiting += queued
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= queued
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            await work()
        except Exception:
            log.exception("unhandled error in a worker")
        finally:
            self.running -= 1
            self._sem.release()
