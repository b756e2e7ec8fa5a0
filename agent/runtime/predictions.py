"""Predictions made, kept durably so a later verification can be scored against them.

Athena's verification may arrive days later, after restarts and on another replica: the
prediction it is scored against lives in JetStream KV, written before the baseline that
lets Athena verify it is published. One value per plan (``plan_key``: every prediction
of the plan, one write however many items it has); a verification and an implementation
update both name their plan (``plan_id``), so the lookup is one read. Agents before this
layout kept one value per recommendation id: a recommendation not found in its plan's
value is looked up there too.
"""

from __future__ import annotations

import msgspec
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from agent.learning.records import PredictionRecord
from agent.learning.state import plan_key
from agent.planning.playbook import PLAYBOOK
from agent.runtime.writer import BucketWrites
from protocols.messages import OptimizationPlan, PerformanceBaseline

ENCODER = msgspec.json.Encoder()
APPROACH_KEYS = {approach.name: key for key, approach in PLAYBOOK.items()}
"""Display name (on the wire) → playbook key."""


class PlanPredictions(msgspec.Struct, frozen=True, kw_only=True):
    """Every prediction of one plan: the KV value at ``plan_key(plan_id)``."""

    plan_id: str
    predictions: list[PredictionRecord] = []


_DECODER = msgspec.json.Decoder(PredictionRecord)
_PLAN_DECODER = msgspec.json.Decoder(PlanPredictions)


class Predictions:
    def __init__(self, kv: KeyValue, fast: BucketWrites | None = None) -> None:
        self.kv = kv
        self.fast = fast
        """The bucket's writes through the agent's writer: a plan's predictions made by it."""

    async def put_plan(self, plan_id: str, payload: bytes) -> None:
        """Store a plan's predictions (``PlanPredictions`` bytes): one write."""
        await (self.fast or self.kv).put(plan_key(plan_id), payload)

    async def put_raw(self, recommendation_id: str, payload: bytes) -> None:
        """One prediction by recommendation id: the layout of earlier agents, still sent
        when a task record they stored is answered again."""
        await self.kv.put(recommendation_id, payload)

    async def get(
        self, recommendation_id: str, plan_id: str | None = None
    ) -> PredictionRecord | None:
        """The prediction of ``recommendation_id``: from its plan's value, else its own key."""
        if plan_id is not None:
            value = await self._value(plan_key(plan_id))
            if value is not None:
                for record in _PLAN_DECODER.decode(value).predictions:
                    if record.recommendation_id == recommendation_id:
                        return record
        value = await self._value(recommendation_id)
        return _DECODER.decode(value) if value is not None else None

    async def _value(self, key: str) -> bytes | None:
        try:
            entry = await self.kv.get(key)
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            return None
        return entry.value or None


def prediction_records(
    plan: OptimizationPlan, baseline: PerformanceBaseline, task_id: str
) -> list[PredictionRecord]:
    """One record per prediction of ``baseline``, joined with its plan item."""
    items = {item.recommendation_id: item for item in plan.items}
    out = []
    for p in baseline.predictions:
        item = items[p.recommendation_id]
        metric = baseline.metrics[p.metric]
        out.append(
            PredictionRecord(
                recommendation_id=p.recommendation_id,
                task_id=task_id,
                plan_id=plan.plan_id,
                baseline_id=baseline.baseline_id,
                metric=p.metric,
                approach=p.approach,
                approach_key=APPROACH_KEYS.get(p.approach, ""),
                direction=metric.direction,
                baseline_value=metric.value,
                target_value=metric.target,
                expected_improvement_pct=item.expected_improvement_pct,
                expected_value=p.expected_value,
                created_at=baseline.captured_at,
                context=dict(p.context),
                service=baseline.service or "",
            )
        )
    return out


def plan_predictions(
    plan: OptimizationPlan, baseline: PerformanceBaseline, task_id: str
) -> PlanPredictions:
    return PlanPredictions(
        plan_id=plan.plan_id, predictions=prediction_records(plan, baseline, task_id)
    )
