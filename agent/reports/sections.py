"""A task result as a document of sections — paragraphs, lists and tables of plain text.

The one reading of a typed ``TaskResult`` that the Markdown, HTML and text reports render,
so they always say the same. The report was decoded once, at the edge, into
``AnalysisReport`` or ``PlanningReport``: nothing here parses or guards, a section a report
does not have is left out, a figure it does not have is shown as ``—`` (or with the reason
it gives), and nothing is computed that the report does not hold, beyond counting and
sorting what is there. The analysis' own sections are in ``diagnosis``, a plan's in
``plan`` and ``projection``; the model in ``document``.

Every figure is shown with its source (``format.source_label``: measured, prior,
calibrated or assumed, docs/learning.md): the report's own ``provenance`` or ``source``
where it gives one, ``source unknown`` where it does not; figures that can only be
measured (a metric's current value, the learning report's shares) say so.
"""

from __future__ import annotations

from agent.reports import diagnosis, plan, projection
from agent.reports.cells import breach_cell, measured_from, recommendation_cells, trend_cell
from agent.reports.document import (
    Block,
    Bullets,
    Document,
    Paragraph,
    Section,
    Subheading,
    count,
    table,
)
from agent.reports.format import NONE, num, ratio, signed, source_label, text, when
from protocols.messages import TaskResult
from protocols.reports import AnalysisReport, PlanningReport, Report

# --- headline ------------------------------------------------------------------------


def _title(result: TaskResult) -> str:
    return f"{text(result.task_type or 'task')} report — task {text(result.task_id)}"


def _summary(result: TaskResult) -> tuple[str, ...]:
    lines = [
        f"Status {text(result.status)}, answered by {text(result.agent_id)} at "
        f"{when(result.completed_at)} in {num(result.duration_ms, 4)} ms."
    ]
    error, report = result.error, result.report
    if error is not None:
        lines.append(f"Error {text(error.code)}: {text(error.message)}")
    if report is None:
        if error is None:
            lines.append("The result holds no report.")
        return tuple(lines)
    performance = report.performance
    if performance:
        missing = [m for m, p in performance.items() if not p.meeting_target]
        critical = [m for m in missing if performance[m].severity == "critical"]
        judged = f"{count(len(performance), 'metric')} judged"
        if report.window:
            judged += f" over {text(report.window)}"
        misses = "misses its target" if len(missing) == 1 else "miss their target"
        verdict = f"{judged}: {len(missing)} {misses}"
        if critical:
            verdict += f" ({len(critical)} critical)"
        lines.append(verdict + ".")
    if report.bottlenecks:
        top = report.bottlenecks[0]
        lines.append(
            f"Most urgent: {text(top.metric)} ({text(top.severity)}, urgency "
            f"{num(top.optimization_urgency)}) — {text(top.bottleneck_type)}."
        )
    elif performance:
        lines.append("No bottleneck: every judged metric meets its target.")
    if isinstance(report, PlanningReport):
        lines.append(plan.plan_headline(report))
    directive = report.directive_id
    lines.append(f"Directive in force: {text(directive) if directive else 'none'}.")
    return tuple(lines)


# --- the sections every report has ---------------------------------------------------------


METRIC_COLUMNS = (
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
)
MEASURED_COLUMNS = (
    "metric",
    "current",
    "unit",
    "statistic",
    "trend",
    "samples",
    "why no verdict",
    "source",
)


def _metrics(report: Report) -> Section | None:
    if not report.performance:
        return None
    rows, flagged = [], []
    notes: list[str] = []
    for i, (name, p) in enumerate(report.performance.items()):
        slope = p.trend_detail.slope_per_hour if p.trend_detail is not None else None
        unit = text(p.unit)
        if not p.meeting_target:
            flagged.append(i)
        statistic = text(p.statistic)
        if p.statistic_note:
            notes.append(f"{name}: {statistic} because {text(p.statistic_note)}")
        notes += [f"{name}: {text(flag)} — not ranked as a bottleneck" for flag in p.flags]
        if p.rejected_samples:
            notes.append(f"{name}: {num(p.rejected_samples)} impossible samples left out")
        rows.append(
            (
                name,
                num(p.current),
                num(p.target),
                unit,
                statistic,
                num(p.meeting_target),
                ratio(p.miss_ratio),
                text(p.severity),
                trend_cell(p),
                f"{signed(slope)} {unit}/h" if slope is not None else NONE,
                breach_cell(p.trend_detail),
                num(p.samples),
                source_label(measured_from(p.samples, "samples"), basis=True),
            )
        )
    window = f" ({text(report.window)})" if report.window else ""
    blocks: list[Block] = [
        Paragraph(
            f"Each metric over the window{window}: current value (the statistic named, "
            "measured from the samples), target, the direction-aware miss ratio (≤ 1 meets "
            "the target), and the Theil–Sen slope with its Mann–Kendall trend (p corrected "
            "for autocorrelation, q for the number of metrics tested). A level shift is "
            "shown as a step and the slope is measured after it; a metric still meeting its "
            "target but worsening says when it would miss it."
        ),
        table(METRIC_COLUMNS, rows, numeric=(1, 2, 6, 9, 11), flagged=flagged),
    ]
    if notes:
        blocks.append(Bullets(tuple(notes)))
    if report.measured:
        blocks.append(Subheading("Measured, not judged"))
        blocks.append(
            table(
                MEASURED_COLUMNS,
                [
                    (
                        name,
                        num(m.current),
                        text(m.unit),
                        text(m.statistic),
                        trend_cell(m),
                        num(m.samples),
                        text(m.reason),
                        source_label(measured_from(m.samples, "samples"), basis=True),
                    )
                    for name, m in report.measured.items()
                ],
                numeric=(1, 5),
            )
        )
    return Section("metrics", "Metrics against their targets", tuple(blocks))


