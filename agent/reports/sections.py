"""A task result as a document of sections — paragraphs, lists and tables of plain text.

The one reading of a ``task_result/v1`` (as decoded JSON) that both the Markdown and the
HTML report render, so the two always say the same. Pure and forgiving: any section the
result lacks is left out, a figure it lacks is shown as ``—`` (or with the reason the
result gives), and nothing is computed here that the result does not hold, beyond
counting and sorting what is there.

Every figure is shown with its source (``format.source_label``: measured, prior,
calibrated or assumed, docs/learning.md): the result's own ``provenance`` or ``source``
where it gives one, ``source unknown`` where it does not; figures that can only be
measured (a metric's current value, the learning report's shares) say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.reports.format import (
    NONE,
    UNKNOWN_SOURCE,
    num,
    pct,
    ratio,
    share,
    signed,
    source_label,
    tagged,
    text,
    when,
)

PHASE_ORDER = ("Phase_1_Critical", "Phase_2_High", "Phase_3_Medium", "Phase_4_Low")
"""The plan's phases in the order they are worked (docs/protocol.md, ``implementation_phase``)."""


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subheading:
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()
    """Columns of figures (right-aligned)."""
    flagged: frozenset[int] = frozenset()
    """Rows to highlight: a metric missing its target, a firing burn rate…"""


Block = Paragraph | Bullets | Subheading | Table


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    """Stable name (``metrics``, ``bottlenecks``, ``roadmap``, ``capacity``…): where charts go."""
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    summary: tuple[str, ...]
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


def as_dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _table(
    columns: Iterable[str],
    rows: Iterable[Iterable[str]],
    numeric: Iterable[int] = (),
    flagged: Iterable[int] = (),
) -> Table:
    return Table(
        columns=tuple(columns),
        rows=tuple(tuple(r) for r in rows),
        numeric=frozenset(numeric),
        flagged=frozenset(flagged),
    )


def _figure(figure: Any, show: Any = num) -> str:
    """A ``{"value": …, "basis"/"reason": …, "source": …}`` figure of the report as
    ``value (basis) [source]``."""
    f = as_dict(figure)
    if not f:
        return NONE
    if f.get("value") is None:
        return f"{NONE} ({text(f.get('reason'))})" if f.get("reason") else NONE
    basis = f.get("basis")
    shown: str = show(f["value"])
    return tagged(f"{shown} ({text(basis)})" if basis else shown, f)


def measured_from(count: Any, what: str) -> dict[str, Any]:
    """The source of a figure that can only be measured (the result holds no other): from
    ``count`` ``what`` (samples, verified outcomes…)."""
    return {"source": "measured", "basis": f"{num(count)} {what}"}


def sources_of(section: Mapping[str, Any]) -> dict[str, Any]:
    """A section's ``provenance``: figure name → its source."""
    return as_dict(section.get("provenance"))


def _head(column: str, provenance: Any) -> str:
    """A column whose figures share one source, labelled in its header."""
    return f"{column} [{source_label(provenance)}]"


def _legend(provenance: Mapping[str, Any], figures: Iterable[tuple[str, str]]) -> Bullets:
    """What backs each named figure of a section (``source unknown`` when it is not said)."""
    return Bullets(
        tuple(f"{label}: {source_label(provenance.get(key), basis=True)}" for key, label in figures)
    )


def report_of(result: Mapping[str, Any]) -> dict[str, Any]:
    return as_dict(result.get("report"))


def is_planning(report: Mapping[str, Any]) -> bool:
    return "prioritized_plan" in report or report.get("plan_type") is not None


# --- headline ------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _title(result: Mapping[str, Any]) -> str:
    kind = result.get("task_type") or "task"
    return f"{text(kind)} report — task {text(result.get('task_id'))}"


def plan_headline(report: Mapping[str, Any]) -> str:
    """A plan in one line: items, phases, gain, effort, weeks, team and risk, each figure
    with its source."""
    plan = as_list(report.get("prioritized_plan"))
    phases = {as_dict(e).get("implementation_phase") for e in plan}
    roi = as_dict(report.get("infrastructure_roi"))
    timeline = as_dict(report.get("timeline_estimate"))
    risk = as_dict(report.get("risk_assessment"))
    gains, weeks = sources_of(roi), sources_of(timeline)
    gain = tagged(
        pct(roi.get("estimated_total_performance_gain_pct")),
        gains.get("estimated_total_performance_gain_pct"),
    )
    effort = tagged(text(roi.get("implementation_effort")), gains.get("implementation_effort"))
    total = tagged(f"{num(timeline.get('total_weeks'))} weeks", weeks.get("total_weeks"))
    team = tagged(f"{num(timeline.get('engineers'))} engineers", weeks.get("engineers"))
    overall = tagged(text(risk.get("overall")), sources_of(risk).get("overall"))
    return (
        f"Plan {text(report.get('plan_id'))}: {_count(len(plan), 'item')} in "
        f"{_count(len(phases), 'phase')}; expected gain {gain}; effort {effort}; "
        f"{total} for {team}; risk {overall}."
    )


