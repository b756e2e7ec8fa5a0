"""Return on the plan: expected performance gain, infrastructure efficiency and a timeline.

Pure arithmetic over planned items, written so a reader can redo it by hand from
``derivation`` (docs/methods.md §11). Every figure says where it comes from
(``provenance``, docs/learning.md): gains are the playbook's prior or calibrated, effort
is the playbook's, the team size is an assumption.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from agent.analysis.bottlenecks import Finding, fmt
from agent.planning.prioritize import (
    DEFAULT_WEIGHTS,
    PHASES,
    BusinessWeights,
    Category,
    PlannedItem,
    category_of,
)
from agent.planning.provenance import assumed, playbook, weakest
from protocols.reports import (
    InfrastructureRoi,
    ItemGain,
    PhaseTimeline,
    Provenance,
    RoiDerivation,
    TargetGain,
    TimelineEstimate,
)

EFFICIENCY_CATEGORY: Category = "infrastructure_efficiency"
ENGINEERS = 2
"""The team size a timeline assumes: no setting or task parameter gives it (yet)."""


def _fraction(gain_pct: float) -> float:
    """A gain in % as a fraction in [0, 1]: capacity above 100 % counts as 1, a loss as 0."""
    return min(max(gain_pct, 0.0), 100.0) / 100.0 if math.isfinite(gain_pct) else 0.0


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.metric, f)
    return list(seen.values())


def gain_provenance(gains: Sequence[Provenance], what: str) -> Provenance:
    """The source of a figure combined from item gains: ``prior`` when any gain is the
    playbook's, ``calibrated`` when all are (their verifications counted)."""
    if not gains:
        return weakest(
            (),
            f"{what}: no planned item's gain enters it, so its 0 follows from "
            "the measured findings alone",
        )
    calibrated = [g for g in gains if g.source == "calibrated"]
    verified = sum(g.verifications for g in calibrated)
    n, k = len(gains), len(calibrated)
    gains_said = f"{n} item gain{'' if n == 1 else 's'}"
    if k == 0:
        counts = f"{gains_said}, none calibrated (the playbook's prior)"
    elif k == n:
        counts = f"{gains_said}, all calibrated"
    else:
        counts = (
            f"{gains_said}, {k} calibrated ({verified} verification"
            f"{'' if verified == 1 else 's'}), {n - k} the playbook's prior"
        )
    return weakest(gains, f"{what} from {counts}")


def _effort_text(weeks: float, items: int) -> str:
    return (
        f"{fmt(weeks)} engineer-week{'' if weeks == 1 else 's'} "
        f"over {items} item{'' if items == 1 else 's'}"
    )


class Roi(NamedTuple):
    """The plan's return (``infrastructure_roi``) and how it was computed."""

    figures: InfrastructureRoi
    derivation: RoiDerivation


