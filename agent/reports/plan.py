"""The sections of a plan: its headline, the phased roadmap, the return, the timeline,
the risk, the resources, and what verified outcomes say of the agent's predictions."""

from __future__ import annotations

from collections.abc import Callable

from agent.reports.cells import gain_source, measured_from
from agent.reports.document import (
    Block,
    Bullets,
    Paragraph,
    Section,
    Subheading,
    count,
    head,
    legend,
    table,
)
from agent.reports.format import (
    NONE,
    UNKNOWN_SOURCE,
    num,
    pct,
    share,
    source_label,
    tagged,
    text,
)
from protocols.reports import LearningReport, PlanEntry, PlanningReport, Ratio

PHASE_ORDER = ("Phase_1_Critical", "Phase_2_High", "Phase_3_Medium", "Phase_4_Low")
"""The plan's phases in the order they are worked (docs/protocol.md, ``implementation_phase``)."""


def plan_headline(report: PlanningReport) -> str:
    """A plan in one line: items, phases, gain, effort, weeks, team and risk, each figure
    with its source."""
    plan = report.prioritized_plan
    phases = {e.implementation_phase for e in plan}
    roi, timeline, risk = (
        report.infrastructure_roi,
        report.timeline_estimate,
        report.risk_assessment,
    )
    gains, weeks = roi.provenance, timeline.provenance
    gain = tagged(
        pct(roi.estimated_total_performance_gain_pct),
        gains.get("estimated_total_performance_gain_pct"),
    )
    effort = tagged(text(roi.implementation_effort), gains.get("implementation_effort"))
    total = tagged(f"{num(timeline.total_weeks)} weeks", weeks.get("total_weeks"))
    team = tagged(f"{num(timeline.engineers)} engineers", weeks.get("engineers"))
    overall = tagged(text(risk.overall), risk.provenance.get("overall"))
    return (
        f"Plan {text(report.plan_id)}: {count(len(plan), 'item')} in "
        f"{count(len(phases), 'phase')}; expected gain {gain}; effort {effort}; "
        f"{total} for {team}; risk {overall}."
    )


def entry_cells(entry: PlanEntry, report: PlanningReport) -> dict[str, str]:
    """A plan entry's expected gain (from its recommendation) with its source, and why it
    scored what it did (``score_rationale``, each term tagged with its source)."""
    rid = entry.recommendation_id
    rec = next((r for r in report.recommendations if r.recommendation_id == rid), None)
    why = entry.score_rationale
    return {
        "gain": NONE
        if rec is None
        else tagged(pct(rec.expected_improvement_pct.expected), gain_source(rec)),
        "why": text(why) if why else f"{UNKNOWN_SOURCE}: the plan gives no score rationale",
    }


ROADMAP_COLUMNS = (
    "rank",
    "id",
    "target",
    "approach",
    "strategic score",
    "expected gain",
    "why this score (each term's source)",
)


def roadmap(report: PlanningReport) -> Section:
    plan = report.prioritized_plan
    blocks: list[Block] = []
    if not plan:
        blocks.append(Paragraph("The plan is empty: nothing misses its target."))
    for phase in (p for p in PHASE_ORDER if any(e.implementation_phase == p for e in plan)):
        timing = report.timeline_estimate.phases.get(phase)
        title = phase.replace("_", " ")
        if timing is not None:
            title += (
                f" — weeks {num(timing.start_week)}–{num(timing.end_week)}, "
                f"{num(timing.engineer_weeks)} engineer-weeks"
            )
        blocks.append(Subheading(title))
        rows = []
        for i, e in enumerate(plan, 1):
            if e.implementation_phase != phase:
                continue
            cells = entry_cells(e, report)
            rows.append(
                (
                    str(i),
                    text(e.recommendation_id),
                    text(e.target),
                    text(e.approach),
                    num(e.backend_strategic_score, 4),
                    cells["gain"],
                    cells["why"],
                )
            )
        blocks.append(table(ROADMAP_COLUMNS, rows, numeric=(0, 4)))
    if report.skipped:
        blocks.append(Subheading("Left out of the plan"))
        blocks.append(
            Bullets(
                tuple(
                    f"{text(s.approach) + ' for ' if s.approach else ''}"
                    f"{text(s.metric)}: {text(s.reason)}"
                    for s in report.skipped
                )
            )
        )
    return Section("roadmap", "Phased roadmap", tuple(blocks))


