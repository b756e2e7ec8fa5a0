"""From ranked findings to recommendations: the best one or two approaches per bottleneck.

Which approaches, and in what order, is not decided here: ``recommend`` takes the first
k of ``planning.prioritize.rank_candidates``, the very ranking the strategic plan takes
its first from. An analysis report and a plan made from the same findings, calibration,
sinking, signals and weights therefore recommend the same first fix for every
bottleneck; two ways of choosing had disagreed (pooling in the report, indexing in the
plan, for one slow database).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from agent.analysis.bottlenecks import Finding, fmt
from agent.analysis.catalog import MetricSpec
from agent.learning.model import Gain
from agent.planning.playbook import Approach
from agent.planning.prioritize import (
    DEFAULT_WEIGHTS,
    NO_SIGNALS,
    NO_SINKING,
    BusinessWeights,
    Calibration,
    Signals,
    prior,
    rank_candidates,
    recommendation_id,
    score_terms,
)
from agent.planning.provenance import playbook
from protocols.messages import Provenance, Recommendation, Severity

__all__ = [
    "APPROACHES_PER_SEVERITY",
    "RECOMMENDATION_TYPE",
    "Calibration",
    "Signals",
    "improvement_text",
    "prior",
    "recommend",
    "recommendation_id",
]

RecommendationType = Literal["critical_fix", "optimization", "improvement"]

RECOMMENDATION_TYPE: Mapping[Severity, RecommendationType] = {
    "critical": "critical_fix",
    "high": "optimization",
    "medium": "optimization",
    "low": "improvement",
}
APPROACHES_PER_SEVERITY: Mapping[Severity, int] = {"critical": 2, "high": 2, "medium": 1, "low": 1}
"""How many approaches a bottleneck of each severity gets: the best two when it is serious."""


def improvement_text(approach: Approach, spec: MetricSpec, g: Gain) -> str:
    """What the expected range means for this metric, and where the figure comes from."""
    span = f"{fmt(g.low)}–{fmt(g.high)} %"
    expected = (
        f"(expected {fmt(g.expected)} %; {g.level * 100:.0f} % range for one outcome; "
        f"{g.source_text()})"
    )
    if approach.measure == "capacity":
        return f"{span} more capacity for {spec.name} {expected}"
    if spec.direction == "lower_is_better":
        return f"{span} lower {spec.name} {expected}"
    if spec.bounded:
        return f"{span} smaller {spec.name} shortfall to 100 % {expected}"
    return f"{span} higher {spec.name} {expected}"


def playbook_provenance(approach: Approach) -> dict[str, Provenance]:
    """Effort and risk are the playbook's, for every recommendation and plan item."""
    basis = f"playbook entry {approach.key}"
    return {"effort_weeks": playbook(basis), "risk": playbook(basis)}


def _effort(weeks: float) -> str:
    return f"{fmt(weeks)} engineer-week{'' if weeks == 1 else 's'}"


def recommend(
    task_id: str,
    findings: Iterable[Finding],
    *,
    symptoms: frozenset[str] = frozenset(),
    calibrate: Calibration | None = None,
    sinking: Mapping[tuple[str, str], str] | None = None,
    signals: Signals = NO_SIGNALS,
    weights: BusinessWeights = DEFAULT_WEIGHTS,
) -> list[Recommendation]:
    """The best approaches per bottleneck (``APPROACHES_PER_SEVERITY``), in bottleneck order.

    A bottleneck in ``symptoms`` (its cause is another ranked bottleneck) gets none of its
    own: fixing the cause is the recommendation, and the plan does not fix a thing twice.
    The approaches are the first of ``rank_candidates`` for the bottleneck's metric, so
    they follow the plan's score (calibrated gain, urgency, business ``weights``, effort
    shared over the bottlenecks an approach acts on): one that verified badly sinks, one
    reported infeasible (``sinking``) or whose need ``signals`` measured absent is left
    out, and one whose need nobody measured comes after the rest.
    """
    findings = list(findings)
    chosen = rank_candidates(
        findings,
        weights=weights,
        calibrate=calibrate,
        symptoms=symptoms,
        sinking=sinking if sinking is not None else NO_SINKING,
        signals=signals,
    )
    recommendations = []
    for finding in findings:
        spec = finding.judgement.spec
        choice = chosen.get(spec.name)
        if choice is None:  # a symptom
            continue
        for candidate in choice.ranked[: APPROACHES_PER_SEVERITY[finding.severity]]:
            approach, gain = candidate.approach, candidate.coverage.gain
            recommendations.append(
                Recommendation(
                    recommendation_id=recommendation_id(task_id, spec.name, approach.key),
                    type=RECOMMENDATION_TYPE[finding.severity],
                    target=spec.name,
                    approach=approach.name,
                    expected_improvement=improvement_text(approach, spec, gain),
                    expected_improvement_pct=gain.to_range(approach.key),
                    effort=_effort(approach.effort_weeks),
                    effort_weeks=approach.effort_weeks,
                    risk=f"{approach.risk_level}: {approach.risk}",
                    calibrated=gain.calibrated,
                    verifications=gain.verifications,
                    provenance=playbook_provenance(approach),
                    score=round(candidate.coverage.score, 2),
                    rationale=score_terms(approach, candidate.coverage),
                    context=dict(gain.context),
                )
            )
    return recommendations