def infrastructure_roi(
    items: Sequence[PlannedItem],
    findings: Sequence[Finding],
    *,
    weights: BusinessWeights = DEFAULT_WEIGHTS,
) -> Roi:
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
    - ``derivation``: per breached metric, the items' gains and their combination.
    - ``provenance``: the source of each figure above (``gain_provenance``: prior when
      any gain behind it is the playbook's, else calibrated; effort is the playbook's).

    Pass the findings the plan was made from, symptoms included or not as the report
    wants them counted: a symptom has no item of its own and counts 0.
    """
    per_target: list[TargetGain] = []
    combined_gains: list[float] = []
    weighted = total_weight = 0.0
    efficiency: list[float] = []
    all_sources: list[Provenance] = []
    efficiency_sources: list[Provenance] = []
    for f in _unique(findings):
        category = category_of(f.judgement.spec)
        weight = weights.weight(category)
        fixing = [(item, c) for item in items for c in item.covers if c.metric == f.metric]
        sources = [c.gain.provenance(item.approach.key) for item, c in fixing]
        all_sources += sources
        remaining = 1.0
        for _, c in fixing:
            remaining *= 1.0 - _fraction(c.gain.expected)
        combined = 1.0 - remaining
        combined_gains.append(combined)
        weighted += weight * combined
        total_weight += weight
        if category == EFFICIENCY_CATEGORY:
            efficiency.append(combined)
            efficiency_sources += sources
        per_target.append(
            TargetGain(
                metric=f.metric,
                category=category,
                weight=weight,
                items=[
                    ItemGain(
                        recommendation_id=item.recommendation_id,
                        approach=item.approach.key,
                        expected_gain_pct=c.gain.expected,
                        verifications=c.gain.verifications,
                        provenance={"expected_gain_pct": source},
                    )
                    for (item, c), source in zip(fixing, sources, strict=True)
                ],
                combined_gain_pct=round(100.0 * combined, 2),
                provenance={
                    "combined_gain_pct": gain_provenance(sources, f"combined gain on {f.metric}")
                },
            )
        )
    if total_weight > 0.0:
        total = weighted / total_weight
    else:
        total = math.fsum(combined_gains) / len(combined_gains) if combined_gains else 0.0
    effort = math.fsum(item.approach.effort_weeks for item in items)
    figures = InfrastructureRoi(
        estimated_total_performance_gain_pct=round(100.0 * total, 2),
        estimated_infrastructure_efficiency_pct=round(
            100.0 * math.fsum(efficiency) / len(efficiency) if efficiency else 0.0, 2
        ),
        implementation_effort=_effort_text(effort, len(items)),
        provenance={
            "estimated_total_performance_gain_pct": gain_provenance(
                all_sources, "weighted gain over the breached metrics"
            ),
            "estimated_infrastructure_efficiency_pct": gain_provenance(
                efficiency_sources, "mean gain over the breached infrastructure_efficiency metrics"
            ),
            "implementation_effort": playbook(
                f"sum of the playbook's effort of the {len(items)} "
                f"item{'' if len(items) == 1 else 's'}"
            ),
        },
    )
    derivation = RoiDerivation(
        total="100 × Σ weight·combined / Σ weight over the breached metrics; "
        "combined = 1 − Π(1 − expected gain/100) over the items fixing the metric, "
        "each gain capped to 0–100 %",
        infrastructure_efficiency="mean combined gain of the breached "
        "infrastructure_efficiency metrics" + ("" if efficiency else " (none breached: 0)"),
        targets=per_target,
    )
    return Roi(figures, derivation)


def timeline_estimate(
    items: Sequence[PlannedItem], *, engineers: int = ENGINEERS, engineers_from: str | None = None
) -> TimelineEstimate:
    """Weeks per phase and in total for ``engineers`` people working the plan.

    Phases run one after another. Inside a phase the items are taken in plan order,
    each by one engineer (an item's engineer-weeks are that engineer's weeks), who is
    the one free earliest; an item starts no earlier than the end of any item in the
    same phase it ``requires``. A phase lasts until its last item ends (0 weeks when
    empty). This greedy list schedule is what a lead would do with a board; without
    dependencies it ends at most one item's length after the best schedule (Graham).

    Engineer-weeks are the playbook's prior; the team size is an assumption
    (``engineers_from`` says whose, by default ``ENGINEERS``), so every calendar week
    derived from it is assumed too (``provenance``).
    """
    if engineers < 1:
        raise ValueError(f"engineers must be at least 1, not {engineers}")
    phases: dict[str, PhaseTimeline] = {}
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
        phases[phase] = PhaseTimeline(
            items=len(mine),
            engineer_weeks=math.fsum(item.approach.effort_weeks for item in mine),
            weeks=round(end - start, 2),
            start_week=round(start, 2),
            end_week=round(end, 2),
        )
        start = end
    team = f"{engineers} engineer{'' if engineers == 1 else 's'}"
    if engineers_from is None:
        engineers_from = (
            f"{team}: the planner's default (agent.planning.roi.ENGINEERS); "
            "no setting or task parameter gives the team size"
            if engineers == ENGINEERS
            else f"{team}, as given to the planner"
        )
    effort = playbook("each item's effort in engineer-weeks from its playbook entry")
    team_size = assumed(engineers_from)
    weeks = weakest(
        (effort, team_size),
        f"the playbook's engineer-weeks scheduled for {team} (an assumed team size)",
    )
    return TimelineEstimate(
        engineers=engineers,
        phases=phases,
        total_weeks=round(start, 2),
        basis=f"phases in order; within a phase items in plan order, each done by one of "
        f"{team}, whoever is free first, after the items it requires; weeks = "
        "engineer-weeks of the playbook's effort",
        provenance={
            "engineers": team_size,
            "engineer_weeks": effort,
            "weeks": weeks,
            "total_weeks": weeks,
        },
    )
