"""Acknowledged JetStream writes whose acks one subscription collects (nats.go's
``PublishAsync``, with a bound on every wait).

nats-py's ``js.publish`` makes each write a request of its own: a reply token from the OS's
random source, a future behind its own timeout, and the ack parsed twice (JSON, then a
dataclass) — about 90 µs of the agent's CPU per write on a 2-core machine, against about
35 µs here for the same acknowledged write (``scripts/bench.py`` counts six per answer).
Here every write's reply subject is one wildcard subscription's (under the connection's
inbox prefix, so ``deploy/nats/secure.conf`` needs no new right); an ack is decoded once,
with msgspec; one sweeper fails the writes whose ack is overdue.

Errors are nats-py's own: ``nats.errors.TimeoutError`` for an overdue ack,
``NoRespondersError`` when no stream takes the subject, the ``APIError`` subclass of the
error the server answered (``KeyWrongLastSequenceError`` for a KV create that found its
key), so callers retry and branch as they did on ``js.publish``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any, NamedTuple

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import APIError, KeyWrongLastSequenceError

log = logging.getLogger(__name__)

SWEEP_S = 0.25
"""How often overdue acks are looked for: a timeout fires up to this much late."""
EXPECT_NEW = {"Nats-Expected-Last-Subject-Sequence": "0"}
"""Headers of a KV create: stored only when the key holds nothing yet."""
_WRONG_LAST_SEQUENCE = (10071, 10164)
"""JetStream's err_codes for an expected last sequence that does not hold (what nats-py's
``KeyValue`` turns into ``KeyWrongLastSequenceError``)."""


class Acked(NamedTuple):
    """A write the stream acknowledged: where, and whether it was a duplicate (Nats-Msg-Id)."""

    stream: str
    seq: int
    duplicate: bool


def kv_subject(bucket: str, key: str) -> str:
    """Where a KV bucket's value for ``key`` is written."""
    return f"$KV.{bucket}.{key}"


class BucketWrites(NamedTuple):
    """A KV bucket's writes through the agent's writer (keys are the caller's, valid)."""

    writer: JetStreamWriter
    bucket: str

    async def put(self, key: str, value: bytes) -> int:
        """Store ``value`` at ``key``; its revision."""
        return (await self.writer.publish(kv_subject(self.bucket, key), value)).seq

    async def create(self, key: str, value: bytes) -> int:
        """Store ``value`` at ``key`` unless it holds one (``KeyWrongLastSequenceError``)."""
        return (await self.writer.publish(kv_subject(self.bucket, key), value, EXPECT_NEW)).seq


class _Ack(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_ACK = msgspec.json.Decoder(_Ack)


def _failure(error: dict[str, Any]) -> APIError:
    """The exception nats-py raises for this error answer."""
    if error.get("err_code") in _WRONG_LAST_SEQUENCE:
        return KeyWrongLastSequenceError(description=error.get("description"))
    try:
        APIError.from_error({k: error.get(k) for k in ("code", "err_code", "description")})
    except APIError as exc:
        return exc
    raise AssertionError("unreachable: from_error always raises")  # pragma: no cover


class JetStreamWriter:
    """Acknowledged writes of a long-running agent: ``start`` it once connected, ``close``
    it last."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._prefix = ""
        self._ids = itertools.count()
        self._waiting: dict[str, tuple[asyncio.Future[Acked], float]] = {}
        """Reply subject → (the write's future, its deadline on the monotonic clock)."""
        self._sub: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Writes waiting for their ack."""
        return len(self._waiting)

    async def start(self) -> None:
        self._prefix = self.nc.new_inbox() + "."
        self._sub = await self.nc.subscribe(self._prefix + "*", cb=self._on_ack)
        self._sweeper = asyncio.create_task(self._sweep(), name="jetstream-writer-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        for future, _ in self._waiting.values():
            if not future.done():
                future.set_exception(nats.errors.ConnectionClosedError())
        self._waiting.clear()

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | None = None,
        *,
        timeout: float = 5.0,
    ) -> Acked:
        if self._sub is None:
            raise RuntimeError("JetStreamWriter.publish before start()")
        reply = f"{self._prefix}{next(self._ids)}"
        future: asyncio.Future[Acked] = asyncio.get_running_loop().create_future()
        self._waiting[reply] = (future, time.monotonic() + timeout)
        try:
            await self.nc.publish(subject, payload, reply=reply, headers=headers)
            return await future
        finally:
            self._waiting.pop(reply, None)

    async def _on_ack(self, msg: Msg) -> None:
        waiting = self._waiting.get(msg.subject)
        if waiting is None or waiting[0].done():
            return  # overdue and failed already, or a stray reply
        future = waiting[0]
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(nats.errors.NoRespondersError())
            return
        try:
            ack = _ACK.decode(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(nats.errors.Error(f"unreadable JetStream ack: {exc}"))
            return
        if ack.error is not None:
            future.set_exception(_failure(ack.error))
        else:
            future.set_result(Acked(ack.stream, ack.seq, ack.duplicate))

    async def _sweep(self) -> None:
        """Fail the writes whose ack is overdue (the server or the connection lost it)."""
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.monotonic()
            for future, deadline in list(self._waiting.values()):
                if deadline <= now and not future.done():
                    future.set_exception(nats.errors.TimeoutError())