def _bottlenecks(report: Report) -> Section:
    if not report.bottlenecks:
        return Section(
            "bottlenecks",
            "Bottleneck ranking",
            (Paragraph("No bottleneck: every judged metric meets its target."),),
        )
    rows = [
        (
            str(i),
            text(b.metric),
            text(b.bottleneck_type),
            text(b.severity),
            num(b.optimization_urgency),
            text(b.caused_by),
            text(b.evidence),
        )
        for i, b in enumerate(report.bottlenecks, 1)
    ]
    ranking = table(
        ("rank", "metric", "type", "severity", "urgency", "caused by", "evidence"),
        rows,
        numeric=(0, 4),
    )
    intro = Paragraph(
        "Most urgent first (urgency 1–100 from the miss ratio, × 1.5 when declining); a "
        "breached cause ranks above its symptoms."
    )
    return Section("bottlenecks", "Bottleneck ranking", (intro, ranking))


RECOMMENDATION_COLUMNS = (
    "id",
    "type",
    "target",
    "approach",
    "expected improvement",
    "effort",
    "risk",
    "source of the expected gain",
    "range",
)


def _recommendations(report: Report) -> Section:
    if not report.recommendations:
        return Section("recommendations", "Recommendations", (Paragraph("Nothing to recommend."),))
    rows = []
    for r in report.recommendations:
        cells = recommendation_cells(r)
        rows.append(
            (
                text(r.recommendation_id),
                text(r.type),
                text(r.target),
                text(r.approach),
                cells["expected"],
                cells["effort"],
                cells["risk"],
                cells["source"],
                cells["range"],
            )
        )
    intro = Paragraph(
        "The expected gain is the playbook's prior or calibrated from verified outcomes (its "
        "source column); its range is where one outcome should land at the level shown, "
        "while the mean's interval narrows as outcomes are verified. Effort and risk carry "
        "their own source in brackets."
    )
    return Section(
        "recommendations", "Recommendations", (intro, table(RECOMMENDATION_COLUMNS, rows))
    )


def _error(result: TaskResult) -> Section | None:
    if result.error is None:
        return None
    said = f"{text(result.error.code)} — {text(result.error.message)}"
    return Section(
        "error", "Error", (Paragraph(f"The task {text(result.status or 'failed')}: {said}"),)
    )


def _sections(report: Report) -> list[Section | None]:
    """The report's sections in reading order, each from the report alone."""
    head = [_metrics(report), _bottlenecks(report), _recommendations(report)]
    match report:
        case PlanningReport():
            return [
                *head,
                plan.roadmap(report),
                plan.roi(report),
                plan.timeline(report),
                plan.risk(report),
                plan.resources(report),
                projection.capacity(report.scalability_projections),
                plan.learning(report.learning_report),
                diagnosis.data_quality(report.data_quality),
            ]
        case AnalysisReport():
            return [
                *head,
                diagnosis.root_causes(report),
                diagnosis.changes(report),
                diagnosis.slo(report),
                diagnosis.request_patterns(report),
                diagnosis.findings(report.findings),
                diagnosis.data_quality(report.data_quality),
            ]


def document(result: TaskResult) -> Document:
    """The document of a ``TaskResult`` (a failed one included)."""
    built = _sections(result.report) if result.report is not None else []
    sections = [s for s in (_error(result), *built) if s is not None]
    return Document(title=_title(result), summary=_summary(result), sections=tuple(sections))
