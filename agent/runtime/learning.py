"""The learning store: Athena's verifications and Hephaestus's feedback, in JetStream.

Two places, one truth:

- the **event log** (stream ``<PREFIX>_LEARNING``, subjects ``swarm.learning.<agent>.>``):
  every verification and update the agent accepted, with the prediction it matched,
  published with ``Nats-Msg-Id`` = the event id, kept without an age limit; the whole
  store can be rebuilt from it (``prometheus-backend learning rebuild``);
- the **state** (KV bucket ``<PREFIX>_LEARNING``): per (approach, metric) the verified
  outcomes' summary, per plan its progress, the infeasible pairs and the totals, each
  updated with the KV's optimistic concurrency (update at the revision read, retry on
  conflict) so replicas never lose each other's update. Every update is idempotent by
  event id, so a redelivered or duplicated message counts once.

The folding itself is the pure ``agent.learning.state``: the live path and the rebuild
run the very same functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from agent.config import Settings
from agent.learning.events import (
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
from agent.runtime.dispatcher import Dispatcher
from agent.runtime.kv import open_bucket
from agent.runtime.predictions import Predictions
from agent.runtime.reader import StreamReader
from protocols import ImplementationUpdate, VerificationResult, subjects

log = logging.getLogger(__name__)

T = TypeVar("T")
_ENC = msgspec.json.Encoder()
_INFEASIBLE = msgspec.json.Decoder(dict[str, str])


class PlanIssued(msgspec.Struct, frozen=True, kw_only=True):
    """Event: a plan was published with ``items`` items (the denominator of the shares)."""

    plan_id: str
    items: int


_PLAN_ISSUED = msgspec.json.Decoder(PlanIssued)


def events_subject(agent_id: str, kind: str) -> str:
    return f"swarm.learning.{agent_id}.{kind}"


class LearningStore:
    def __init__(self, js: JetStreamContext, kv: KeyValue, settings: Settings, stream: str) -> None:
        self.js = js
        self.kv = kv
        self.settings = settings
        self.stream = stream

    @classmethod
    async def open(cls, js: JetStreamContext, settings: Settings) -> LearningStore:
        kv = await open_bucket(js, settings, "LEARNING", description="what verifications taught")
        name = f"{settings.streams_token}_LEARNING"
        subject = events_subject(settings.agent_id, ">")
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=name,
                    description="every accepted verification and update: the learning log",
                    subjects=[subject],
                    retention=RetentionPolicy.LIMITS,
                    storage=StorageType.FILE,
                    discard=DiscardPolicy.OLD,
                    num_replicas=settings.stream_replicas,
                    duplicate_window=settings.duplicate_window_s,
                )
            )
        return cls(js, kv, settings, name)

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
        ack = await self.js.publish(
            events_subject(self.settings.agent_id, kind),
            payload,
            headers={"Nats-Msg-Id": event_id},
        )
        log.debug("learning event %s at %s:%s", event_id, ack.stream, ack.seq)

    # --- what happens --------------------------------------------------------------------

    async def verification(self, v: VerificationResult, predictions: Predictions) -> str:
        """Log and apply one verification; returns applied, duplicate, unknown or undefined."""
        prediction = await predictions.get(v.recommendation_id)
        event = verification_event(v, prediction)
        await self._log("verification", event.event_id, encode_event(event))
        return await self._apply(event)

    async def update(self, u: ImplementationUpdate, predictions: Predictions) -> str:
        prediction = await predictions.get(u.recommendation_id)
        event = feedback_event(u, prediction)
        await self._log("feedback", event.event_id, encode_event(event))
        return await self._apply(event)

    async def plan_issued(self, plan_id: str, items: int) -> None:
        marker = PlanIssued(plan_id=plan_id, items=items)
        await self._log("plan", f"p:{plan_id}", _ENC.encode(marker))
        await self._cas(TOTALS_KEY, _TOTALS, lambda t: apply_plan_issued(t, plan_id, items))

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
        u = event.update
        changed = await self._cas(TOTALS_KEY, _TOTALS, lambda t: apply_totals_update(t, event))
        fresh = await self._cas(plan_key(u.plan_id), _PLAN, lambda p: apply_update(p, u))
        approach, metric = event.approach_key, event.metric
        if fresh and approach and metric and u.feasibility is not None:
            await self._cas(
                INFEASIBLE_KEY,
                _INFEASIBLE,
                lambda current: apply_infeasible(current, u, approach, metric),
            )
        return "applied" if changed else "duplicate"

    # --- reading it back -------------------------------------------------------------

    async def keys(self) -> list[str]:
        """The bucket's keys, from the stream's subjects.

        Not ``KeyValue.keys()``: nats-py makes an ordered consumer for it that lingers on
        the server for minutes, and every task reads the state — the server refused the
        1 000th such consumer and every later task failed (found by the crash-safety bench).
        """
        bucket = f"KV_{self.kv._name}"
        prefix = f"$KV.{self.kv._name}."
        info = await self.js.stream_info(bucket, subjects_filter=f"{prefix}>")
        return sorted(s.removeprefix(prefix) for s in (info.state.subjects or {}))

    async def snapshot(self) -> LearningState:
        """The whole state as it is in KV now."""
        state = LearningState()
        for key in await self.keys():
            try:
                entry = await self.kv.get(key)
            except NotFoundError:  # deleted or purged since the listing
                continue
            if not entry.value:
                continue
            if key == TOTALS_KEY:
                state.totals = _TOTALS.decode(entry.value)
            elif key == INFEASIBLE_KEY:
                state.infeasible = _INFEASIBLE.decode(entry.value)
            elif key.startswith("outcome."):
                summary = _SUMMARY.decode(entry.value)
                state.summaries[(summary.approach_key, summary.metric)] = summary
            elif key.startswith("plan."):
                progress = _PLAN.decode(entry.value)
                state.plans[progress.plan_id] = progress
        return state

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


_TOTALS = msgspec.json.Decoder(Totals)
_SUMMARY = msgspec.json.Decoder(OutcomeSummary)
_PLAN = msgspec.json.Decoder(PlanProgress)


def learning_readers(
    js: JetStreamContext,
    settings: Settings,
    streams: dict[str, str],
    store: LearningStore,
    predictions: Predictions,
    dispatcher: Dispatcher,
) -> list[StreamReader]:
    """Durable readers of Athena's verifications and Hephaestus's feedback."""
    agent = settings.agent_id

    def reader(role: str, subject: str, schema: type[Any], apply: Any) -> StreamReader:
        stream = streams[role]

        async def handle(msg: Msg) -> None:
            message = await dispatcher.decode_or_dead_letter(msg, stream, schema)
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
