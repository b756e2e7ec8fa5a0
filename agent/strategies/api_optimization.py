"""``api_optimization``: judge the API and the infrastructure it waits on, rank, recommend.

Pure: inline data in ``ctx.params.metrics`` in, an ``AnalysisReport`` out.

Decisions:
- Every catalog metric present in the inline data is judged, also those outside the
  API scope (listed in ``data_quality["out_of_scope_metrics"]``): the caller sent
  them, and a report that drops data silently is worse than a wider one. The scope
  only decides when there is nothing to say (``InsufficientData``).
- Names not in the catalog are listed in ``data_quality["unknown_metrics"]``; task
  targets for them in ``data_quality["unknown_targets"]``.
- Target precedence: ``params.targets`` (``task``) > ``ctx.target_overrides``
  (``config``) > catalog (``catalog``).
- Recommendations: the playbook's best two approaches for a critical or high
  bottleneck, the best one for medium or low.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from agent.analysis.bottlenecks import Finding, find_bottlenecks, fmt
from agent.analysis.catalog import CATALOG, SCOPES, MetricSpec
from agent.analysis.judge import Judgement, judge
from agent.analysis.series import InlineValue, from_inline, parse_window, window
from agent.analysis.trend import MIN_SAMPLES
from agent.errors import InsufficientData
from agent.planning.playbook import Approach, approaches_for
from agent.strategies.base import TaskContext
from protocols.messages import AnalysisReport, ImprovementRange, Recommendation, Severity

ANALYSIS_TYPE = "api_optimization"
SCOPE: tuple[str, ...] = SCOPES[ANALYSIS_TYPE]

RecommendationType = Literal["critical_fix", "optimization", "improvement"]

_RECOMMENDATION_TYPE: Mapping[Severity, RecommendationType] = {
    "critical": "critical_fix",
    "high": "optimization",
    "medium": "optimization",
    "low": "improvement",
}
_APPROACHES_PER_SEVERITY: Mapping[Severity, int] = {
    "critical": 2,
    "high": 2,
    "medium": 1,
    "low": 1,
}


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


def improvement_text(approach: Approach, spec: MetricSpec) -> str:
    """What the approach's percentage range means for this metric, in words."""
    span = f"{fmt(approach.impact_low)}–{fmt(approach.impact_high)} %"
    expected = f"(expected {fmt(approach.impact_expected)} %)"
    if approach.measure == "capacity":
        return f"{span} more capacity for {spec.name} {expected}"
    if spec.direction == "lower_is_better":
        return f"{span} lower {spec.name} {expected}"
    if spec.bounded:
        return f"{span} smaller {spec.name} shortfall to 100 % {expected}"
    return f"{span} higher {spec.name} {expected}"


def _effort(weeks: float) -> str:
    return f"{fmt(weeks)} engineer-week{'' if weeks == 1 else 's'}"


def recommend(task_id: str, findings: list[Finding]) -> list[Recommendation]:
    """The playbook's best approaches per bottleneck, in bottleneck rank order."""
    recommendations = []
    for finding in findings:
        spec = finding.judgement.spec
        best = approaches_for(spec.bottleneck_type)[: _APPROACHES_PER_SEVERITY[finding.severity]]
        for approach in best:
            recommendations.append(
                Recommendation(
                    recommendation_id=recommendation_id(task_id, spec.name, approach.key),
                    type=_RECOMMENDATION_TYPE[finding.severity],
                    target=spec.name,
                    approach=approach.name,
                    expected_improvement=improvement_text(approach, spec),
                    expected_improvement_pct=ImprovementRange(
                        low=approach.impact_low,
                        expected=approach.impact_expected,
                        high=approach.impact_high,
                    ),
                    effort=_effort(approach.effort_weeks),
                    effort_weeks=approach.effort_weeks,
                    risk=f"{approach.risk_level}: {approach.risk}",
                    calibrated=False,
                    verifications=0,
                )
            )
    return recommendations


def analyze(ctx: TaskContext) -> AnalysisReport:
    """Judge every catalog metric with inline data, rank the misses, recommend fixes."""
    params = ctx.params
    window_text = params.window or ctx.default_window
    seconds = parse_window(window_text)
    inline: Mapping[str, InlineValue] = params.metrics

    unknown = sorted(name for name in inline if name not in CATALOG)
    judgements: list[Judgement] = []
    counts: dict[str, int] = {}
    for name, spec in CATALOG.items():
        if name not in inline:
            continue
        series = window(from_inline(inline[name]), seconds)
        counts[name] = len(series)
        if len(series) == 0:
            continue
        target, source = resolve_target(spec, params.targets, ctx.target_overrides)
        judgements.append(judge(spec, series, target=target, target_source=source))

    if not any(j.spec.name in SCOPE for j in judgements):
        scope_counts = {name: counts.get(name, 0) for name in SCOPE}
        raise InsufficientData(
            f"no samples for any {ANALYSIS_TYPE} metric ({', '.join(SCOPE)}) "
            f"in the last {window_text}",
            counts={**counts, **scope_counts},
        )

    findings = find_bottlenecks(judgements)
    data_quality: dict[str, Any] = {
        "samples": counts,
        "unknown_metrics": unknown,
        "out_of_scope_metrics": sorted(j.spec.name for j in judgements if j.spec.name not in SCOPE),
        "missing_metrics": [name for name in SCOPE if counts.get(name, 0) == 0],
        "too_few_for_trend": {
            j.spec.name: j.samples for j in judgements if j.trend.trend == "unknown"
        },
        "min_trend_samples": MIN_SAMPLES,
        "unknown_targets": sorted(name for name in params.targets if name not in CATALOG),
    }
    return AnalysisReport(
        analysis_type=ANALYSIS_TYPE,
        timestamp=ctx.now,
        window=window_text,
        performance={j.spec.name: j.to_performance() for j in judgements},
        bottlenecks=[f.to_bottleneck() for f in findings],
        recommendations=recommend(ctx.task_id, findings),
        data_quality=data_quality,
    )
