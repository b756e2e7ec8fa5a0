"""A steady request rate against the app, from the test process: open loop, bounded.

Requests are sent at ``rate`` a second whatever the answers take (an open loop, as users
behave: a slow backend gets queued requests, not fewer), at most ``max_in_flight`` at a
time (a request due while that many are out is skipped and counted), each bounded by
``timeout_s``, and the whole run by ``max_requests`` and ``max_duration_s``. Only
loopback URLs are accepted. Which key a request asks for is the scenario's ``KeyChooser``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

KeyChooser = Callable[[random.Random], str]


def item_key(i: int) -> str:
    return f"item-{i}"


def hot_and_cold(hot: int, rows: int, cold_share: float) -> KeyChooser:
    """Mostly the ``hot`` first items (cached), ``cold_share`` of any item (a miss, then the
    database): a warm cache with a trickle of database reads."""

    def choose(rng: random.Random) -> str:
        if rng.random() < cold_share:
            return item_key(rng.randint(1, rows))
        return item_key(rng.randint(1, hot))

    return choose


def uniform(rows: int) -> KeyChooser:
    """Any item, evenly: with ``rows`` ≫ requests, nearly every key is new to the cache."""

    def choose(rng: random.Random) -> str:
        return item_key(rng.randint(1, rows))

    return choose


@dataclass(slots=True)
class PhaseStats:
    """What one phase's requests got: answers by status, failures by exception type."""

    name: str
    started: float = field(default_factory=time.time)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    latencies_s: list[float] = field(default_factory=list)

    def summary(self) -> str:
        n = len(self.latencies_s)
        ordered = sorted(self.latencies_s)
        p50 = ordered[n // 2] * 1000 if n else float("nan")
        p95 = ordered[min(n - 1, int(0.95 * n))] * 1000 if n else float("nan")
        return (
            f"{self.name}: {dict(self.statuses)} answers, failures {dict(self.failures)}, "
            f"{self.skipped} skipped at the in-flight bound; client p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms"
        )


class LoadGenerator:
    """``start()`` … ``phase(name, chooser)`` … ``await stop()``: requests at a steady rate."""

    def __init__(
        self,
        base_url: str,
        chooser: KeyChooser,
        *,
        rate: float,
        max_in_flight: int = 64,
        timeout_s: float = 10.0,
        max_requests: int = 50_000,
        max_duration_s: float = 1800.0,
        seed: int = 14,
    ) -> None:
        host = urlsplit(base_url).hostname
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"load only against loopback, not {host}")
        self.base_url = base_url.rstrip("/")
        self.chooser = chooser
        self.rate = rate
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self.max_requests = max_requests
        self.max_duration_s = max_duration_s
        self.rng = random.Random(seed)
        self.phases: list[PhaseStats] = [PhaseStats("start")]
        self.sent = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def phase(self, name: str, chooser: KeyChooser) -> None:
        """From now on, keys come from ``chooser``, answers count towards ``name``."""
        self.chooser = chooser
        self.phases.append(PhaseStats(name))

    @property
    def current(self) -> PhaseStats:
        return self.phases[-1]

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight)
        self._client = httpx.AsyncClient(timeout=self.timeout_s, limits=limits)
        self._task = asyncio.create_task(self._run(), name="load-generator")

    async def _run(self) -> None:
        start = due = time.monotonic()
        interval = 1.0 / self.rate
        while self.sent < self.max_requests and time.monotonic() - start < self.max_duration_s:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            # a stalled loop resumes the rate, it does not send the missed requests in a burst
            due = max(due + interval, time.monotonic() - interval)
            self.sent += 1
            if len(self._in_flight) >= self.max_in_flight:
                self.current.skipped += 1
                continue
            task = asyncio.create_task(self._one(self.chooser(self.rng), self.current))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _one(self, key: str, stats: PhaseStats) -> None:
        assert self._client is not None
        t0 = time.perf_counter()
        try:
            response = await self._client.get(f"{self.base_url}/items/{key}")
        except httpx.HTTPError as exc:
            stats.failures[type(exc).__name__] += 1
            return
        stats.latencies_s.append(time.perf_counter() - t0)
        stats.statuses[response.status_code] += 1

    async def stop(self) -> None:
        """Stop sending, wait (bounded by the request timeout) for what is out, close."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self.timeout_s + 1)
            for task in set(self._in_flight):
                task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def summary(self) -> str:
        return "\n".join(p.summary() for p in self.phases if p.statuses or p.failures)
