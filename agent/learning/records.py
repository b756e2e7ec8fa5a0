"""What the learning loop remembers: each prediction made, in KV by recommendation id."""

from __future__ import annotations

from datetime import datetime

import msgspec

from protocols.messages import Direction, ImprovementRange


class PredictionRecord(msgspec.Struct, frozen=True, kw_only=True):
    recommendation_id: str
    task_id: str
    plan_id: str
    baseline_id: str
    metric: str
    approach: str
    """The approach's display name (as on the wire)."""
    approach_key: str = ""
    """The playbook key of the approach (empty when it is not in the playbook)."""
    direction: Direction
    baseline_value: float
    target_value: float
    expected_improvement_pct: ImprovementRange
    expected_value: float
    created_at: datetime
    context: dict[str, float] = {}
    """The state the prediction was made for (``learning.model.Context``): the features
    a verification of it is learned with. Empty in records that predate it."""
    service: str = ""
    """The backend it was made for (the task's ``params.service``); empty: not named."""
