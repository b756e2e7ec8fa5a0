"""What goes to the builder and the verifier: a plan for Hephaestus, a baseline for Athena.

Pure and deterministic: built from a finished report and the task id alone, so a
redelivered task produces the very same bytes (and ids) as the first time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from agent.analysis.catalog import CATALOG
from protocols.messages import (
    AnalysisReport,
    BaselineMetric,
    MetricPerformance,
    OptimizationPlan,
    PerformanceBaseline,
    Phase,
    PlanItem,
    PlanningReport,
    Prediction,
    Recommendation,
)

PHASE_OF_TYPE: Mapping[str, Phase] = {
    "critical_fix": "Phase_1_Critical",
    "optimization": "Phase_2_High",
    "improvement": "Phase_3_Medium",
}
"""Phase of an analysis report's recommendation (a plan report names its own phases)."""
RATIONALE_MAX = 4096
"""A plan item's rationale is cut here (the wire's ``Text``); the report keeps it whole."""


def _digest(task_id: str) -> str:
    return hashlib.sha256(task_id.encode()).hexdigest()[:16]


def plan_id_for(task_id: str) -> str:
    return f"plan-{_digest(task_id)}"


def baseline_id_for(task_id: str) -> str:
    return f"baseline-{_digest(task_id)}"


def expected_value(perf: MetricPerformance, improvement_pct: float, *, bounded: bool) -> float:
    """The metric's value if the expected improvement happens, direction-aware.

    Lower is better: ``current × (1 − g)``. Bounded higher-is-better (a percentage
    with a ceiling of 100): the gap to 100 shrinks, ``100 − (100 − current)(1 − g)``.
    Other higher-is-better: ``current × (1 + g)``. ``g`` is capped at 100 % for reductions.
    """
    g = improvement_pct / 100.0
    current = perf.current
    if perf.direction == "lower_is_better":
        return current * (1.0 - min(g, 1.0))
    if bounded:
        return 100.0 - (100.0 - current) * (1.0 - min(g, 1.0))
    return current * (1.0 + g)


def _items(
    report: AnalysisReport | PlanningReport, recs: list[Recommendation]
) -> list[tuple[Recommendation, Phase]]:
    if isinstance(report, PlanningReport):
        by_id = {r.recommendation_id: r for r in recs}
        return [
            (by_id[e.recommendation_id], e.implementation_phase)
            for e in report.prioritized_plan
            if e.recommendation_id in by_id
        ]
    return [(r, PHASE_OF_TYPE[r.type]) for r in recs]


def handoff(
    report: AnalysisReport | PlanningReport,
    *,
    task_id: str,
    agent_id: str,
    service: str | None = None,
) -> tuple[OptimizationPlan, PerformanceBaseline] | None:
    """The plan and the baseline for a report that recommends something (else None)."""
    recs = report.recommendations
    performance = report.performance
    items = [(r, phase) for r, phase in _items(report, recs) if r.target in performance]
    if not items:
        return None
    created = report.created_at if isinstance(report, PlanningReport) else report.timestamp
    plan_id, baseline_id = plan_id_for(task_id), baseline_id_for(task_id)
    plan = OptimizationPlan(
        plan_id=plan_id,
        created_at=created,
        agent_id=agent_id,
        source_task_id=task_id,
        service=service,
        items=[
            PlanItem(
                recommendation_id=r.recommendation_id,
                target=r.target,
                approach=r.approach,
                priority=rank,
                phase=phase,
                baseline_value=performance[r.target].current,
                target_value=performance[r.target].target,
                expected_improvement_pct=r.expected_improvement_pct,
                effort=r.effort,
                risk=r.risk,
                score=r.score,
                score_rationale=r.rationale[:RATIONALE_MAX],
                provenance={
                    ("effort" if k == "effort_weeks" else k): v for k, v in r.provenance.items()
                },
            )
            for rank, (r, phase) in enumerate(items, start=1)
        ],
    )
    baseline = PerformanceBaseline(
        baseline_id=baseline_id,
        plan_id=plan_id,
        captured_at=created,
        service=service,
        window=report.window or "1h",
        metrics={
            name: BaselineMetric(
                value=perf.current,
                target=perf.target,
                unit=perf.unit,
                direction=perf.direction,
                samples=perf.samples,
            )
            for name, perf in performance.items()
        },
        predictions=[
            Prediction(
                recommendation_id=r.recommendation_id,
                metric=r.target,
                approach=r.approach,
                expected_improvement_pct=r.expected_improvement_pct.expected,
                expected_value=round(
                    expected_value(
                        performance[r.target],
                        r.expected_improvement_pct.expected,
                        bounded=CATALOG[r.target].bounded if r.target in CATALOG else False,
                    ),
                    6,
                ),
                expected_range=r.expected_improvement_pct,
                context=r.context,
            )
            for r, _ in items
        ],
    )
    return plan, baseline
