"""What a strategy is: a pure function from a task's context to its report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.learning.state import LearningState
from agent.store import MetricStore
from protocols import AnalysisReport, PlanningReport, StrategicDirective, TaskParams, TaskType


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Everything a strategy may read. No clock, no bus, no environment: ``now`` is given."""

    task_id: str
    task_type: TaskType
    now: datetime
    params: TaskParams
    default_window: str = "1h"
    target_overrides: Mapping[str, float] = field(default_factory=dict)
    """Targets from configuration; a task's own ``params.targets`` win over these."""
    store: MetricStore | None = None
    """Samples already loaded (a live source, a benchmark); None = the task's inline data."""
    directive: StrategicDirective | None = None
    """Helios's directive in force (weights, focus areas, targets), if any."""
    business_weights: Mapping[str, float] = field(default_factory=dict)
    """Configured business weights by category (empty: the swarm's defaults, docs/design.md)."""
    scaling_triggers: Mapping[str, float] = field(default_factory=dict)
    """Configured scaling triggers by metric, over the swarm's defaults (docs/design.md)."""
    learning: LearningState | None = None
    source_report: Mapping[str, Any] = field(default_factory=dict)
    """What the live source said while filling ``store`` (per-metric status, errors)."""
    """What verified outcomes taught (calibration, infeasible approaches); None: nothing yet."""


Report = AnalysisReport | PlanningReport
Strategy = Callable[[TaskContext], Report]
