"""From ranked findings to recommendations: the playbook's best approaches per bottleneck."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from agent.analysis.bottlenecks import Finding, fmt
from agent.analysis.catalog import MetricSpec
from agent.planning.playbook import PLAYBOOK, Approach, approaches_for
from protocols.messages import ImprovementRange, Recommendation, Severity

RecommendationType = Literal["critical_fix", "optimization", "improvement"]

RECOMMENDATION_TYPE: Mapping[Severity, RecommendationType] = {
    "critical": "critical_fix",
    "high": "optimization",
    "medium": "optimization",
    "low": "improvement",
}
APPROACHES_PER_SEVERITY: Mapping[Severity, int] = {"critical": 2, "high": 2, "medium": 1, "low": 1}
"""How many approaches a bottleneck of each severity gets: the best two when it is serious."""


def resolve_target(
    spec: MetricSpec, task_targets: Mapping[str, float], config_targets: Mapping[str, float]
) -> tuple[float, str]:
    """The target for ``spec`` and where it came from: task > config > catalog."""
    if spec.name in task_targets:
        return float(task_targets[spec.name]), "task"
    if spec.name in config_targets:
        return float(config_targets[spec.name]), "config"
    return spec.target, "catalog"


def recommendation_id(task_id: str, metric: str, approach_key: str) -> str:
    """``rec-`` + 12 hex of sha256 over (task, metric, approach): a redelivery gets the same id."""
    digest = hashlib.sha256(f"{task_id}\x1f{metric}\x1f{approach_key}".encode()).hexdigest()
    return f"rec-{digest[:12]}"


def improvement_text(
    approach: Approach, spec: MetricSpec, gain: tuple[float, float, float] | None = None
) -> str:
    """What the approach's percentage range (calibrated, or the prior) means for this metric."""
    low, mid, high = gain or (approach.impact_low, approach.impact_expected, approach.impact_high)
    span = f"{fmt(low)}–{fmt(high)} %"
    expected = f"(expected {fmt(mid)} %)"
    if approach.measure == "capacity":
        return f"{span} more capacity for {spec.name} {expected}"
    if spec.direction == "lower_is_better":
        return f"{span} lower {spec.name} {expected}"
    if spec.bounded:
        return f"{span} smaller {spec.name} shortfall to 100 % {expected}"
    return f"{span} higher {spec.name} {expected}"


def _effort(weeks: float) -> str:
    return f"{fmt(weeks)} engineer-week{'' if weeks == 1 else 's'}"


Calibration = Callable[[str, str], tuple[float, float, float, int]]
"""(approach key, metric) → (low, expected, high, verifications behind them)."""


def prior(approach_key: str, metric: str) -> tuple[float, float, float, int]:
    """The playbook's own range: what is expected before anything was verified."""
    a = PLAYBOOK[approach_key]
    return a.impact_low, a.impact_expected, a.impact_high, 0


def recommend(
    task_id: str,
    findings: Iterable[Finding],
    *,
    symptoms: frozenset[str] = frozenset(),
    calibrate: Calibration = prior,
    sinking: Mapping[tuple[str, str], str] | None = None,
) -> list[Recommendation]:
    """The playbook's best approaches per bottleneck, in bottleneck rank order.

    A bottleneck in ``symptoms`` (its cause is another ranked bottleneck) gets none of its
    own: fixing the cause is the recommendation, and the plan does not fix a thing twice.
    Approaches are ranked by their *calibrated* expected impact per engineer-week, so one
    that verified badly sinks; one reported infeasible for the metric (``sinking``) is
    left out.
    """
    sinking = sinking or {}
    recommendations = []
    for finding in findings:
        spec = finding.judgement.spec
        if spec.name in symptoms:
            continue
        candidates = [
            (approach, calibrate(approach.key, spec.name))
            for approach in approaches_for(spec.bottleneck_type)
            if (approach.key, spec.name) not in sinking
        ]
        candidates.sort(key=lambda c: -c[1][1] / c[0].effort_weeks)
        for approach, (low, expected, high, verifications) in candidates[
            : APPROACHES_PER_SEVERITY[finding.severity]
        ]:
            recommendations.append(
                Recommendation(
                    recommendation_id=recommendation_id(task_id, spec.name, approach.key),
                    type=RECOMMENDATION_TYPE[finding.severity],
                    target=spec.name,
                    approach=approach.name,
                    expected_improvement=improvement_text(approach, spec, (low, expected, high)),
                    expected_improvement_pct=ImprovementRange(
                        low=round(low, 2), expected=round(expected, 2), high=round(high, 2)
                    ),
                    effort=_effort(approach.effort_weeks),
                    effort_weeks=approach.effort_weeks,
                    risk=f"{approach.risk_level}: {approach.risk}",
                    calibrated=verifications > 0,
                    verifications=verifications,
                )
            )
    return recommendations
