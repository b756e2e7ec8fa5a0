"""Return on the plan: expected performance gain, infrastructure efficiency and a timeline.

Pure arithmetic over planned items, written so a reader can redo it by hand from
``derivation`` (docs/methods.md §11).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from agent.analysis.bottlenecks import Finding, fmt
from agent.planning.prioritize import (
    DEFAULT_WEIGHTS,
    PHASES,
    BusinessWeights,
    Category,
    PlannedItem,
    category_of,
)

EFFICIENCY_CATEGORY: Category = "infrastructure_efficiency"


def _fraction(gain_pct: float) -> float:
    """A gain in % as a fraction in [0, 1]: capacity above 100 % counts as 1, a loss as 0."""
    return min(max(gain_pct, 0.0), 100.0) / 100.0 if math.isfinite(gain_pct) else 0.0


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.metric, f)
    return list(seen.values())


def _effort_text(weeks: float, items: int) -> str:
    return (
        f"{fmt(weeks)} engineer-week{'' if weeks == 1 else 's'} "
        f"over {items} item{'' if items == 1 else 's'}"
    )


def infrastructure_roi(
    items: Sequence[PlannedItem],
    findings: Sequence[Finding],
    *,
    weights: BusinessWeights = DEFAULT_WEIGHTS,
) -> dict[str, Any]:
    """``infrastructure_roi`` of the planning report, with the numbers behind it.

    Per breached metric m (each metric of ``findings`` once), the items fixing it
    combine as independent reductions: g_m = 1 − Π(1 − g_i), with g_i the item's
    expected gain on m as a fraction capped to [0, 1]; a metric no item fixes (a
    symptom, or every approach infeasible) has g_m = 0.

    - ``estimated_total_performance_gain_pct`` = 100 × Σ w_m·g_m / Σ w_m, w_m the
      business weight of m's category: the expected improvement across everything that
      misses its target, counted as the business weighs it (plain mean when every
      weight involved is 0; 0 with no findings).
    - ``estimated_infrastructure_efficiency_pct`` = 100 × the mean g_m over the metrics
      in the infrastructure-efficiency category (cache hit rates, database latency,
      CPU/memory saturation): how much of their shortfall the plan removes; 0 when
      none of them misses its target.
    - ``implementation_effort``: the engineer-weeks of all items, "N engineer-weeks
      over M items".

    Pass the findings the plan was made from, symptoms included or not as the report
    wants them counted: a symptom has no item of its own and counts 0.
    """
    per_target = []
    combined_gains: list[float] = []
    weighted = total_weight = 0.0
    efficiency: list[float] = []
    for f in _unique(findings):
        category = category_of(f.judgement.spec)
        weight = weights.weight(category)
        fixing = [(item, c) for item in items for c in item.covers if c.metric == f.metric]
        remaining = 1.0
        for _, c in fixing:
            remaining *= 1.0 - _fraction(c.gain.expected)
        combined = 1.0 - remaining
        combined_gains.append(combined)
        weighted += weight * combined
        total_weight += weight
        if category == EFFICIENCY_CATEGORY:
            efficiency.append(combined)
        per_target.append(
            {
                "metric": f.metric,
                "category": category,
                "weight": weight,
                "items": [
                    {
                        "recommendation_id": item.recommendation_id,
                        "approach": item.approach.key,
                        "expected_gain_pct": c.gain.expected,
                        "verifications": c.gain.verifications,
                    }
                    for item, c in fixing
                ],
                "combined_gain_pct": round(100.0 * combined, 2),
            }
        )
    if total_weight > 0.0:
        total = weighted / total_weight
    else:
        total = math.fsum(combined_gains) / len(combined_gains) if combined_gains else 0.0
    effort = math.fsum(item.approach.effort_weeks for item in items)
    return {
        "estimated_total_performance_gain_pct": round(100.0 * total, 2),
        "estimated_infrastructure_efficiency_pct": round(
            100.0 * math.fsum(efficiency) / len(efficiency) if efficiency else 0.0, 2
        ),
        "implementation_effort": _effort_text(effort, len(items)),
        "implementation_effort_weeks": effort,
        "derivation": {
            "total": "100 × Σ weight·combined / Σ weight over the breached metrics; "
            "combined = 1 − Π(1 − expected gain/100) over the items fixing the metric, "
            "each gain capped to 0–100 %",
            "infrastructure_efficiency": "mean combined gain of the breached "
            "infrastructure_efficiency metrics" + ("" if efficiency else " (none breached: 0)"),
            "targets": per_target,
        },
    }


def timeline_estimate(items: Sequence[PlannedItem], *, engineers: int = 2) -> dict[str, Any]:
    """Weeks per phase and in total for ``engineers`` people working the plan.

    Phases run one after another. Inside a phase the items are taken in plan order,
    each by one engineer (an item's engineer-weeks are that engineer's weeks), who is
    the one free earliest; an item starts no earlier than the end of any item in the
    same phase it ``requires``. A phase lasts until its last item ends (0 weeks when
    empty). This greedy list schedule is what a lead would do with a board; without
    dependencies it ends at most one item's length after the best schedule (Graham).
    """
    if engineers < 1:
        raise ValueError(f"engineers must be at least 1, not {engineers}")
    phases: dict[str, dict[str, Any]] = {}
    start = 0.0
    for phase in PHASES:
        mine = [item for item in items if item.phase == phase]
        free = [start] * engineers
        end_of: dict[str, float] = {}
        for item in mine:
            after = max((end_of[k] for k in item.approach.requires if k in end_of), default=start)
            who = min(range(engineers), key=lambda i: (free[i], i))
            begin = max(free[who], after)
            free[who] = end_of[item.approach.key] = begin + item.approach.effort_weeks
        end = max(end_of.values(), default=start)
        phases[phase] = {
            "items": len(mine),
            "engineer_weeks": math.fsum(item.approach.effort_weeks for item in mine),
            "weeks": round(end - start, 2),
            "start_week": round(start, 2),
            "end_week": round(end, 2),
        }
        start = end
    return {
        "engineers": engineers,
        "phases": phases,
        "total_weeks": round(start, 2),
        "basis": f"phases in order; within a phase items in plan order, each done by one of "
        f"{engineers} engineer{'' if engineers == 1 else 's'}, whoever is free first, "
        "after the items it requires; weeks = engineer-weeks of the playbook's effort",
    }