def _summary(result: Mapping[str, Any], report: Mapping[str, Any]) -> tuple[str, ...]:
    status = text(result.get("status") or "unknown")
    lines = [
        f"Status {status}, answered by {text(result.get('agent_id'))} at "
        f"{when(result.get('completed_at'))} in {num(result.get('duration_ms'), 4)} ms."
    ]
    error = as_dict(result.get("error"))
    if error:
        lines.append(f"Error {text(error.get('code'))}: {text(error.get('message'))}")
    if not report:
        if not error:
            lines.append("The result holds no report.")
        return tuple(lines)
    performance = as_dict(report.get("performance"))
    window = report.get("window")
    if performance:
        missing = [m for m, p in performance.items() if as_dict(p).get("meeting_target") is False]
        critical = [m for m in missing if as_dict(performance[m]).get("severity") == "critical"]
        judged = f"{_count(len(performance), 'metric')} judged"
        if window:
            judged += f" over {text(window)}"
        misses = "misses its target" if len(missing) == 1 else "miss their target"
        verdict = f"{judged}: {len(missing)} {misses}"
        if critical:
            verdict += f" ({len(critical)} critical)"
        lines.append(verdict + ".")
    bottlenecks = [as_dict(b) for b in as_list(report.get("bottlenecks"))]
    if bottlenecks:
        top = bottlenecks[0]
        lines.append(
            f"Most urgent: {text(top.get('metric'))} ({text(top.get('severity'))}, urgency "
            f"{num(top.get('optimization_urgency'))}) — {text(top.get('bottleneck_type'))}."
        )
    elif performance:
        lines.append("No bottleneck: every judged metric meets its target.")
    if is_planning(report):
        lines.append(plan_headline(report))
    directive = report.get("directive_id")
    lines.append(f"Directive in force: {text(directive) if directive else 'none'}.")
    return tuple(lines)


# --- sections --------------------------------------------------------------------------


def trend_cell(p: Mapping[str, Any]) -> str:
    """``declining (p 0.001, q 0.02)``, ``stepped 60 → 180 at 10:40 UTC; stable since``."""
    detail = as_dict(p.get("trend_detail"))
    trend = text(p.get("trend"))
    tests = [
        f"{label} {num(detail.get(key), 2)}"
        for key, label in (("p_value", "p"), ("q_value", "q"))
        if detail.get(key) is not None
    ]
    if tests:
        trend += f" ({', '.join(tests)})"
    shift = as_dict(detail.get("level_shift"))
    if shift:
        trend = (
            f"stepped {num(shift.get('before'), 4)} → {num(shift.get('after'), 4)} at "
            f"{when(shift.get('at'))}; {trend} since"
        )
    if detail.get("note"):
        trend += f": {text(detail.get('note'))}"
    return trend


def breach_cell(detail: Mapping[str, Any]) -> str:
    """Hours to a breach of a metric still meeting its target, with its 95 % range."""
    expected = detail.get("hours_to_breach")
    if expected is None:
        return NONE
    low, high = detail.get("hours_to_breach_low"), detail.get("hours_to_breach_high")
    span = f" ({num(low, 3)}–{num(high, 3) if high is not None else 'never'} h)"
    return f"{num(expected, 3)} h{span}"


def _metrics(report: Mapping[str, Any]) -> Section | None:
    performance = as_dict(report.get("performance"))
    if not performance:
        return None
    rows, flagged = [], []
    notes: list[str] = []
    for i, (name, p) in enumerate(performance.items()):
        p = as_dict(p)
        detail = as_dict(p.get("trend_detail"))
        slope = detail.get("slope_per_hour")
        unit = text(p.get("unit"))
        if p.get("meeting_target") is False:
            flagged.append(i)
        statistic = text(p.get("statistic"))
        if p.get("statistic_note"):
            notes.append(f"{name}: {statistic} because {text(p['statistic_note'])}")
        for flag in as_list(p.get("flags")):
            notes.append(f"{name}: {text(flag)} — not ranked as a bottleneck")
        if p.get("rejected_samples"):
            notes.append(f"{name}: {num(p['rejected_samples'])} impossible samples left out")
        rows.append(
            (
                name,
                num(p.get("current")),
                num(p.get("target")),
                unit,
                statistic,
                num(p.get("meeting_target")),
                ratio(p.get("miss_ratio")),
                text(p.get("severity")),
                trend_cell(p),
                f"{signed(slope)} {unit}/h" if slope is not None else NONE,
                breach_cell(detail),
                num(p.get("samples")),
                source_label(measured_from(p.get("samples"), "samples"), basis=True),
            )
        )
    table = _table(
        (
            "metric",
            "current",
            "target",
            "unit",
            "statistic",
            "meets target",
            "miss ratio",
            "severity",
            "trend",
            "slope",
            "breach in",
            "samples",
            "source",
        ),
        rows,
        numeric=(1, 2, 6, 9, 11),
        flagged=flagged,
    )
    window = f" ({text(report['window'])})" if report.get("window") else ""
    blocks: list[Block] = [
        Paragraph(
            f"Each metric over the window{window}: current value (the statistic named, "
            "measured from the samples), target, the direction-aware miss ratio (≤ 1 meets "
            "the target), and the Theil–Sen slope with its Mann–Kendall trend (p corrected "
            "for autocorrelation, q for the number of metrics tested). A level shift is "
            "shown as a step and the slope is measured after it; a metric still meeting its "
            "target but worsening says when it would miss it."
        ),
        table,
    ]
    if notes:
        blocks.append(Bullets(tuple(notes)))
    measured = as_dict(report.get("measured"))
    if measured:
        blocks.append(Subheading("Measured, not judged"))
        blocks.append(
            _table(
                (
                    "metric",
                    "current",
                    "unit",
                    "statistic",
                    "trend",
                    "samples",
                    "why no verdict",
                    "source",
                ),
                [
                    (
                        name,
                        num(as_dict(m).get("current")),
                        text(as_dict(m).get("unit")),
                        text(as_dict(m).get("statistic")),
                        trend_cell(as_dict(m)),
                        num(as_dict(m).get("samples")),
                        text(as_dict(m).get("reason")),
                        source_label(
                            measured_from(as_dict(m).get("samples"), "samples"), basis=True
                        ),
                    )
                    for name, m in measured.items()
                ],
                numeric=(1, 5),
            )
        )
    return Section("metrics", "Metrics against their targets", tuple(blocks))


