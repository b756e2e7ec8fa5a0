"""A bounded worker pool both transports share, so in-flight work never exceeds its limit.

nats-py runs each subscription's callbacks one at a time (nats.py #272): callbacks only
hand work to this pool. The durable path fetches only as many tasks as there are free
slots, so it never pulls more than it can soon run; the rpc path may queue a bounded
number of requests beyond the slots and is told to refuse (``overloaded``) past that.
Accounting is synchronous (at hand-off, not when a task first runs), so a burst that
arrives within one loop tick is bounded too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]


class WorkPool:
    def __init__(self, size: int, queue_limit: int) -> None:
        self.size = size
        self.queue_limit = queue_limit
        self._sem = asyncio.Semaphore(size)
        self._freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.running = 0
        self.pending = 0
        """Handed over, waiting for a slot."""
        self.peak_running = 0

    def free(self) -> int:
        return self.size - self.running - self.pending

    async def wait_free(self) -> int:
        """Wait until a slot is free (without taking it); returns how many are free."""
        while self.free() <= 0:
            self._freed.clear()
            await self._freed.wait()
        return self.free()

    def run_durable(self, work: Work) -> None:
        """Run fetched durable work as a slot frees (their number is bounded by the fetch)."""
        self._spawn(work)

    def try_submit(self, work: Work) -> bool:
        """Queue rpc work unless slots and queue are all taken; False means refuse it."""
        if self.running + self.pending >= self.size + self.queue_limit:
            return False
        self._spawn(work)
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

    def _spawn(self, work: Work) -> None:
        self.pending += 1
        task = asyncio.create_task(self._run(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Work) -> None:
        try:
            await self._sem.acquire()
        finally:
            self.pending -= 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            await work()
        except Exception:
            log.exception("unhandled error in a worker")
        finally:
            self.running -= 1
            self._sem.release()
            self._freed.set()
