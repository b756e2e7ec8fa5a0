"""Risk of the plan and what it needs: playbook risks, delay risk, people and infrastructure.

Pure: planned items and findings in, report sections out, each figure with its source
(``provenance``, docs/learning.md): the playbook's levels and needs are priors, a delay
risk is measured (the target's slope).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agent.analysis.bottlenecks import Finding, fmt
from agent.planning.prioritize import PHASES, PlannedItem
from agent.planning.provenance import measured, playbook, weakest
from protocols.reports import (
    InfrastructureCost,
    ItemRisk,
    Prerequisites,
    Provenance,
    Requirement,
    ResourceRequirements,
    RiskAssessment,
    Unaddressed,
)
from protocols.types import RiskLevel

RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")
DOUBLING_HOURS = 168.0
"""A miss that would double within a week is worsening faster than a plan can land."""


def hours_to_double(finding: Finding) -> float | None:
    """Hours until the miss (distance past the target) doubles at the measured slope.

    ``miss / rate``, with miss = current − target for lower-is-better metrics and
    target − current otherwise, and rate the Theil–Sen slope per hour in the worsening
    direction. None unless the trend is ``declining`` with a finite worsening slope
    and the metric actually misses its target.
    """
    j = finding.judgement
    slope = j.trend.slope_per_hour
    if not j.trend.declining or slope is None or not math.isfinite(slope):
        return None
    lower = j.spec.direction == "lower_is_better"
    miss = j.current - j.target if lower else j.target - j.current
    rate = slope if lower else -slope
    if not (math.isfinite(miss) and miss > 0.0 and rate > 0.0):
        return None
    hours = miss / rate
    return hours if math.isfinite(hours) else None


def declining_fast(finding: Finding) -> bool:
    """The miss doubles within ``DOUBLING_HOURS`` (a week) at the current slope."""
    hours = hours_to_double(finding)
    return hours is not None and hours <= DOUBLING_HOURS


def _raise(level: RiskLevel) -> RiskLevel:
    return RISK_LEVELS[min(RISK_LEVELS.index(level) + 1, len(RISK_LEVELS) - 1)]


def risk_assessment(items: Sequence[PlannedItem], findings: Sequence[Finding]) -> RiskAssessment:
    """``risk_assessment`` of the planning report: per item, then for the plan.

    An item's risk is the playbook's level and named risk, raised one level (low →
    medium → high, high stays) when a metric it fixes is declining fast
    (``declining_fast``): the fix may land after the metric got much worse, a risk of
    delay. The plan's risk is the highest item risk, and ``high`` when a critical
    finding has no item (nothing in the plan fixes it); ``low`` for an empty plan
    over a healthy backend.

    Sources (``provenance``): an item's level is the playbook's prior (raised or not: the
    raise only moves a prior), its delay risk is measured; the plan's level is the
    items' prior, or measured when an unaddressed critical finding alone makes it high.
    """
    assessed: list[ItemRisk] = []
    levels: list[RiskLevel] = []
    sources: list[Provenance] = []
    for item in items:
        fast = [f for f in item.findings if declining_fast(f)]
        level = item.approach.risk_level
        delay = None
        level_basis = f"playbook risk of {item.approach.key}: {level}"
        provenance: dict[str, Provenance] = {}
        if fast:
            level = _raise(level)
            delay = "; ".join(
                f"{f.metric} worsens fast: its miss doubles in ~{fmt(hours_to_double(f) or 0.0)} h"
                for f in fast
            )
            level_basis += f", raised to {level}: a target's miss doubles within a week"
            provenance["risk_of_delay"] = measured(
                "hours until the miss doubles at the target's measured Theil–Sen slope"
            )
        source = playbook(level_basis)
        sources.append(source)
        provenance["risk_level"] = source
        levels.append(level)
        assessed.append(
            ItemRisk(
                recommendation_id=item.recommendation_id,
                approach=item.approach.key,
                targets=list(item.targets),
                risk_level=level,
                playbook_risk_level=item.approach.risk_level,
                risk=item.approach.risk,
                risk_of_delay=delay,
                provenance=provenance,
            )
        )
    covered = {m for item in items for m in item.targets}
    unaddressed: list[Unaddressed] = []
    seen: set[str] = set()
    for f in findings:
        if f.metric not in covered and f.metric not in seen:
            seen.add(f.metric)
            unaddressed.append(Unaddressed(metric=f.metric, severity=f.severity))
    overall: RiskLevel = max(levels, key=RISK_LEVELS.index, default="low")
    overall_source = weakest(sources, "the highest item risk (playbook levels)")
    if any(u.severity == "critical" for u in unaddressed):
        overall = "high"
        overall_source = measured("a measured critical finding has no item in the plan")
    elif not items:
        overall_source = measured("no item in the plan and no critical finding left unfixed")
    return RiskAssessment(
        overall=overall,
        by_level={lvl: levels.count(lvl) for lvl in RISK_LEVELS},
        items=assessed,
        unaddressed=unaddressed,
        basis="playbook risk per approach, one level higher when a target's miss would "
        f"double within {fmt(DOUBLING_HOURS)} h at its measured slope; plan risk = the "
        "highest item risk, high if a critical finding has no item",
        provenance={"overall": overall_source},
    )


def resource_requirements(items: Sequence[PlannedItem]) -> ResourceRequirements:
    """``resource_requirements`` of the planning report, all from the playbook (priors).

    Engineer-weeks per phase and in total; each item's infrastructure cost; each
    item's prerequisites and the approaches it requires (with whether they are in the
    plan).
    """
    in_plan = {item.approach.key for item in items}
    per_phase: dict[str, float] = {
        phase: math.fsum(i.approach.effort_weeks for i in items if i.phase == phase)
        for phase in PHASES
    }
    return ResourceRequirements(
        engineer_weeks={**per_phase, "total": math.fsum(per_phase.values())},
        provenance={
            "engineer_weeks": playbook("each item's effort from its playbook entry"),
            "infrastructure": playbook("each approach's infrastructure cost"),
            "prerequisites": playbook("each approach's prerequisites and requirements"),
        },
        infrastructure=[
            InfrastructureCost(
                recommendation_id=i.recommendation_id,
                approach=i.approach.key,
                cost=i.approach.infra_cost,
            )
            for i in items
        ],
        prerequisites=[
            Prerequisites(
                recommendation_id=i.recommendation_id,
                approach=i.approach.key,
                prerequisites=list(i.approach.prerequisites),
                requires=[
                    Requirement(approach=k, in_plan=k in in_plan) for k in i.approach.requires
                ],
            )
            for i in items
        ],
    )