def _bottlenecks(report: Mapping[str, Any]) -> Section | None:
    if "bottlenecks" not in report:
        return None
    bottlenecks = [as_dict(b) for b in as_list(report.get("bottlenecks"))]
    if not bottlenecks:
        return Section(
            "bottlenecks",
            "Bottleneck ranking",
            (Paragraph("No bottleneck: every judged metric meets its target."),),
        )
    rows = [
        (
            str(i),
            text(b.get("metric")),
            text(b.get("bottleneck_type")),
            text(b.get("severity")),
            num(b.get("optimization_urgency")),
            text(b.get("caused_by")),
            text(b.get("evidence")),
        )
        for i, b in enumerate(bottlenecks, 1)
    ]
    table = _table(
        ("rank", "metric", "type", "severity", "urgency", "caused by", "evidence"),
        rows,
        numeric=(0, 4),
    )
    intro = Paragraph(
        "Most urgent first (urgency 1–100 from the miss ratio, × 1.5 when declining); a "
        "breached cause ranks above its symptoms."
    )
    return Section("bottlenecks", "Bottleneck ranking", (intro, table))


def _range(r: Any) -> str:
    r = as_dict(r)
    if not r:
        return NONE
    return (
        f"{num(r.get('low'), 4)}–{num(r.get('high'), 4)} % (expected {num(r.get('expected'), 4)} %)"
    )


def range_cell(r: Any) -> str:
    """An ``ImprovementRange`` with what its ends mean: ``-15–65 % (expected 25 %), 80 %
    range for one outcome; mean 95 %: -16–66 %``."""
    g = as_dict(r)
    if not g:
        return NONE
    level = g.get("level")
    said = (
        f"{share(level)} range for one outcome"
        if isinstance(level, float | int)
        else "range level not stated"
    )
    mean = as_dict(g.get("mean_interval"))
    if mean:
        said += (
            f"; mean {share(mean.get('level'))}: "
            f"{num(mean.get('low'), 4)}–{num(mean.get('high'), 4)} %"
        )
    return f"{_range(g)}, {said}"


def gain_source(r: Mapping[str, Any]) -> dict[str, Any]:
    """Where a recommendation's expected gain comes from: its range's ``provenance``, else
    (senders that predate it) ``calibrated`` and ``verifications``; {} when neither says."""
    own = as_dict(as_dict(r.get("expected_improvement_pct")).get("provenance"))
    if own:
        return own
    if r.get("calibrated") is True:
        return {"source": "calibrated", "verifications": r.get("verifications")}
    if r.get("calibrated") is False:
        return {"source": "prior"}
    return {}


def recommendation_cells(r: Mapping[str, Any]) -> dict[str, str]:
    """A recommendation's figures as shown, each with its source (text, Markdown, HTML)."""
    sources = sources_of(r)
    return {
        "expected": text(
            r.get("expected_improvement") or _range(r.get("expected_improvement_pct"))
        ),
        "range": range_cell(r.get("expected_improvement_pct")),
        "source": source_label(gain_source(r)),
        "effort": tagged(text(r.get("effort")), sources.get("effort_weeks")),
        "risk": tagged(text(r.get("risk")), sources.get("risk")),
    }


def _recommendations(report: Mapping[str, Any]) -> Section | None:
    if "recommendations" not in report:
        return None
    recs = [as_dict(r) for r in as_list(report.get("recommendations"))]
    if not recs:
        return Section("recommendations", "Recommendations", (Paragraph("Nothing to recommend."),))
    rows = []
    for r in recs:
        cells = recommendation_cells(r)
        rows.append(
            (
                text(r.get("recommendation_id")),
                text(r.get("type")),
                text(r.get("target")),
                text(r.get("approach")),
                cells["expected"],
                cells["effort"],
                cells["risk"],
                cells["source"],
                cells["range"],
            )
        )
    table = _table(
        (
            "id",
            "type",
            "target",
            "approach",
            "expected improvement",
            "effort",
            "risk",
            "source of the expected gain",
            "range",
        ),
        rows,
    )
    intro = Paragraph(
        "The expected gain is the playbook's prior or calibrated from verified outcomes (its "
        "source column); its range is where one outcome should land at the level shown, "
        "while the mean's interval narrows as outcomes are verified. Effort and risk carry "
        "their own source in brackets."
    )
    return Section("recommendations", "Recommendations", (intro, table))


def entry_cells(entry: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, str]:
    """A plan entry's expected gain (from its recommendation) with its source, and why it
    scored what it did (``score_rationale``, each term tagged with its source)."""
    rid = entry.get("recommendation_id")
    rec = next(
        (
            as_dict(r)
            for r in as_list(report.get("recommendations"))
            if as_dict(r).get("recommendation_id") == rid
        ),
        {},
    )
    expected = as_dict(rec.get("expected_improvement_pct")).get("expected")
    why = entry.get("score_rationale")
    return {
        "gain": tagged(pct(expected), gain_source(rec)) if rec else NONE,
        "why": text(why) if why else f"{UNKNOWN_SOURCE}: the plan gives no score rationale",
    }


