"""``strategic_backend_planning``: the synthesis — one prioritised, costed plan for the backend.

Every metric with data is assessed (the same pipeline as the domain analyses); the
bottlenecks' candidate approaches are scored and phased (``planning.prioritize``),
the plan's return is computed (``planning.roi``), its risks and resources listed
(``planning.risk``), and the capacity of the system projected from the observed load
(``planning.capacity``). Helios's directive in force sets the business weights, focus
areas and targets. Planning looks back ``PLANNING_WINDOW`` unless the task says otherwise:
demand growth needs history.
"""

from __future__ import annotations

import dataclasses

import msgspec

from agent.analysis.catalog import CATALOG
from agent.learning.effectiveness import effectiveness
from agent.monitoring.triggers import SCALING_TRIGGERS
from agent.planning.capacity import capacity_projections
from agent.planning.handoff import plan_id_for
from agent.planning.prioritize import (
    CATEGORIES,
    DEFAULT_WEIGHTS,
    BusinessWeights,
    PlannedItem,
    category_of,
    prioritize,
    sunk_candidates,
)
from agent.planning.recommend import RECOMMENDATION_TYPE, improvement_text, playbook_provenance
from agent.planning.risk import resource_requirements, risk_assessment
from agent.planning.roi import infrastructure_roi, timeline_estimate
from agent.strategies.base import TaskContext
from agent.strategies.domain import (
    DomainScope,
    assess,
    bottlenecks_of,
    calibration_of,
    data_quality,
    measured_of,
    report_series,
    signals_of,
    sinking_of,
)
from protocols.reports import PlanningReport, Recommendation, Skipped, WeightsUsed

PLANNING_WINDOW = "7d"
FOCUS_BOOST = 1.5
"""Weight multiplier of a category a directive's focus areas name (then renormalised)."""

DOMAIN = DomainScope(task_type="strategic_backend_planning", primary=tuple(CATALOG))


def weights_for(ctx: TaskContext) -> tuple[BusinessWeights, str]:
    """Business weights: the directive's, else the configuration's, else ``DEFAULT_WEIGHTS``;
    categories of the directive's focus areas are boosted ×1.5 and the weights renormalised."""
    directive = ctx.directive
    if directive is not None and directive.business_impact_weights is not None:
        weights, source = BusinessWeights.from_wire(directive.business_impact_weights), "directive"
    elif ctx.business_weights:
        weights, source = BusinessWeights(**ctx.business_weights), "config"
    else:
        weights, source = DEFAULT_WEIGHTS, "default"
    focus = set(directive.focus_areas) if directive is not None else set()
    if not focus:
        return weights, source
    boosted = {
        c: weights.weight(c) * (FOCUS_BOOST if _focused(c, focus) else 1.0) for c in CATEGORIES
    }
    total = sum(boosted.values())
    return BusinessWeights(**{c: w / total for c, w in boosted.items()}), f"{source}+focus"


def _focused(category: str, focus: set[str]) -> bool:
    """Whether a focus area (a task type) is about metrics of ``category``."""
    from agent.strategies import SCOPES  # the route table's scopes (imported late: a cycle)

    return any(
        category_of(CATALOG[m]) == category
        for task_type in focus
        if task_type in SCOPES
        for m in SCOPES[task_type].primary
    )


def _recommendation(item: PlannedItem) -> Recommendation:
    c = item.primary
    return Recommendation(
        recommendation_id=item.recommendation_id,
        type=RECOMMENDATION_TYPE[c.finding.severity],
        target=c.metric,
        approach=item.approach.name,
        expected_improvement=improvement_text(item.approach, c.finding.judgement.spec, c.gain),
        expected_improvement_pct=c.gain.to_range(item.approach.key),
        effort=f"{item.approach.effort_weeks:g} engineer-weeks",
        effort_weeks=item.approach.effort_weeks,
        risk=f"{item.approach.risk_level}: {item.approach.risk}",
        calibrated=c.gain.calibrated,
        verifications=c.gain.verifications,
        provenance=playbook_provenance(item.approach),
        score=round(item.score, 2),
        rationale=item.rationale,
        context=dict(c.gain.context),
    )


def analyze(ctx: TaskContext) -> PlanningReport:
    if ctx.params.window is None:
        ctx = dataclasses.replace(
            ctx, params=msgspec.structs.replace(ctx.params, window=PLANNING_WINDOW)
        )
    a = assess(ctx, DOMAIN)
    weights, weights_source = weights_for(ctx)
    findings = [f for f in a.findings if f.metric not in a.symptoms]
    sunk = sinking_of(ctx)
    signals = signals_of(a)
    items = prioritize(
        ctx.task_id,
        a.findings,
        weights=weights,
        symptoms=a.symptoms,
        calibrate=calibration_of(ctx, a),
        sinking=sunk,
        signals=signals,
    )
    roi = infrastructure_roi(items, findings, weights=weights)
    triggers = {**SCALING_TRIGGERS, **ctx.scaling_triggers}
    projections = capacity_projections(
        a.store,
        now=a.end,
        window_s=a.window_s,
        triggers=triggers,
        plan_gain_pct=roi.figures.estimated_total_performance_gain_pct,
        plan_gain_source=roi.figures.provenance["estimated_total_performance_gain_pct"],
        trends={
            **{name: m.trend for name, m in a.measured.items()},
            **{name: j.trend for name, j in a.judged.items()},
        },
    )
    skipped = [
        Skipped(metric=m, reason="a symptom of another item's target: fixing the cause fixes it")
        for m in sorted(a.symptoms)
    ]
    skipped += [
        Skipped(approach=s.approach_key, metric=s.metric, reason=s.reason)
        for s in sunk_candidates(a.findings, sunk, symptoms=a.symptoms, signals=signals)
    ]
    quality = msgspec.structs.replace(
        data_quality(ctx, DOMAIN, a),
        business_weights=WeightsUsed(
            source=weights_source, **{c: round(weights.weight(c), 4) for c in CATEGORIES}
        ),
    )
    return PlanningReport(
        plan_type="strategic_backend_optimization",
        plan_id=plan_id_for(ctx.task_id),
        created_at=ctx.now,
        prioritized_plan=[item.to_entry() for item in items],
        infrastructure_roi=roi.figures,
        scalability_projections=projections,
        risk_assessment=risk_assessment(items, findings),
        resource_requirements=resource_requirements(items),
        timeline_estimate=msgspec.structs.replace(
            timeline_estimate(items), roi_derivation=roi.derivation
        ),
        directive_id=ctx.directive.directive_id if ctx.directive is not None else None,
        window=a.window,
        performance={name: j.to_performance() for name, j in a.judged.items()},
        bottlenecks=bottlenecks_of(a),
        recommendations=[_recommendation(item) for item in items],
        skipped=skipped,
        data_quality=quality,
        learning_report=effectiveness(ctx.learning) if ctx.learning is not None else None,
        series=report_series(a),
        measured=measured_of(a),
    )
