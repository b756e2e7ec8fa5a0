"""The one outbox: what a task or a monitor run sends besides its answer, as typed outputs.

Outputs are made with the answer and stored with it (the task record, the monitor's KV
value) before any is sent, so a crash in between re-sends them; each is idempotent
(``Nats-Msg-Id``, a KV key, an event id), so nothing is stored twice. The stored JSON
is the shape earlier versions wrote (``kind``, ``target``, ``payload``, ``msg_id``), so
records written before an upgrade still decode (and ``Prediction``, one per
recommendation, is still sent when one of them is answered again).

``first`` says which outputs must be acknowledged before the others are sent: the
predictions, stored before the baseline that lets Athena verify them goes out.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from agent.runtime.predictions import Predictions
from agent.runtime.publisher import Publisher


class Publish(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="publish"):
    """A JetStream publish, stored once by its ``msg_id``."""

    subject: str = msgspec.field(name="target")
    payload: msgspec.Raw
    msg_id: str = ""


class PlanPredictionsOut(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="predictions"
):
    """Every prediction of a plan, one KV value keyed by plan id (``PlanPredictions``)."""

    plan_id: str = msgspec.field(name="target")
    payload: msgspec.Raw


class Prediction(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="prediction"):
    """One prediction in KV by recommendation id: what agents before ``PlanPredictionsOut``
    stored in their task records."""

    recommendation_id: str = msgspec.field(name="target")
    payload: msgspec.Raw


class IssuedItems(msgspec.Struct, frozen=True):
    items: int


class PlanIssued(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="plan_issued"):
    """A plan went out with this many items: the denominator of the learning shares."""

    plan_id: str = msgspec.field(name="target")
    issued: IssuedItems = msgspec.field(name="payload")


Output = Publish | PlanPredictionsOut | Prediction | PlanIssued


def first(output: Output) -> bool:
    """Whether ``output`` must be acknowledged before the rest (and the result) are sent."""
    return isinstance(output, PlanPredictionsOut | Prediction)


class PlanLog(Protocol):
    async def plan_issued(self, plan_id: str, items: int) -> None: ...


class Outbox:
    """Sends outputs: the one place that knows what each kind of output means."""

    def __init__(self, publisher: Publisher, predictions: Predictions, plans: PlanLog) -> None:
        self.publisher = publisher
        self.predictions = predictions
        self.plans = plans

    async def send(self, output: Output) -> None:
        """One acknowledged write."""
        match output:
            case Publish(subject=subject, payload=payload, msg_id=msg_id):
                await self.publisher.to_stream(subject, bytes(payload), msg_id=msg_id or None)
            case PlanPredictionsOut(plan_id=plan_id, payload=payload):
                await self.predictions.put_plan(plan_id, bytes(payload))
            case Prediction(recommendation_id=rid, payload=payload):
                await self.predictions.put_raw(rid, bytes(payload))
            case PlanIssued(plan_id=plan_id, issued=issued):
                await self.plans.plan_issued(plan_id, issued.items)