def _roadmap(report: Mapping[str, Any]) -> Section | None:
    if not is_planning(report):
        return None
    plan = [as_dict(e) for e in as_list(report.get("prioritized_plan"))]
    phases_timing = as_dict(as_dict(report.get("timeline_estimate")).get("phases"))
    blocks: list[Block] = []
    if not plan:
        blocks.append(Paragraph("The plan is empty: nothing misses its target."))
    ranked = list(enumerate(plan, 1))
    phases = [p for p in PHASE_ORDER if any(e.get("implementation_phase") == p for e in plan)]
    phases += sorted(
        {str(e.get("implementation_phase")) for e in plan} - set(PHASE_ORDER) - {"None"}
    )
    for phase in phases:
        timing = as_dict(phases_timing.get(phase))
        head = phase.replace("_", " ")
        if timing:
            head += (
                f" — weeks {num(timing.get('start_week'))}–{num(timing.get('end_week'))}, "
                f"{num(timing.get('engineer_weeks'))} engineer-weeks"
            )
        blocks.append(Subheading(head))
        rows = []
        for i, e in ranked:
            if str(e.get("implementation_phase")) != phase:
                continue
            cells = entry_cells(e, report)
            rows.append(
                (
                    str(i),
                    text(e.get("recommendation_id")),
                    text(e.get("target")),
                    text(e.get("approach")),
                    num(e.get("backend_strategic_score"), 4),
                    cells["gain"],
                    cells["why"],
                )
            )
        blocks.append(
            _table(
                (
                    "rank",
                    "id",
                    "target",
                    "approach",
                    "strategic score",
                    "expected gain",
                    "why this score (each term's source)",
                ),
                rows,
                numeric=(0, 4),
            )
        )
    skipped = [as_dict(s) for s in as_list(report.get("skipped"))]
    if skipped:
        blocks.append(Subheading("Left out of the plan"))
        blocks.append(
            Bullets(
                tuple(
                    f"{text(s.get('approach')) + ' for ' if s.get('approach') else ''}"
                    f"{text(s.get('metric'))}: {text(s.get('reason'))}"
                    for s in skipped
                )
            )
        )
    return Section("roadmap", "Phased roadmap", tuple(blocks))


ROI_FIGURES: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("estimated_total_performance_gain_pct", "Expected performance gain", pct),
    ("estimated_infrastructure_efficiency_pct", "Infrastructure efficiency", pct),
    ("implementation_effort", "Effort", text),
)


