"""The learning store: Athena's verifications and Hephaestus's feedback, in JetStream.

Two places, one truth:

- the **event log** (stream ``<PREFIX>_LEARNING``, subjects ``swarm.learning.<agent>.>``):
  every verification and update the agent accepted, with the prediction it matched,
  published with ``Nats-Msg-Id`` = the event id, kept without an age limit; the whole
  store can be rebuilt from it (``prometheus-backend learning rebuild``);
- the **state** (KV bucket ``<PREFIX>_LEARNING``): per (approach, metric) the verified
  outcomes' summary, per plan its progress, the infeasible pairs and the totals (plans
  issued are counted from the log, off the answer path: ``plan_counter``), each
  updated with the KV's optimistic concurrency (update at the revision read, retry on
  conflict) so replicas never lose each other's update. Every update is idempotent by
  event id, so a redelivered or duplicated message counts once.

The folding itself is the pure ``agent.learning.state``: the live path and the rebuild
run the very same functions.

Every task reads the whole state (``snapshot``). Reading it key by key would cost one KV
get per plan ever verified, so a running agent keeps a **mirror**: one long-lived KV
watcher (nats-py's ordered consumer, which re-creates itself after a reconnect) folds
every entry into memory through the same decoding as the direct read (``KvState``).
``snapshot`` asks the bucket's stream for its last sequence (one request, whatever the
number of keys), waits — briefly — until the mirror has applied that far (so a write by
another replica that returned before the call is seen), and hands out a copy. When the
mirror is not running, or lags beyond ``MIRROR_WAIT_S``, it reads the bucket directly and
re-starts the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from agent.config import Settings
from agent.learning.events import (
    FeedbackEvent,
    LearningEvent,
    VerificationEvent,
    decode_event,
    encode_event,
    feedback_event,
    verification_event,
)
from agent.learning.outcomes import outcome_of
from agent.learning.state import (
    INFEASIBLE_KEY,
    TOTALS_KEY,
    LearningState,
    OutcomeSummary,
    PlanProgress,
    Totals,
    apply_infeasible,
    apply_outcome,
    apply_plan_issued,
    apply_plan_verification,
    apply_totals_update,
    apply_totals_verification,
    apply_update,
    fold,
    plan_key,
    summary_key,
)
from agent.runtime.dead_letters import DeadLetters
from agent.runtime.kv import bucket_name, open_bucket
from agent.runtime.predictions import Predictions
from agent.runtime.reader import StreamReader
from agent.runtime.shared_read import SharedRead
from agent.runtime.streams import StreamSpec, ensure_stream
from agent.runtime.writer import JetStreamWriter
from protocols import ImplementationUpdate, VerificationResult, subjects

log = logging.getLogger(__name__)

T = TypeVar("T")
_ENC = msgspec.json.Encoder()
_INFEASIBLE = msgspec.json.Decoder(dict[str, str])
_TOTALS = msgspec.json.Decoder(Totals)
_SUMMARY = msgspec.json.Decoder(OutcomeSummary)
_PLAN = msgspec.json.Decoder(PlanProgress)

MIRROR_WAIT_S = 2.0
"""How long ``snapshot`` waits for the mirror to apply the bucket's latest write before it
reads the bucket directly (and re-starts the watcher)."""
MIRROR_RETRY_S = 2.0
"""Pause before watching again after the watch could not be set up."""
MIRROR_INACTIVE_S = 60.0
"""The watcher's consumer outlives a vanished client this long (nats-py's default: 5 min);
a normal stop deletes it at once. Must exceed any reconnect we ride out: past it the server
drops the consumer and nats-py makes a new one (from where it had got to) anyway."""


class PlanIssued(msgspec.Struct, frozen=True, kw_only=True):
    """Event: a plan was published with ``items`` items (the denominator of the shares)."""

    plan_id: str
    items: int
    deferred: bool = False
    """Counted into the totals later, from this log (``plan_counter``); false in markers of
    agents that counted the plan when they logged it."""


_PLAN_ISSUED = msgspec.json.Decoder(PlanIssued)


def events_subject(agent_id: str, kind: str) -> str:
    return f"swarm.learning.{agent_id}.{kind}"


def learning_stream_spec(settings: Settings) -> StreamSpec:
    """The event log: kept without an age limit, so the state can always be rebuilt."""
    return StreamSpec(
        "LEARNING",
        (events_subject(settings.agent_id, ">"),),
        "every accepted verification and update: the learning log",
        max_age_s=0.0,
    )


class KvState:
    """The learning state built from the bucket's entries, one key at a time.

    The one place a KV value is decoded: the direct read puts every key it gets, the mirror
    every entry its watcher delivers. An empty value, like a delete or purge marker, removes
    the key: a deleted KV key reads as absent everywhere. Each value decodes to new frozen
    objects and nothing here changes one in place, so ``copy`` shares them safely.
    """

    def __init__(self) -> None:
        self._state = LearningState()
        self._pairs: dict[str, tuple[str, str]] = {}
        """KV key → its summary's (approach, metric): what a delete marker removes."""
        self._plans: dict[str, str] = {}
        """KV key → its plan id."""
        self._sorted = True

    def put(self, key: str, value: bytes | None) -> None:
        if not value:
            self.remove(key)
            return
        state = self._state
        if key == TOTALS_KEY:
            state.totals = _TOTALS.decode(value)
        elif key == INFEASIBLE_KEY:
            state.infeasible = _INFEASIBLE.decode(value)
        elif key.startswith("outcome."):
            summary = _SUMMARY.decode(value)
            pair = (summary.approach_key, summary.metric)
            self._sorted = self._sorted and pair in state.summaries
            state.summaries[pair] = summary
            self._pairs[key] = pair
        elif key.startswith("plan."):
            progress = _PLAN.decode(value)
            state.plans[progress.plan_id] = progress
            self._plans[key] = progress.plan_id

    def remove(self, key: str) -> None:
        state = self._state
        if key == TOTALS_KEY:
            state.totals = Totals()
        elif key == INFEASIBLE_KEY:
            state.infeasible = {}
        elif (pair := self._pairs.pop(key, None)) is not None:
            state.summaries.pop(pair, None)
        elif (plan_id := self._plans.pop(key, None)) is not None:
            state.plans.pop(plan_id, None)

    def copy(self) -> LearningState:
        """A state of its own: new containers; summaries in (approach, metric) order, so that
        sums over them come out the same whichever way the state was read."""
        state = self._state
        if not self._sorted:
            state.summaries = dict(sorted(state.summaries.items()))
            self._sorted = True
        return state.copy()


