"""``SharedRead``: callers share a read only when it was issued after they called."""

from __future__ import annotations

import asyncio

import pytest

from agent.runtime.shared_read import SharedRead


class Store:
    """A value behind a read that takes until ``release`` is called (one gate per read)."""

    def __init__(self) -> None:
        self.value = 0
        self.gates: list[asyncio.Event] = []
        self.seen: list[int] = []
        """The value each read saw when it was issued."""

    async def read(self) -> int:
        seen = self.value
        self.seen.append(seen)
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return seen

    async def release(self, n: int) -> None:
        """Let read ``n`` answer, and the loop run what follows."""
        while len(self.gates) <= n:
            await asyncio.sleep(0)
        self.gates[n].set()
        for _ in range(5):
            await asyncio.sleep(0)


async def test_callers_before_a_read_is_issued_share_it() -> None:
    store = Store()
    shared = SharedRead(store.read)
    callers = [asyncio.create_task(shared()) for _ in range(5)]
    await store.release(0)
    assert await asyncio.gather(*callers) == [0] * 5
    assert shared.reads == 1


async def test_a_caller_during_a_read_in_flight_waits_for_the_next_one() -> None:
    """Read-your-writes: a write acknowledged before the call is seen by the caller."""
    store = Store()
    shared = SharedRead(store.read)
    early = asyncio.create_task(shared())
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first read is issued, value 0 seen
    store.value = 1  # written while that read is in flight
    late = [asyncio.create_task(shared()) for _ in range(3)]
    await asyncio.sleep(0)
    assert len(store.seen) == 1  # at most one read in flight
    await store.release(0)
    assert await early == 0
    assert not any(t.done() for t in late)
    await store.release(1)
    assert await asyncio.gather(*late) == [1, 1, 1]
    assert store.seen == [0, 1]
    assert shared.reads == 2


async def test_a_failed_read_fails_its_callers_and_the_next_read_is_new() -> None:
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("bus away")
        return calls

    shared = SharedRead(read)
    with pytest.raises(ConnectionError):
        await asyncio.gather(shared(), shared())
    assert await shared() == 2


async def test_a_cancelled_caller_leaves_the_read_to_the_others() -> None:
    store = Store()
    shared = SharedRead(store.read)
    gone, stays = asyncio.create_task(shared()), asyncio.create_task(shared())
    await asyncio.sleep(0)
    gone.cancel()
    await store.release(0)
    assert await stays == 0
    assert gone.cancelled()