def roi(report: PlanningReport) -> Section:
    r = report.infrastructure_roi
    sources = r.provenance
    figures = (
        (
            "estimated_total_performance_gain_pct",
            "Expected performance gain",
            pct(r.estimated_total_performance_gain_pct),
        ),
        (
            "estimated_infrastructure_efficiency_pct",
            "Infrastructure efficiency",
            pct(r.estimated_infrastructure_efficiency_pct),
        ),
        ("implementation_effort", "Effort", text(r.implementation_effort)),
    )
    blocks: list[Block] = [
        Bullets(
            tuple(
                f"{label}: {tagged(shown, sources.get(key), basis=True)}"
                for key, label, shown in figures
            )
        )
    ]
    derivation = report.timeline_estimate.roi_derivation
    if derivation is not None:
        blocks.append(Paragraph(f"How the gain is computed: {text(derivation.total)}."))
        blocks.append(
            Paragraph(
                f"How the efficiency is computed: {text(derivation.infrastructure_efficiency)}."
            )
        )
        if derivation.targets:
            blocks.append(
                table(
                    ("metric", "category", "weight", "combined gain", "items (expected gain)"),
                    [
                        (
                            text(t.metric),
                            text(t.category),
                            num(t.weight, 4),
                            tagged(pct(t.combined_gain_pct), t.provenance.get("combined_gain_pct")),
                            ", ".join(
                                f"{text(i.approach)} "
                                + tagged(
                                    pct(i.expected_gain_pct),
                                    i.provenance.get("expected_gain_pct"),
                                )
                                for i in t.items
                            )
                            or NONE,
                        )
                        for t in derivation.targets
                    ],
                    numeric=(2, 3),
                )
            )
    return Section("roi", "Return on investment", tuple(blocks))


TIMELINE_FIGURES = (
    ("engineers", "Engineers"),
    ("engineer_weeks", "Engineer-weeks"),
    ("weeks", "Weeks of each phase"),
    ("total_weeks", "Total weeks"),
)


def timeline(report: PlanningReport) -> Section:
    t = report.timeline_estimate
    sources = t.provenance
    blocks: list[Block] = [
        Paragraph(
            f"{num(t.total_weeks)} weeks in all for {num(t.engineers)} engineers [weeks: "
            f"{source_label(sources.get('total_weeks'))}; engineers: "
            f"{source_label(sources.get('engineers'))}]."
        )
    ]
    if t.phases:
        weeks = sources.get("weeks")
        blocks.append(
            table(
                (
                    "phase",
                    "items",
                    head("engineer-weeks", sources.get("engineer_weeks")),
                    head("start week", weeks),
                    head("end week", weeks),
                    head("weeks", weeks),
                ),
                [
                    (
                        name,
                        num(p.items),
                        num(p.engineer_weeks),
                        num(p.start_week),
                        num(p.end_week),
                        num(p.weeks),
                    )
                    for name, p in t.phases.items()
                ],
                numeric=(1, 2, 3, 4, 5),
            )
        )
    if t.basis:
        blocks.append(Paragraph(f"Basis: {text(t.basis)}."))
    blocks.append(legend(sources, TIMELINE_FIGURES))
    return Section("timeline", "Timeline", tuple(blocks))


RISK_COLUMNS = (
    "id",
    "approach",
    "targets",
    "risk",
    "playbook risk",
    "named risk",
    "risk of delay",
    "source of the risk",
)


def risk(report: PlanningReport) -> Section:
    r = report.risk_assessment
    levels = r.by_level
    blocks: list[Block] = [
        Paragraph(
            "Overall risk: "
            + tagged(text(r.overall), r.provenance.get("overall"), basis=True)
            + (f" ({', '.join(f'{v} {k}' for k, v in levels.items())})" if levels else "")
            + "."
        )
    ]
    if r.items:
        blocks.append(
            table(
                RISK_COLUMNS,
                [
                    (
                        text(i.recommendation_id),
                        text(i.approach),
                        text(i.targets),
                        text(i.risk_level),
                        text(i.playbook_risk_level),
                        text(i.risk),
                        tagged(text(i.risk_of_delay), i.provenance.get("risk_of_delay")),
                        source_label(i.provenance.get("risk_level"), basis=True),
                    )
                    for i in r.items
                ],
                flagged=[k for k, i in enumerate(r.items) if i.risk_level == "high"],
            )
        )
    if r.unaddressed:
        blocks.append(
            Bullets(
                tuple(f"Unaddressed: {text(u.metric)} ({text(u.severity)})" for u in r.unaddressed)
            )
        )
    if r.basis:
        blocks.append(Paragraph(f"Basis: {text(r.basis)}."))
    return Section("risk", "Risk", tuple(blocks))