class LearningMirror:
    """The learning bucket kept in memory by one long-lived watcher of all its keys.

    ``kv.watchall()`` is nats-py's ordered push consumer: the bucket's current values, then
    a ``None`` once they are all in, then every write as it happens. It re-creates its
    server-side consumer by itself — from the sequence it had got to — when a delivery is
    missed or heartbeats stop (a reconnect, a server restart). ``seq`` is the last stream
    sequence applied; ``ready`` says the initial values are in.
    """

    def __init__(
        self,
        js: JetStreamContext,
        kv: KeyValue,
        stream: str,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.js = js
        self.kv = kv
        self.stream = stream
        """The bucket's stream (``KV_<bucket>``)."""
        self.connected = connected
        """Whether the connection is up: a consumer is deleted only then (else it times out)."""
        self.parts = KvState()
        self.seq = 0
        self.ready = False
        self.created: datetime | None = None
        """When the stream watched was made: another time means the bucket was made anew."""
        self.restarts = 0
        self._failures = 0
        """Watches that failed in a row: the first is a warning, the rest debug."""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def caught_up(self, seq: int) -> bool:
        """The mirror holds every write up to stream sequence ``seq``."""
        return self.ready and self.seq >= seq

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mirror-{self.stream}")

    async def stop(self) -> None:
        """Stop watching (the server-side consumer is deleted); the state is dropped."""
        task, self._task = self._task, None
        self.ready = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._bump()

    async def restart(self) -> None:
        """Watch again from the bucket's current values (the mirror fell behind)."""
        self.restarts += 1
        await self.stop()
        self.start()

    async def wait(self, seq: int, timeout: float) -> bool:
        """Until the mirror has applied stream sequence ``seq``; False after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.caught_up(seq):
            remaining = deadline - loop.time()
            if remaining <= 0 or self._task is None:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def _bump(self) -> None:
        """Wake every ``wait``: something was applied (or the mirror stopped)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._watch()
            except Exception as exc:  # JetStream away or the bucket gone: try again
                self._failures += 1
                log.log(
                    logging.WARNING if self._failures == 1 else logging.DEBUG,
                    "learning mirror: watching %s failed (%r); trying again every %g s",
                    self.stream,
                    exc,
                    MIRROR_RETRY_S,
                )
            self.ready = False
            self._bump()
            await asyncio.sleep(MIRROR_RETRY_S)

    async def _watch(self) -> None:
        # Everything up to the stream's last sequence now is in once the initial values are:
        # the consumer is made after this read. (The last message may itself be gone —
        # a purge — and then no entry would ever carry its sequence.)
        info = await self.js.stream_info(self.stream)
        floor, created = info.state.last_seq or 0, info.created
        parts, seq = KvState(), 0
        setup = asyncio.ensure_future(self.kv.watchall(inactive_threshold=MIRROR_INACTIVE_S))
        try:
            watcher = await asyncio.shield(setup)
        except asyncio.CancelledError:  # stopped mid-setup: finish it, then undo it
            with contextlib.suppress(Exception):
                await _unwatch(self.js, self.stream, await setup, self.connected)
            raise
        try:
            async for entry in watcher:
                if entry is None:  # the initial values are all in: serve from here on
                    self.parts, self.seq, self.created = parts, max(seq, floor), created
                    self.ready = True
                    log.log(
                        logging.INFO if self._failures else logging.DEBUG,
                        "learning mirror of %s ready at sequence %d",
                        self.stream,
                        self.seq,
                    )
                    self._failures = 0
                    self._bump()
                    continue
                deleted = entry.operation in (KV_DEL, KV_PURGE)
                parts.put(entry.key, None if deleted else entry.value)
                seq = max(seq, entry.revision or 0)
                if self.ready:
                    self.seq = seq
                    self._bump()
        finally:
            await _unwatch(self.js, self.stream, watcher, self.connected)


async def _unwatch(
    js: JetStreamContext,
    stream: str,
    watcher: KeyValue.KeyWatcher,
    connected: Callable[[], bool],
) -> None:
    """Stop the watcher and delete its consumer (else it lingers ``MIRROR_INACTIVE_S``)."""
    # nats-py's KeyWatcher exposes neither its subscription nor its consumer's name, and a
    # watcher's ephemeral consumer cannot be named (nats-io/nats-architecture-and-design
    # #190): the name is read from the private subscription, the one way to delete it now.
    sub: Any = getattr(watcher, "_sub", None)
    if sub is None:
        return
    with contextlib.suppress(Exception):  # also ends its heartbeat and flow-control tasks
        await watcher.stop()  # type: ignore[no-untyped-call]  # unannotated in nats-py
    name = getattr(sub, "_consumer", None)
    if name and connected():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(js.delete_consumer(stream, name), 2.0)


class LearningStore:
    def __init__(
        self,
        js: JetStreamContext,
        kv: KeyValue,
        settings: Settings,
        stream: str,
        *,
        bucket: str,
        connected: Callable[[], bool] = lambda: True,
        writer: JetStreamWriter | None = None,
    ) -> None:
        self.js = js
        self.writer = writer
        self.kv = kv
        self.settings = settings
        self.stream = stream
        self.bucket = bucket
        self.kv_stream = f"KV_{bucket}"
        self.connected = connected
        self.mirror: LearningMirror | None = None
        self.bucket_info = SharedRead(functools.partial(js.stream_info, self.kv_stream))
        """The bucket's stream info (its last sequence), one request for the tasks that ask
        at once (``snapshot``, ``confirm``)."""
        self._lagging = False
        """The mirror missed ``MIRROR_WAIT_S``: read directly, without waiting, until it is back."""

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        settings: Settings,
        *,
        connected: Callable[[], bool] = lambda: True,
        writer: JetStreamWriter | None = None,
    ) -> LearningStore:
        """The bucket and the event log, each made when missing.

        ``connected`` says whether the connection is up (``nc.is_connected``): a stopped
        mirror deletes its consumer only then. The CLI's one-shot reads need none, nor
        the agent's ``writer`` (the log's appends go through it when given).
        """
        kv = await open_bucket(js, settings, "LEARNING", description="what verifications taught")
        stream = await ensure_stream(js, settings, learning_stream_spec(settings))
        bucket = bucket_name(settings, "LEARNING")
        return cls(js, kv, settings, stream, bucket=bucket, connected=connected, writer=writer)

    def start(self) -> None:
        """Keep the mirror from now on (a running agent: every task reads the state)."""
        if self.mirror is None:
            self.mirror = LearningMirror(self.js, self.kv, self.kv_stream, self.connected)
        self.mirror.start()

    async def stop(self) -> None:
        if self.mirror is not None:
            await self.mirror.stop()

    # --- optimistic concurrency --------------------------------------------------------

    async def _cas(
        self, key: str, decoder: msgspec.json.Decoder[T], apply: Callable[[T | None], T]
    ) -> bool:
        """Read, apply, write at the revision read; on a conflict read again. False: no change."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(KeyWrongLastSequenceError),
            wait=wait_random(0, 0.05),
            stop=stop_after_attempt(100),
            reraise=True,
        ):
            with attempt:
                try:
                    entry = await self.kv.get(key)
                    current: T | None = decoder.decode(entry.value) if entry.value else None
                    revision: int | None = entry.revision
                except NotFoundError:  # never written, or deleted (KeyDeletedError)
                    current, revision = None, None
                updated = apply(current)
                if updated is current:
                    return False
                if revision is None:
                    await self.kv.create(key, _ENC.encode(updated))
                else:
                    await self.kv.update(key, _ENC.encode(updated), last=revision)
        return True

    async def _log(self, kind: str, event_id: str, payload: bytes) -> None:
        subject, headers = events_subject(self.settings.agent_id, kind), {"Nats-Msg-Id": event_id}
        if self.writer is not None:
            acked = await self.writer.publish(subject, payload, headers)
            stream, seq = acked.stream, acked.seq
        else:
            ack = await self.js.publish(subject, payload, headers=headers)
            stream, seq = ack.stream, ack.seq
        log.debug("learning event %s at %s:%s", event_id, stream, seq)

    # --- what happens --------------------------------------------------------------------

    async def verification(self, v: VerificationResult, predictions: Predictions) -> str:
        """Log and apply one verification; returns applied, duplicate, unknown or undefined."""
        prediction = await predictions.get(v.recommendation_id, v.plan_id)
        event = verification_event(v, prediction)
        await self._log("verification", event.event_id, encode_event(event))
        return await self._apply(event)

    async def update(self, u: ImplementationUpdate, predictions: Predictions) -> str:
        prediction = await predictions.get(u.recommendation_id, u.plan_id)
        event = feedback_event(u, prediction)
        await self._log("feedback", event.event_id, encode_event(event))
        return await self._apply(event)

    async def plan_issued(self, plan_id: str, items: int) -> None:
        """Log that a plan went out: one append, on the answer's path. The totals count it
        later, off that path (``plan_counter`` reads them back from the log)."""
        marker = PlanIssued(plan_id=plan_id, items=items, deferred=True)
        await self._log("plan", f"p:{plan_id}", _ENC.encode(marker))

    async def count_plans(self, fold: Callable[[Totals | None], Totals]) -> None:
        """Apply ``fold`` (plans issued, idempotent by plan id) to the totals: one write."""
        await self._cas(TOTALS_KEY, _TOTALS, fold)

    async def _apply(self, event: LearningEvent) -> str:
        if isinstance(event, VerificationEvent):
            v, prediction = event.verification, event.prediction
            changed = await self._cas(
                TOTALS_KEY, _TOTALS, lambda t: apply_totals_verification(t, event)
            )
            if prediction is None:
                return "unknown" if changed else "duplicate"
            outcome = outcome_of(v, prediction)
            if outcome is None:
                return "undefined"
            await self._cas(
                summary_key(outcome.approach_key, outcome.metric),
                _SUMMARY,
                lambda s: apply_outcome(s, outcome),
            )
            await self._cas(
                plan_key(v.plan_id), _PLAN, lambda p: apply_plan_verification(p, outcome)
            )
            return "applied" if changed else "duplicate"
        return await self._apply_update(event)

    async def _apply_update(self, event: FeedbackEvent) -> str:
        """An update's three writes, in the order that makes a replay complete them all.

        Each write is idempotent by the update id on its own, but the infeasible pair is
        only changed by an update its plan has not recorded yet (``apply_event``: an update
        redelivered after a later one must not undo it). So the pair is written *before*
        the plan records the update: a crash between any two writes leaves the plan without
        it, and the redelivered message (the reader acks only after all three) finds it
        fresh again and re-applies the pair — the same value, so no second change — then
        the plan and the totals. The state equals the rebuild's (``fold``) either way.
        """
        u = event.update
        approach, metric = event.approach_key, event.metric
        if approach and metric and u.feasibility is not None:
            progress = await self._read(plan_key(u.plan_id), _PLAN)
            if progress is None or u.update_id not in progress.applied_updates:
                await self._cas(
                    INFEASIBLE_KEY,
                    _INFEASIBLE,
                    lambda current: apply_infeasible(current, u, approach, metric),
                )
        await self._cas(plan_key(u.plan_id), _PLAN, lambda p: apply_update(p, u))
        changed = await self._cas(TOTALS_KEY, _TOTALS, lambda t: apply_totals_update(t, event))
        return "applied" if changed else "duplicate"

    async def _read(self, key: str, decoder: msgspec.json.Decoder[T]) -> T | None:
        try:
            entry = await self.kv.get(key)
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            return None
        return decoder.decode(entry.value) if entry.value else None

    # --- reading it back -------------------------------------------------------------

    async def keys(self) -> list[str]:
        """The bucket's keys, from the stream's subjects.

        Not ``KeyValue.keys()``: nats-py makes an ordered consumer for it that lingers on
        the server for minutes, and every task reads the state — the server refused the
        1 000th such consumer and every later task failed (found by the crash-safety bench).
        """
        prefix = f"$KV.{self.bucket}."
        info = await self.js.stream_info(self.kv_stream, subjects_filter=f"{prefix}>")
        return sorted(s.removeprefix(prefix) for s in (info.state.subjects or {}))

    async def snapshot(self) -> LearningState:
        """The whole state as it is in KV now: every write that returned before the call is in.

        From the mirror when it runs: one request (the stream's last sequence) whatever the
        number of keys. Else, or when the mirror lags, read directly (``read``).
        """
        mirror = self.mirror
        if mirror is None or not mirror.running:
            return await self.read()
        info = await self.bucket_info()
        last = info.state.last_seq or 0
        if mirror.ready and mirror.created != info.created:  # deleted and made again
            await self._mirror_failed(mirror, f"the bucket was made anew at {info.created}")
        elif mirror.caught_up(last):
            if self._lagging:
                self._lagging = False
                log.info("learning mirror of %s caught up: reading from it again", self.kv_stream)
            return mirror.parts.copy()
        elif not self._lagging:
            if await mirror.wait(last, MIRROR_WAIT_S):
                return mirror.parts.copy()
            await self._mirror_failed(
                mirror,
                f"not at sequence {last} after {MIRROR_WAIT_S:g} s (at {mirror.seq}"
                f"{'' if mirror.ready else ', initial values not in'})",
            )
        return await self.read()

    def current(self) -> tuple[LearningState, int] | None:
        """The mirror's state now and the stream sequence it holds, with no request: what a
        task may start on before ``confirm`` says it holds every write acknowledged before
        it. None when the mirror is not serving (not running, not ready, lagging)."""
        mirror = self.mirror
        if mirror is None or not mirror.running or not mirror.ready or self._lagging:
            return None
        return mirror.parts.copy(), mirror.seq

    async def confirm(self, seq: int) -> LearningState | None:
        """None when a state the mirror held at stream sequence ``seq`` (``current``) holds
        every write acknowledged before this call (the stream's last sequence now is no
        further, and it is the same stream); else the state that does (``snapshot``)."""
        mirror = self.mirror
        info = await self.bucket_info()
        same = mirror is not None and mirror.created == info.created
        if same and seq >= (info.state.last_seq or 0):
            return None
        return await self.snapshot()

    async def _mirror_failed(self, mirror: LearningMirror, why: str) -> None:
        """Say so once, and watch again; until the mirror is back, snapshots read directly."""
        if not self._lagging:
            self._lagging = True
            log.warning(
                "learning mirror of %s: %s; reading the bucket directly and watching it again",
                self.kv_stream,
                why,
            )
            await mirror.restart()
        elif mirror.ready:  # re-started already, but what it watched was replaced since
            await mirror.restart()

    async def read(self) -> LearningState:
        """The whole state read key by key: one request per key (the CLI's one-shot read)."""
        parts = KvState()
        for key in await self.keys():
            try:
                entry = await self.kv.get(key)
            except NotFoundError:  # deleted or purged since the listing
                continue
            parts.put(key, entry.value)
        return parts.copy()

    async def events(self) -> tuple[list[LearningEvent], list[tuple[str, int]]]:
        """Every logged event in order, and the plans issued."""
        info = await self.js.stream_info(self.stream)
        events: list[LearningEvent] = []
        plans: list[tuple[str, int]] = []
        last = info.state.last_seq or 0
        for seq in range(info.state.first_seq or 1, last + 1):
            try:
                raw = await self.js.get_msg(self.stream, seq)
            except NotFoundError:
                continue
            data = raw.data or b""
            if (raw.subject or "").endswith(".plan"):
                marker = _PLAN_ISSUED.decode(data)
                plans.append((marker.plan_id, marker.items))
            else:
                events.append(decode_event(data))
        return events, plans

    async def rebuild(self) -> LearningState:
        """Fold the event log into a fresh state and write it over the KV (keys not in it go)."""
        events, plans = await self.events()
        state = fold(events, plans)
        wanted: dict[str, bytes] = {TOTALS_KEY: _ENC.encode(state.totals)}
        if state.infeasible:
            wanted[INFEASIBLE_KEY] = _ENC.encode(state.infeasible)
        for (approach, metric), summary in state.summaries.items():
            wanted[summary_key(approach, metric)] = _ENC.encode(summary)
        for plan_id, progress in state.plans.items():
            wanted[plan_key(plan_id)] = _ENC.encode(progress)
        existing = set(await self.keys())
        for key in existing - set(wanted):
            await self.kv.delete(key)
        for key, value in wanted.items():
            await self.kv.put(key, value)
        return state


def learning_readers(
    js: JetStreamContext,
    settings: Settings,
    streams: dict[str, str],
    store: LearningStore,
    predictions: Predictions,
    dead_letters: DeadLetters,
) -> list[StreamReader]:
    """Durable readers of Athena's verifications and Hephaestus's feedback."""
    agent = settings.agent_id

    def reader(role: str, subject: str, schema: type[Any], apply: Any) -> StreamReader:
        stream = streams[role]

        async def handle(msg: Msg) -> None:
            message = await dead_letters.decode_or_send(msg, stream, schema)
            if message is None:
                return
            outcome = await apply(message, predictions)
            log.info("%s %s: %s", role.lower(), msg.subject, outcome)

        return StreamReader(
            js, stream=stream, subject=subject, durable=f"{agent}-{role.lower()}", handler=handle
        )

    return [
        reader(
            "VERIFICATIONS", subjects.verifications(agent), VerificationResult, store.verification
        ),
        reader("FEEDBACK", subjects.feedback(agent), ImplementationUpdate, store.update),
    ]


PLAN_COUNT_LINGER_S = 0.05
"""How long the plan counter waits after a fetch that was not full (``plan_counter``)."""


def plan_counter(js: JetStreamContext, settings: Settings, store: LearningStore) -> StreamReader:
    """Counts the plans the learning log says went out into the totals, off the answer path.

    One durable pull consumer of the log's ``plan`` subject, shared by the replicas; each
    fetch (up to 64 markers) is folded into the totals with one compare-and-set, then
    acked; after a fetch that was not full it waits ``PLAN_COUNT_LINGER_S`` before the next,
    so markers arriving one by one are counted several per write (an idle counter counts a
    marker as soon as it arrives): under load far fewer writes than plans (each one reads
    and rewrites the totals, whose remembered plan ids make them tens of kB), and the
    totals lag the plans published by about one fetch and that wait. Markers of agents
    that counted inline (``deferred`` false) are skipped; a marker delivered again is
    counted once (``apply_plan_issued`` remembers the last ``TOTALS_IDS_CAP`` plan ids).
    """
    return StreamReader(
        js,
        stream=store.stream,
        subject=events_subject(settings.agent_id, "plan"),
        durable=f"{settings.agent_id}-plans",
        on_batch=functools.partial(_count_plans, store),
        batch=64,
        linger_s=PLAN_COUNT_LINGER_S,
    )


async def _count_plans(store: LearningStore, msgs: list[Msg]) -> None:
    """Fold the deferred markers among ``msgs`` into the totals: one write at most."""
    plans: list[PlanIssued] = []
    for msg in msgs:
        try:
            marker = _PLAN_ISSUED.decode(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            log.error("unreadable plan marker on %s; skipped", msg.subject)
            continue
        if marker.deferred:
            plans.append(marker)
    if not plans:
        return

    def fold_all(totals: Totals | None) -> Totals:
        out = totals if totals is not None else Totals()
        for marker in plans:
            out = apply_plan_issued(out, marker.plan_id, marker.items)
        return out

    await store.count_plans(fold_all)
