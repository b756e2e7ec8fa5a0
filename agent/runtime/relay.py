"""The answer relay: each claimed answer's outputs and result, sent off the answer path.

A task's claim (``TaskRecords.claim``, a KV create) holds its whole answer — result bytes
and every output — so once the create is acknowledged the answer cannot be lost or
changed, and the caller is answered at once (the rpc reply, the durable task's ack).
What the answer tells the swarm (predictions, plan, baseline, plan-issued event, the
result on the results stream) is sent by this relay: a durable pull consumer of the
claims' own stream (``KV_<PREFIX>_TASKS_DONE``), shared by the replicas — the
transactional outbox's relay, with the bucket as the outbox. A claim is acknowledged to
the relay's consumer only once all of it is sent, so an agent that dies in between has
it delivered again (after ``ack_wait``, to whichever replica runs); every copy is stored
once (``Nats-Msg-Id``, KV keys, event ids) while it is younger than the streams'
duplicate window. A claim delivered later than that (every replica down for that long)
is not sent again — a copy could be stored twice — and is logged.

Order, per claim: the predictions are acknowledged before the baseline that lets Athena
verify them goes out; plan, baseline, plan-issued event and result go together after
them. A fetch's claims are sent together: two waves whatever their number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from agent.config import Settings
from agent.runtime.counters import WriteStats
from agent.runtime.kv import bucket_name
from agent.runtime.outbox import Outbox, first
from agent.runtime.publisher import Publisher
from agent.runtime.reader import StreamReader
from agent.runtime.task_records import TASKS_DONE, TaskRecord, decode_record
from agent.telemetry import tracing
from protocols import subjects

log = logging.getLogger(__name__)

RESEND_MARGIN_S = 60.0
"""Of the duplicate window, what a re-send leaves unused (at most half of it): clock skew
between replicas, and the time between a claim and its publishes."""
RELAY_BATCH = 64
"""Claims fetched (and sent together) at most at once."""
RELAY_LINGER_S = 0.02
"""After a fetch that was not full, how long the relay waits before the next: claims that
arrive one by one are then sent several per fetch (each fetch is two requests to the
server when few claims wait), for outputs that reach the swarm that much later."""
RELAY_DRAIN_POLL_S = 0.05
_DELETED = ("DEL", "PURGE")


def resend_within(duplicate_window_s: float) -> float:
    """How old a claim may be for its answer to be sent (again) safely: the duplicate window
    (the shortest of the streams an answer goes to) less ``RESEND_MARGIN_S``."""
    return max(0.0, duplicate_window_s - min(RESEND_MARGIN_S, duplicate_window_s / 2))


class _Answered(msgspec.Struct):
    """What the relay reads of a stored result: where it goes."""

    task_id: str
    task_type: str


_ANSWERED = msgspec.json.Decoder(_Answered)


class AnswerRelay:
    """Sends claimed answers: the one place that knows what a claim is sent as."""

    def __init__(
        self,
        agent_id: str,
        outbox: Outbox,
        publisher: Publisher,
        writes: WriteStats,
        *,
        resend_within_s: float = resend_within(600.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.agent_id = agent_id
        self.outbox = outbox
        self.publisher = publisher
        self.writes = writes
        self.resend_within_s = resend_within_s
        """A claim older than this is not sent (again): its copies could be stored twice."""
        self.clock = clock

    def reader(self, js: JetStreamContext, settings: Settings) -> StreamReader:
        """The durable consumer of the claims, shared by the replicas."""
        bucket = bucket_name(settings, TASKS_DONE)
        return StreamReader(
            js,
            stream=f"KV_{bucket}",
            subject=f"$KV.{bucket}.>",
            durable=f"{settings.agent_id}-relay",
            on_batch=self.relay,
            batch=RELAY_BATCH,
            linger_s=RELAY_LINGER_S,
        )

    def fresh(self, record: TaskRecord) -> bool:
        """Whether a claim may be sent: younger than the duplicate window allows."""
        if record.claimed_at is None:  # an agent before the relay claimed it
            return record.unsent_legacy
        return self.clock() - record.claimed_at < self.resend_within_s

    async def relay(self, msgs: list[Msg]) -> None:
        """Send the claims among ``msgs`` (raises when a send fails: all are delivered again)."""
        claims: list[tuple[_Answered, TaskRecord]] = []
        stale: list[str] = []
        for msg in msgs:
            if not msg.data or (msg.headers or {}).get("KV-Operation") in _DELETED:
                continue
            try:
                record = decode_record(msg.data)
                answered = _ANSWERED.decode(record.result)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                log.error("unreadable claim on %s (%s); not sent", msg.subject, exc)
                continue
            if self.fresh(record):
                claims.append((answered, record))
            else:
                stale.append(answered.task_id)
        if stale:
            self.writes.relay_skipped += len(stale)
            log.warning(
                "%d claim(s) older than a re-send allows (%.0f s) not sent, in case they "
                "were: tasks %s",
                len(stale),
                self.resend_within_s,
                ", ".join(stale[:5]) + (", …" if len(stale) > 5 else ""),
            )
        if claims:
            await self.send(claims)

    async def send(self, claims: list[tuple[_Answered, TaskRecord]]) -> None:
        """The claims' outputs and results in two waves: predictions, then the rest."""
        await asyncio.gather(*(self._wave(a, r, before=True) for a, r in claims))
        await asyncio.gather(*(self._wave(a, r, before=False) for a, r in claims))
        for _, record in claims:
            self.writes.relayed += 1
            self.writes.relay_writes += len(record.outputs) + 1
            self.writes.relay_waves += 2 if any(first(o) for o in record.outputs) else 1

    async def _wave(self, answered: _Answered, record: TaskRecord, *, before: bool) -> None:
        """One claim's share of a wave, in the task's trace: its predictions (``before``),
        else the rest of its outputs and its result."""
        with tracing.continued(record.trace):
            if before:
                await asyncio.gather(*(self.outbox.send(o) for o in record.outputs if first(o)))
                return
            await asyncio.gather(
                *(self.outbox.send(o) for o in record.outputs if not first(o)),
                self.publisher.to_stream(
                    subjects.results(self.agent_id, answered.task_type),
                    bytes(record.result),
                    msg_id=subjects.result_msg_id(answered.task_id),
                ),
            )

    async def send_one(self, record: TaskRecord) -> None:
        """One claim found by the answer path that no relay will send (an older agent's)."""
        await self.send([(_ANSWERED.decode(record.result), record)])


async def caught_up(reader: StreamReader, timeout: float) -> bool:
    """Whether the relay's consumer has delivered and had acknowledged every claim, waiting
    up to ``timeout`` for it (a shutdown lets the relay finish what was claimed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            info = await reader.js.consumer_info(reader.stream, reader.durable)
        except Exception as exc:  # the bus is away: nothing to wait for
            log.debug("relay consumer info failed: %r", exc)
            return False
        if not info.num_pending and not info.num_ack_pending:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(RELAY_DRAIN_POLL_S)
