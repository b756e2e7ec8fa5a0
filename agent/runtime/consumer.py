"""The durable path: a pull consumer on ``swarm.tasks.<agent>.>`` feeding the shared pool.

At-least-once in, exactly-once out: a message is acked only after its result is stored
and published; long work sends ``in_progress`` so it is not redelivered meanwhile; a
message that keeps failing is dead-lettered and terminated on its last delivery.
A pull subscription that breaks (e.g. after a server restart, nats.py #504) is re-made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from agent.config import Settings
from agent.runtime.counters import Counters
from agent.runtime.dispatcher import Dispatcher
from agent.runtime.inbound import Inbound
from agent.runtime.pool import WorkPool
from agent.runtime.reader import StreamReader
from protocols import subjects

log = logging.getLogger(__name__)

FETCH_WAIT_S = 1.0
HOLD_AHEAD_S = 0.1
"""How much strategy time a replica holds in fetched tasks beyond the two it computes now
and next (``TaskConsumer._room``): cheap tasks are fetched by the slot-full, so their
waits on NATS overlap; long ones two at a time, so a replica never sits on work another
replica could start (``max_ack_pending`` is the consumer's, shared by the replicas: with
16 slots each, one replica took 154 of 248 planning tasks and 2 replicas did 1.37× of
one; holding two at a time, 126 of 248 and 2.02×)."""


class TaskConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        settings: Settings,
        stream: str,
        dispatcher: Dispatcher,
        pool: WorkPool,
        counters: Counters,
    ) -> None:
        self.js = js
        self.settings = settings
        self.stream = stream
        self.dispatcher = dispatcher
        self.pool = pool
        self.counters = counters
        self.durable = f"{settings.agent_id}-tasks"
        self._stopping = asyncio.Event()
        self._sub: JetStreamContext.PullSubscription | None = None
        self.held = 0
        """Tasks fetched and not yet settled (acked, nak'ed or given up)."""
        self._settled = asyncio.Event()

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            description="tasks for the strategist",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            max_deliver=self.settings.max_deliver,
            max_ack_pending=self.settings.max_ack_pending,
            filter_subject=subjects.tasks_all(self.settings.agent_id),
        )

    async def subscribe(self) -> None:
        self._sub = await self.js.pull_subscribe(
            subjects.tasks_all(self.settings.agent_id),
            durable=self.durable,
            stream=self.stream,
            config=self.consumer_config(),
            pending_msgs_limit=self.settings.max_ack_pending * 4,
        )

    def stop(self) -> None:
        """Stop fetching; work already fetched goes on."""
        self._stopping.set()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            free = await self.pool.wait_free()
            room = await self._wait_room()
            if self._stopping.is_set():
                break
            try:
                if self._sub is None:
                    await self.subscribe()
                assert self._sub is not None
                msgs = await self._sub.fetch(min(free, room, 64), timeout=FETCH_WAIT_S)
            except (TimeoutError, nats.errors.TimeoutError):
                msgs = []  # nothing now (nats.py #418), not an error
            except Exception as exc:
                log.warning("fetching tasks failed (%r); re-subscribing in %.1fs", exc, backoff)
                await self.close()  # an abandoned inbox would keep a fetch alive and stall drain
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            self.held += len(msgs)
            for msg in msgs:
                self.pool.run_durable(lambda m=msg: self._process(m))  # type: ignore[misc]
        await self.close()

    def _room(self) -> int:
        """How many more tasks to hold: as many as ``HOLD_AHEAD_S`` of typical strategy time,
        plus the two computing now and next, less those held (64 before any strategy ran)."""
        typical = self.dispatcher.handler.compute.typical_s
        if typical <= 0.0:
            return 64
        return int(HOLD_AHEAD_S / typical) + 2 - self.held

    async def _wait_room(self) -> int:
        """Wait until there is room for one more task (or the consumer stops); how much."""
        while (room := self._room()) <= 0 and not self._stopping.is_set():
            self._settled.clear()
            with contextlib.suppress(TimeoutError):  # stopping wakes the loop too
                await asyncio.wait_for(self._settled.wait(), FETCH_WAIT_S)
        return max(room, 1)

    async def close(self) -> None:
        """Drop the pull subscription (the durable consumer stays on the server)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _heartbeat(self, msg: Msg) -> None:
        """Tell the server the task is still being worked on, so it is not redelivered."""
        interval = max(0.2, self.settings.ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _process(self, msg: Msg) -> None:
        try:
            await self._answer(msg)
        finally:
            self.held -= 1
            self._settled.set()

    async def _answer(self, msg: Msg) -> None:
        meta = msg.metadata
        delivered = int(meta.num_delivered or 1)
        if delivered > 1:
            self.counters.redelivered += 1
        ref = f"{self.stream}:{meta.sequence.stream}"
        inbound = Inbound(msg.subject, msg.data, msg.headers, "jetstream", ref)
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self.dispatcher.handle(inbound)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        except Exception as exc:
            await self._failed_delivery(msg, inbound, delivered, exc)
            return
        finally:
            heartbeat.cancel()
        await msg.ack()

    async def _failed_delivery(
        self, msg: Msg, inbound: Inbound, delivered: int, exc: Exception
    ) -> None:
        """The answer could not be stored or published: retry later, or give up on the last try."""
        if delivered < self.settings.max_deliver:
            log.warning(
                "task on %s not answered (%r); redelivery %d", msg.subject, exc, delivered + 1
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=min(2.0**delivered, 30.0))
            return
        log.error("task on %s failed %d deliveries; dead-lettering it", msg.subject, delivered)
        try:
            await self.dispatcher.give_up(inbound, delivered, repr(exc))
        except Exception:
            log.exception("could not dead-letter; the max-deliveries advisory will retry it")
        with contextlib.suppress(Exception):
            await msg.term()


def max_deliveries_subject(stream: str, durable: str) -> str:
    """The server's advisory when a message of ``durable`` ran out of deliveries."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}"


def max_deliveries_reader(
    js: JetStreamContext, agent_id: str, advisories: str, tasks: str, dispatcher: Dispatcher
) -> StreamReader:
    """Answers tasks the server stopped delivering (the agent died on each try, e.g. OOM).

    The advisories are captured in a stream, so one raised while no agent was alive is
    handled by the next one to start: the task is dead-lettered and answered ``failed``.
    """

    async def handle(advisory: Msg) -> None:
        event = json.loads(advisory.data)
        seq, deliveries = int(event["stream_seq"]), int(event.get("deliveries", 0))
        try:
            raw = await js.get_msg(tasks, seq)
        except NotFoundError:
            log.warning("task %s:%d ran out of deliveries and is gone from the stream", tasks, seq)
            return
        inbound = Inbound(
            raw.subject or "", raw.data or b"", raw.headers, "jetstream", f"{tasks}:{seq}"
        )
        log.error(
            "task %s:%d ran out of deliveries (%d); answering it failed", tasks, seq, deliveries
        )
        await dispatcher.give_up(inbound, deliveries, "the server stopped delivering it")

    return StreamReader(
        js,
        stream=advisories,
        subject=max_deliveries_subject(tasks, f"{agent_id}-tasks"),
        durable=f"{agent_id}-max-deliveries",
        handler=handle,
    )