RESOURCE_FIGURES = (
    ("engineer_weeks", "Engineer-weeks"),
    ("infrastructure", "Infrastructure"),
    ("prerequisites", "Prerequisites"),
)


def resources(report: PlanningReport) -> Section | None:
    needs = report.resource_requirements
    blocks: list[Block] = []
    sources = needs.provenance
    if needs.engineer_weeks:
        blocks.append(
            table(
                ("phase", head("engineer-weeks", sources.get("engineer_weeks"))),
                [(k, num(v)) for k, v in needs.engineer_weeks.items()],
                (1,),
            )
        )
    prereq = {p.recommendation_id: p for p in needs.prerequisites}
    if needs.infrastructure:
        rows = []
        for i in needs.infrastructure:
            p = prereq.get(i.recommendation_id)
            requires = ", ".join(
                f"{text(r.approach)}{'' if r.in_plan else ' (not in plan)'}"
                for r in (p.requires if p is not None else [])
            )
            rows.append(
                (
                    text(i.recommendation_id),
                    text(i.approach),
                    text(i.cost),
                    text(p.prerequisites if p is not None else None),
                    requires or NONE,
                )
            )
        blocks.append(
            table(
                (
                    "id",
                    "approach",
                    head("infrastructure", sources.get("infrastructure")),
                    head("prerequisites", sources.get("prerequisites")),
                    head("requires", sources.get("prerequisites")),
                ),
                rows,
            )
        )
    if not blocks:
        return None
    blocks.append(legend(sources, RESOURCE_FIGURES))
    return Section("resources", "Resources", tuple(blocks))


def _learning_figures(
    learning: LearningReport,
) -> tuple[tuple[Ratio, str, Callable[[float | None], str], str], ...]:
    """Figure, label, how it is shown, what it is measured over (its denominator)."""
    return (
        (learning.recommendation_accuracy, "Recommendation accuracy", share, "verified outcomes"),
        (learning.prediction_error_mape, "Prediction error (MAPE)", pct, "verified outcomes"),
        (learning.implemented_share, "Plan items implemented", share, "plan items issued"),
        (learning.rejected_share, "Plan items rejected", share, "plan items issued"),
        (learning.plans_verified_share, "Plans verified", share, "plans issued"),
    )


def learning(report: LearningReport | None) -> Section | None:
    if report is None:
        return None
    rows = []
    for f, label, show, over in _learning_figures(report):
        if f.value is None:
            rows.append((label, NONE, text(f.reason), NONE))
        else:
            rows.append(
                (
                    label,
                    show(f.value),
                    f"{text(f.basis)} ({num(f.numerator)} / {num(f.denominator)})",
                    source_label(measured_from(f.denominator, over), basis=True),
                )
            )
    blocks: list[Block] = [
        Paragraph(
            "Measured from the verified history: what the outcomes reported so far show. "
            "These outcomes are also what calibrates the expected gains above."
        ),
        table(("figure", "value", "basis", "source"), rows, numeric=(1,)),
        Bullets(
            (
                f"verifications: {num(report.verifications)}",
                f"verified outcomes: {num(report.verified_outcomes)}",
                f"plans issued: {num(report.plans_issued)}",
                f"items issued: {num(report.items_issued)}",
                f"updates: {num(report.updates)}",
            )
        ),
    ]
    if report.by_approach:
        blocks.append(
            table(
                ("approach", "verifications", "accuracy", "MAPE", "source"),
                [
                    (
                        key,
                        num(a.verifications),
                        share(a.recommendation_accuracy.value),
                        pct(a.prediction_error_mape.value),
                        source_label(
                            measured_from(a.verifications, "verified outcomes"), basis=True
                        ),
                    )
                    for key, a in report.by_approach.items()
                ],
                numeric=(1, 2, 3),
            )
        )
    return Section("learning", "Learning from verified outcomes", tuple(blocks))