def _roi(report: Mapping[str, Any]) -> Section | None:
    roi = as_dict(report.get("infrastructure_roi"))
    if not roi:
        return None
    sources = sources_of(roi)
    blocks: list[Block] = [
        Bullets(
            tuple(
                f"{label}: {tagged(show(roi.get(key)), sources.get(key), basis=True)}"
                for key, label, show in ROI_FIGURES
            )
        )
    ]
    derivation = as_dict(as_dict(report.get("timeline_estimate")).get("roi_derivation"))
    if derivation:
        for key, label in (("total", "gain"), ("infrastructure_efficiency", "efficiency")):
            if key in derivation:
                blocks.append(Paragraph(f"How the {label} is computed: {text(derivation[key])}."))
        targets = [as_dict(t) for t in as_list(derivation.get("targets"))]
        if targets:
            blocks.append(
                _table(
                    ("metric", "category", "weight", "combined gain", "items (expected gain)"),
                    [
                        (
                            text(t.get("metric")),
                            text(t.get("category")),
                            num(t.get("weight"), 4),
                            tagged(
                                pct(t.get("combined_gain_pct")),
                                sources_of(t).get("combined_gain_pct"),
                            ),
                            ", ".join(
                                f"{text(i.get('approach'))} "
                                + tagged(
                                    pct(i.get("expected_gain_pct")),
                                    sources_of(i).get("expected_gain_pct"),
                                )
                                for i in map(as_dict, as_list(t.get("items")))
                            )
                            or NONE,
                        )
                        for t in targets
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


def _timeline(report: Mapping[str, Any]) -> Section | None:
    timeline = as_dict(report.get("timeline_estimate"))
    if not timeline:
        return None
    phases = as_dict(timeline.get("phases"))
    sources = sources_of(timeline)
    blocks: list[Block] = [
        Paragraph(
            f"{num(timeline.get('total_weeks'))} weeks in all for "
            f"{num(timeline.get('engineers'))} engineers [weeks: "
            f"{source_label(sources.get('total_weeks'))}; engineers: "
            f"{source_label(sources.get('engineers'))}]."
        )
    ]
    if phases:
        weeks = sources.get("weeks")
        blocks.append(
            _table(
                (
                    "phase",
                    "items",
                    _head("engineer-weeks", sources.get("engineer_weeks")),
                    _head("start week", weeks),
                    _head("end week", weeks),
                    _head("weeks", weeks),
                ),
                [
                    (
                        name,
                        num(as_dict(p).get("items")),
                        num(as_dict(p).get("engineer_weeks")),
                        num(as_dict(p).get("start_week")),
                        num(as_dict(p).get("end_week")),
                        num(as_dict(p).get("weeks")),
                    )
                    for name, p in phases.items()
                ],
                numeric=(1, 2, 3, 4, 5),
            )
        )
    if timeline.get("basis"):
        blocks.append(Paragraph(f"Basis: {text(timeline['basis'])}."))
    blocks.append(_legend(sources, TIMELINE_FIGURES))
    return Section("timeline", "Timeline", tuple(blocks))


def _risk(report: Mapping[str, Any]) -> Section | None:
    risk = as_dict(report.get("risk_assessment"))
    if not risk:
        return None
    levels = as_dict(risk.get("by_level"))
    blocks: list[Block] = [
        Paragraph(
            "Overall risk: "
            + tagged(text(risk.get("overall")), sources_of(risk).get("overall"), basis=True)
            + (f" ({', '.join(f'{v} {k}' for k, v in levels.items())})" if levels else "")
            + "."
        )
    ]
    items = [as_dict(i) for i in as_list(risk.get("items"))]
    if items:
        blocks.append(
            _table(
                (
                    "id",
                    "approach",
                    "targets",
                    "risk",
                    "playbook risk",
                    "named risk",
                    "risk of delay",
                    "source of the risk",
                ),
                [
                    (
                        text(i.get("recommendation_id")),
                        text(i.get("approach")),
                        text(i.get("targets")),
                        text(i.get("risk_level")),
                        text(i.get("playbook_risk_level")),
                        text(i.get("risk")),
                        tagged(text(i.get("risk_of_delay")), sources_of(i).get("risk_of_delay")),
                        source_label(sources_of(i).get("risk_level"), basis=True),
                    )
                    for i in items
                ],
                flagged=[k for k, i in enumerate(items) if i.get("risk_level") == "high"],
            )
        )
    unaddressed = [as_dict(u) for u in as_list(risk.get("unaddressed"))]
    if unaddressed:
        blocks.append(
            Bullets(
                tuple(
                    f"Unaddressed: {text(u.get('metric'))} ({text(u.get('severity'))})"
                    for u in unaddressed
                )
            )
        )
    if risk.get("basis"):
        blocks.append(Paragraph(f"Basis: {text(risk['basis'])}."))
    return Section("risk", "Risk", tuple(blocks))


RESOURCE_FIGURES = (
    ("engineer_weeks", "Engineer-weeks"),
    ("infrastructure", "Infrastructure"),
    ("prerequisites", "Prerequisites"),
)


def _resources(report: Mapping[str, Any]) -> Section | None:
    resources = as_dict(report.get("resource_requirements"))
    if not resources:
        return None
    blocks: list[Block] = []
    sources = sources_of(resources)
    weeks = as_dict(resources.get("engineer_weeks"))
    if weeks:
        blocks.append(
            _table(
                ("phase", _head("engineer-weeks", sources.get("engineer_weeks"))),
                [(k, num(v)) for k, v in weeks.items()],
                (1,),
            )
        )
    infra = [as_dict(i) for i in as_list(resources.get("infrastructure"))]
    prereq = {
        text(as_dict(p).get("recommendation_id")): as_dict(p)
        for p in as_list(resources.get("prerequisites"))
    }
    if infra:
        rows = []
        for i in infra:
            p = prereq.get(text(i.get("recommendation_id")), {})
            requires = ", ".join(
                f"{text(r.get('approach'))}{'' if r.get('in_plan') else ' (not in plan)'}"
                for r in map(as_dict, as_list(p.get("requires")))
            )
            rows.append(
                (
                    text(i.get("recommendation_id")),
                    text(i.get("approach")),
                    text(i.get("cost")),
                    text(p.get("prerequisites")),
                    requires or NONE,
                )
            )
        blocks.append(
            _table(
                (
                    "id",
                    "approach",
                    _head("infrastructure", sources.get("infrastructure")),
                    _head("prerequisites", sources.get("prerequisites")),
                    _head("requires", sources.get("prerequisites")),
                ),
                rows,
            )
        )
    if blocks:
        blocks.append(_legend(sources, RESOURCE_FIGURES))
    return Section("resources", "Resources", tuple(blocks)) if blocks else None


def _projection(figure: Any) -> str:
    f = as_dict(figure)
    if not f:
        return NONE
    if "expected" not in f:
        return _figure(f)
    return tagged(f"{num(f.get('expected'))} ({num(f.get('low'))}–{num(f.get('high'))})", f)


def _capacity(report: Mapping[str, Any]) -> Section | None:
    projections = as_dict(report.get("scalability_projections"))
    if not projections:
        return None
    base = as_dict(projections.get("current_baseline"))
    blocks: list[Block] = []
    window = as_dict(base.get("window"))
    if window:
        blocks.append(
            Paragraph(f"Observed from {when(window.get('start'))} to {when(window.get('end'))}.")
        )
    blocks.append(Subheading("Current baseline"))
    blocks.append(
        _table(
            ("figure", "value"),
            [
                ("API requests per second", _figure(base.get("api_requests_per_s"))),
                ("WebSocket connections", _figure(base.get("websocket_connections"))),
                ("Concurrent users", _figure(base.get("concurrent_users"))),
            ],
        )
    )
    model = as_dict(base.get("capacity_model"))
    if model:
        items = [f"Model: {text(model.get('model'))} — {text(model.get('reason'))}"]
        if model.get("ceiling") is not None:
            items.append(
                f"Throughput ceiling: {num(model.get('ceiling'))} req/s"
                + (
                    f" at {num(model.get('peak_concurrency'))} concurrent"
                    if model.get("peak_concurrency") is not None
                    else ""
                )
                + (
                    " (beyond the highest load observed, "
                    f"{num(model.get('max_observed_concurrency'))}: extrapolated)"
                    if model.get("peak_is_extrapolated")
                    else ""
                )
                + f" [{source_label(model)}]"
            )
        else:
            items.append("Throughput ceiling: none found")
        items.append(
            f"λ {num(model.get('lambda'))}, σ {num(model.get('sigma'))}, "
            f"κ {num(model.get('kappa'))}, r² {num(model.get('r2'))} over "
            f"{num(model.get('points'))} points [{source_label(model)}]"
        )
        if model.get("concurrency_basis"):
            items.append(f"Concurrency: {text(model['concurrency_basis'])}")
        blocks.append(Subheading("Capacity model"))
        blocks.append(Bullets(tuple(items)))
    growth = as_dict(base.get("demand_growth"))
    if growth:
        blocks.append(Subheading("Demand growth"))
        if growth.get("value", 0) is None:
            blocks.append(Paragraph(f"Unknown: {text(growth.get('reason'))}."))
        else:
            ci = as_list(growth.get("ci95_pct_per_day"))
            blocks.append(
                Bullets(
                    (
                        f"{signed(growth.get('growth_pct_per_day'))} % per day "
                        f"(95 % interval {' to '.join(signed(c) for c in ci) or NONE} %), "
                        f"r² {num(growth.get('r2'))}, over {num(growth.get('span_days'))} days, "
                        f"{num(growth.get('points'))} points [{source_label(growth, basis=True)}]",
                        text(growth.get("note")),
                    )
                )
            )
    utilisation = as_dict(base.get("utilisation"))
    if utilisation:
        if "value" in utilisation and utilisation.get("value") is None:
            line = f"Utilisation of the ceiling: unknown ({text(utilisation.get('reason'))})"
        else:
            said = sources_of(utilisation)

            def cell(key: str, show: Callable[[Any], str] = share) -> str:
                return tagged(show(utilisation.get(key)), said.get(key))

            line = (
                f"Utilisation of the ceiling now: {cell('current_system')}, "
                f"after the plan: {cell('optimised_system')}"
            )
            if "days_to_ceiling" in utilisation:
                line += (
                    f"; demand meets the ceiling in {cell('days_to_ceiling', num)} days "
                    f"({cell('days_to_optimised_ceiling', num)} after the plan)"
                )
        blocks.append(Bullets((line,)))
    horizons = [(k, as_dict(projections.get(k))) for k in ("3_months", "6_months")]
    horizons = [(k, h) for k, h in horizons if h]
    if horizons:
        blocks.append(Subheading("Projections (expected, 95 % interval)"))
        rows = []
        for key, h in horizons:
            util = as_dict(h.get("utilisation"))
            if util.get("value", 0) is None:
                used = f"{NONE} ({text(util.get('reason'))})"
            else:
                now_, after = (
                    as_dict(util.get("current_system")),
                    as_dict(util.get("optimised_system")),
                )
                sources = sources_of(util)
                used = (
                    f"{tagged(share(now_.get('expected')), sources.get('current_system'))} now, "
                    f"{tagged(share(after.get('expected')), sources.get('optimised_system'))} "
                    "after the plan"
                )
            rows.append(
                (
                    f"{key.replace('_', ' ')} ({num(h.get('days'))} days)",
                    _projection(h.get("api_requests_per_s")),
                    _projection(h.get("websocket_connections")),
                    _projection(h.get("concurrent_users")),
                    used,
                )
            )
        blocks.append(
            _table(
                ("horizon", "req/s", "WebSocket connections", "concurrent users", "ceiling used"),
                rows,
            )
        )
    triggers = [as_dict(t) for t in as_list(projections.get("scaling_triggers"))]
    if triggers:
        blocks.append(Subheading("Scaling triggers"))
        blocks.append(
            _table(
                (
                    "metric",
                    "threshold",
                    "current",
                    "status",
                    "slope/day",
                    "expected at",
                    "in days",
                    "why",
                    "source",
                ),
                [
                    (
                        text(t.get("metric")),
                        num(t.get("threshold")),
                        num(t.get("current")),
                        text(t.get("status")),
                        signed(t.get("slope_per_day")),
                        when(t.get("expected_at")),
                        _days_cell(t),
                        text(t.get("reason")),
                        NONE if t.get("current") is None else source_label(t, basis=True),
                    )
                    for t in triggers
                ],
                numeric=(1, 2, 4, 6),
                flagged=[
                    i
                    for i, t in enumerate(triggers)
                    if t.get("status") in ("expected", "already_crossed")
                ],
            )
        )
    return Section("capacity", "Capacity projection", tuple(blocks))


def _days_cell(trigger: Mapping[str, Any]) -> str:
    """``9.01 (7.2–13)``: days to a crossing with the range from the slope's interval."""
    days = num(trigger.get("days_from_now"), 4)
    span = as_list(trigger.get("days_from_now_range"))
    if days == NONE or len(span) != 2 or span[0] is None:
        return days
    latest = num(span[1], 3) if span[1] is not None else "never"
    return f"{days} ({num(span[0], 3)}–{latest})"


LEARNING_FIGURES: tuple[tuple[str, str, Callable[[Any], str], str], ...] = (
    ("recommendation_accuracy", "Recommendation accuracy", share, "verified outcomes"),
    ("prediction_error_mape", "Prediction error (MAPE)", pct, "verified outcomes"),
    ("implemented_share", "Plan items implemented", share, "plan items issued"),
    ("rejected_share", "Plan items rejected", share, "plan items issued"),
    ("plans_verified_share", "Plans verified", share, "plans issued"),
)
"""Figure, label, how it is shown, what it is measured over (its denominator)."""


def _learning(report: Mapping[str, Any]) -> Section | None:
    learning = as_dict(report.get("learning_report"))
    if not learning:
        return None
    rows = []
    for key, label, show, over in LEARNING_FIGURES:
        f = as_dict(learning.get(key))
        if not f:
            continue
        if f.get("value") is None:
            rows.append((label, NONE, text(f.get("reason")), NONE))
        else:
            rows.append(
                (
                    label,
                    show(f.get("value")),
                    f"{text(f.get('basis'))} ({num(f.get('numerator'))} / "
                    f"{num(f.get('denominator'))})",
                    source_label(measured_from(f.get("denominator"), over), basis=True),
                )
            )
    blocks: list[Block] = [
        Paragraph(
            "Measured from the verified history: what the outcomes reported so far show. "
            "These outcomes are also what calibrates the expected gains above."
        )
    ]
    if rows:
        blocks.append(_table(("figure", "value", "basis", "source"), rows, numeric=(1,)))
    counts = [
        f"{k.replace('_', ' ')}: {num(learning[k])}"
        for k in ("verifications", "verified_outcomes", "plans_issued", "items_issued", "updates")
        if k in learning
    ]
    if counts:
        blocks.append(Bullets(tuple(counts)))
    by_approach = as_dict(learning.get("by_approach"))
    if by_approach:
        blocks.append(
            _table(
                ("approach", "verifications", "accuracy", "MAPE", "source"),
                [
                    (
                        key,
                        num(as_dict(a).get("verifications")),
                        share(as_dict(as_dict(a).get("recommendation_accuracy")).get("value")),
                        pct(as_dict(as_dict(a).get("prediction_error_mape")).get("value")),
                        source_label(
                            measured_from(as_dict(a).get("verifications"), "verified outcomes"),
                            basis=True,
                        ),
                    )
                    for key, a in by_approach.items()
                ],
                numeric=(1, 2, 3),
            )
        )
    return Section("learning", "Learning from verified outcomes", tuple(blocks))


def _slo(report: Mapping[str, Any]) -> Section | None:
    slo = as_dict(report.get("slo"))
    if not slo:
        return None
    blocks: list[Block] = []
    for metric, status in slo.items():
        s = as_dict(status)
        blocks.append(
            Paragraph(
                f"{metric}: objective {pct(s.get('objective_pct'), 6)}, bad events "
                f"{share(s.get('bad_fraction'))}, error budget left "
                f"{share(s.get('error_budget_remaining'))}."
            )
        )
        rates = [as_dict(r) for r in as_list(s.get("burn_rates"))]
        if rates:
            blocks.append(
                _table(
                    (
                        "windows",
                        "threshold",
                        "severity",
                        "long burn",
                        "short burn",
                        "coverage",
                        "firing",
                    ),
                    [
                        (
                            f"{text(r.get('long_window'))}/{text(r.get('short_window'))}",
                            f"{num(r.get('threshold'))}×",
                            text(r.get("severity")),
                            num(r.get("long_burn"), 4),
                            num(r.get("short_burn"), 4),
                            share(r.get("coverage")),
                            num(bool(r.get("firing"))),
                        )
                        for r in rates
                    ],
                    numeric=(1, 3, 4, 5),
                    flagged=[i for i, r in enumerate(rates) if r.get("firing")],
                )
            )
    return Section("slo", "Service-level objectives", tuple(blocks))


def _root_causes(report: Mapping[str, Any]) -> Section | None:
    links = [as_dict(c) for c in as_list(report.get("root_causes"))]
    if not links:
        return None
    table = _table(
        ("symptom", "likely cause", "score", "cause onset", "symptom onset", "correlation"),
        [
            (
                text(c.get("symptom")),
                text(c.get("cause")),
                num(c.get("score"), 3),
                when(c.get("cause_onset")),
                when(c.get("symptom_onset")),
                num(c.get("correlation"), 3),
            )
            for c in links
        ],
        numeric=(2, 5),
    )
    intro = Paragraph(
        "Score 0–1: the dependency table, which breached first, and rank correlation; "
        "from 0.6 on a cause ranks above its symptom."
    )
    return Section("root_causes", "Root causes", (intro, table))


def _changes(report: Mapping[str, Any]) -> Section | None:
    points = as_dict(report.get("change_points"))
    outliers = as_dict(report.get("outliers"))
    if not points and not outliers:
        return None
    blocks: list[Block] = []
    rows = [
        (
            metric,
            when(c.get("at")),
            num(c.get("before"), 4),
            num(c.get("after"), 4),
            signed(c.get("shift")),
            f"{signed(c.get('shift_pct'))} %" if c.get("shift_pct") is not None else NONE,
            "worse" if c.get("worse") else "better",
        )
        for metric, found in points.items()
        for c in map(as_dict, as_list(found))
    ]
    if rows:
        blocks.append(Subheading("Level shifts"))
        blocks.append(
            _table(
                ("metric", "at", "before", "after", "shift", "shift %", "direction"),
                rows,
                numeric=(2, 3, 4, 5),
                flagged=[i for i, r in enumerate(rows) if r[-1] == "worse"],
            )
        )
    spikes = [
        (metric, when(o.get("at")), num(o.get("value"), 4), num(o.get("robust_z"), 3))
        for metric, found in outliers.items()
        for o in map(as_dict, as_list(found))
    ]
    if spikes:
        blocks.append(Subheading("Outliers"))
        blocks.append(_table(("metric", "at", "value", "robust z"), spikes, numeric=(2, 3)))
    return Section("changes", "Change points and outliers", tuple(blocks))


def _request_patterns(report: Mapping[str, Any]) -> Section | None:
    patterns = as_dict(report.get("request_patterns"))
    if not patterns:
        return None
    blocks: list[Block] = [
        Paragraph(
            f"{num(patterns.get('total_requests'))} requests, {num(patterns.get('mean_rate'))} "
            "req/s on average."
        )
    ]
    peaks = [as_dict(p) for p in as_list(patterns.get("peak_periods"))]
    if peaks:
        blocks.append(
            Bullets(
                tuple(
                    f"Peak {p.get('start_hour')}:00–{p.get('end_hour')}:59 UTC: "
                    f"{num(p.get('mean_rate'))} req/s ({num(p.get('ratio_to_mean'), 3)}× the mean)"
                    for p in peaks
                )
            )
        )
    for key, label in (("endpoints", "endpoint"), ("regions", "region")):
        shares = [as_dict(s) for s in as_list(patterns.get(key))]
        if shares:
            blocks.append(
                _table(
                    (label, "share", "requests", "p50 ms", "p95 ms", "p99 ms"),
                    [
                        (
                            text(s.get("name")),
                            pct(s.get("share_pct")),
                            num(s.get("requests")),
                            num(s.get("p50_ms"), 4),
                            num(s.get("p95_ms"), 4),
                            num(s.get("p99_ms"), 4),
                        )
                        for s in shares
                    ],
                    numeric=(1, 2, 3, 4, 5),
                )
            )
    return Section("request_patterns", "Request patterns", tuple(blocks))


def _flat(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Scalars of a findings object as dotted keys (nested objects flattened)."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _flat(value, f"{name}.")
        elif not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            out.append((name, value))
    return out


def _findings(report: Mapping[str, Any]) -> Section | None:
    findings = as_dict(report.get("findings"))
    if not findings:
        return None
    blocks: list[Block] = []
    for name, finding in findings.items():
        blocks.append(Subheading(name.replace("_", " ")))
        if not isinstance(finding, dict):
            blocks.append(Paragraph(text(finding)))
            continue
        scalars = _flat(finding)
        if scalars:
            blocks.append(Bullets(tuple(f"{k}: {text(v)}" for k, v in scalars)))
        for key, value in finding.items():
            rows = [as_dict(v) for v in as_list(value)]
            if not rows or not all(isinstance(v, dict) for v in as_list(value)):
                continue
            columns = list(dict.fromkeys(k for r in rows for k in r))
            blocks.append(Paragraph(f"{key.replace('_', ' ')}:"))
            blocks.append(_table(columns, [[text(r.get(c)) for c in columns] for r in rows]))
    return Section("findings", "Domain findings", tuple(blocks))


def _data_quality(report: Mapping[str, Any]) -> Section | None:
    quality = as_dict(report.get("data_quality"))
    if not quality:
        return None
    items: list[str] = []
    if quality.get("window_end"):
        items.append(f"Window ends at the newest sample: {when(quality['window_end'])}")
    sources = as_dict(quality.get("sources"))
    if sources:
        by_source: dict[str, list[str]] = {}
        for metric, names in sources.items():
            for source in as_list(names) or [names]:
                by_source.setdefault(text(source), []).append(metric)
        items += [f"From {s}: {', '.join(sorted(m))}" for s, m in sorted(by_source.items())]
    for key, label in (
        ("missing_metrics", "No data for"),
        ("unknown_metrics", "Unknown metric names (ignored)"),
        ("out_of_scope_metrics", "Judged though outside this task's scope"),
        ("unknown_targets", "Targets for unknown metrics (ignored)"),
    ):
        names = as_list(quality.get(key))
        if names:
            items.append(f"{label}: {', '.join(text(n) for n in names)}")
    history = as_dict(quality.get("history"))
    if history.get("note"):
        items.append(f"History judged: {text(history['note'])}")
    for metric, rejected in as_dict(quality.get("rejected_samples")).items():
        r = as_dict(rejected)
        items.append(
            f"Impossible samples rejected for {metric}: {num(r.get('count'))} "
            f"({text(r.get('reason'))}), never averaged in"
        )
    for metric, why in as_dict(quality.get("unit_suspects")).items():
        items.append(f"Unit looks wrong: {text(why)}; {metric} is not ranked as a bottleneck")
    for metric, why in as_dict(quality.get("statistic_notes")).items():
        items.append(f"Statistic for {metric}: {text(why)}")
    for metric, why in as_dict(quality.get("unjudged_metrics")).items():
        items.append(f"Measured, not judged: {metric} ({text(why)})")
    thin = as_dict(quality.get("too_few_for_trend"))
    if thin:
        items.append(
            f"Too few samples for a trend (fewer than {num(quality.get('min_trend_samples'))}): "
            + ", ".join(f"{m} ({num(n)})" for m, n in thin.items())
        )
    for skip in map(as_dict, as_list(quality.get("infeasible_skipped"))):
        items.append(
            f"Skipped as infeasible: {text(skip.get('approach'))} for "
            f"{text(skip.get('metric'))} ({text(skip.get('reason'))})"
        )
    weights = as_dict(quality.get("business_weights"))
    if weights:
        items.append(
            f"Business weights ({text(weights.get('source'))}): "
            + ", ".join(f"{k} {num(v, 4)}" for k, v in weights.items() if k != "source")
        )
    store = as_dict(quality.get("store"))
    if store:
        items.append(
            f"Samples accepted {num(store.get('accepted'))}, rejected {num(store.get('rejected'))}"
        )
    source_report = as_dict(quality.get("source_report"))
    if source_report:
        items.append(f"Source report: {text(source_report)}")
    if not items:
        return None
    return Section("data_quality", "Data quality", (Bullets(tuple(items)),))


def _error(result: Mapping[str, Any]) -> Section | None:
    error = as_dict(result.get("error"))
    if not error:
        return None
    return Section(
        "error",
        "Error",
        (
            Paragraph(
                f"The task {text(result.get('status') or 'failed')}: "
                f"{text(error.get('code'))} — {text(error.get('message'))}"
            ),
        ),
    )


SECTIONS = (
    _metrics,
    _bottlenecks,
    _recommendations,
    _roadmap,
    _roi,
    _timeline,
    _risk,
    _resources,
    _capacity,
    _learning,
    _root_causes,
    _changes,
    _slo,
    _request_patterns,
    _findings,
    _data_quality,
)
"""The report's sections in reading order, each from the report alone."""


def _guarded(build: Callable[[Mapping[str, Any]], Section | None], report: Any) -> Section | None:
    """One section; a free-form part of the report (``dict[str, Any]`` in the contract) that
    no agent would write is shown as such instead of ending the whole page."""
    try:
        return build(report)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        name = build.__name__.lstrip("_").replace("_", " ")
        return Section(
            key=build.__name__.lstrip("_"),
            title=name.capitalize(),
            blocks=(Paragraph(f"This part of the result could not be read: {exc!r}"),),
        )


def document(result: Mapping[str, Any]) -> Document:
    """The document of a ``task_result/v1`` as decoded JSON (a failed one included)."""
    report = report_of(result)
    built = (_guarded(build, report) for build in SECTIONS)
    sections = [s for s in (_error(result), *built) if s]
    return Document(
        title=_title(result), summary=_summary(result, report), sections=tuple(sections)
    )
