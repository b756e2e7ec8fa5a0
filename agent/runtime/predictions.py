"""Predictions made, by recommendation id, kept durably so a later verification can be scored.

Athena's verification may arrive days later, after restarts and on another replica: the
prediction it is scored against lives in JetStream KV, written before the plan and the
baseline are published.
"""

from __future__ import annotations

import msgspec
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from agent.learning.records import PredictionRecord
from agent.planning.playbook import PLAYBOOK
from protocols.messages import OptimizationPlan, PerformanceBaseline

ENCODER = msgspec.json.Encoder()
APPROACH_KEYS = {approach.name: key for key, approach in PLAYBOOK.items()}
"""Display name (on the wire) → playbook key."""
_DECODER = msgspec.json.Decoder(PredictionRecord)


class Predictions:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def put_raw(self, recommendation_id: str, payload: bytes) -> None:
        await self.kv.put(recommendation_id, payload)

    async def get(self, recommendation_id: str) -> PredictionRecord | None:
        try:
            entry = await self.kv.get(recommendation_id)
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            return None
        return _DECODER.decode(entry.value) if entry.value else None


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
