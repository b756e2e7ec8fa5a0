"""A task result as plain text for a terminal: what an operator reads first."""

from __future__ import annotations

from agent.reports.cells import breach_cell, recommendation_cells, trend_cell
from agent.reports.document import Block, Bullets, Paragraph, Subheading, Table
from agent.reports.format import NONE
from agent.reports.plan import plan_headline
from agent.reports.sections import document
from protocols.messages import TaskResult
from protocols.reports import PlanningReport

PLAN_SECTIONS = ("roadmap", "roi", "timeline", "risk", "resources", "capacity", "learning")
"""The sections of a plan the terminal shows as the pages do (every figure with its source)."""


def _plain(block: Block) -> list[str]:
    """A section's block as indented lines: a table row is its cells joined by `` | ``."""
    match block:
        case Paragraph(text=text):
            return [f"  {text}"]
        case Bullets(items=items):
            return [f"  - {item}" for item in items]
        case Subheading(text=text):
            return [f"  {text}:"]
        case Table(columns=columns, rows=rows, flagged=flagged):
            return [f"  {' | '.join(columns)}"] + [
                f"{'!' if i in flagged else ' '} {' | '.join(row)}" for i, row in enumerate(rows)
            ]
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - the union is closed


def render_text(result: TaskResult) -> str:
    """Status, every judged metric, the ranked bottlenecks, the recommendations, for a plan
    its roadmap, return, timeline, risk, resources, capacity and learning, and what was
    wrong with the data (the same words as the Markdown and HTML pages, every figure with
    its source)."""
    lines = [
        f"task {result.task_id} ({result.task_type}): {result.status}"
        f" in {result.duration_ms:.1f} ms"
    ]
    if result.error is not None:
        lines.append(f"  error {result.error.code}: {result.error.message}")
    report = result.report
    if report is None:
        return "\n".join(lines)
    if isinstance(report, PlanningReport):
        lines.append(plan_headline(report))
    if report.performance:
        lines.append(f"\nmetrics over {report.window} (measured from the samples):")
        lines.append(
            f"  {'metric':<24} {'current':>10} {'target':>9} {'unit':<6} {'stat':<5} "
            f"{'miss':>6} {'n':>5}  trend"
        )
        for name, perf in report.performance.items():
            mark = " " if perf.meeting_target else "!"
            breach = breach_cell(perf.trend_detail)
            due = f"; misses its target in {breach}" if breach != NONE else ""
            lines.append(
                f"{mark} {name:<24} {perf.current:>10.2f} {perf.target:>9.2f} "
                f"{perf.unit:<6} {perf.statistic:<5} {perf.miss_ratio:>5.2f}x "
                f"{perf.samples:>5}  {trend_cell(perf)}{due}"
            )
            if perf.statistic_note:
                lines.append(f"    {perf.statistic} because {perf.statistic_note}")
            for flag in perf.flags:
                lines.append(f"    FLAG: {flag} (not ranked as a bottleneck)")
            if perf.rejected_samples:
                lines.append(f"    {perf.rejected_samples} impossible samples left out")
    if report.measured:
        lines.append("\nmeasured, not judged (no target set):")
        for name, m in report.measured.items():
            lines.append(
                f"  {name:<24} {m.current:>10.2f} {m.unit:<6} {m.statistic:<5}"
                f" {m.samples:>5}  {trend_cell(m)}"
            )
    if report.bottlenecks:
        lines.append("\nbottlenecks (most urgent first):")
        for b in report.bottlenecks:
            lines.append(
                f"  [{b.severity:<8}] urgency {b.optimization_urgency:>3}  "
                f"{b.bottleneck_type}: {b.evidence}"
            )
    if report.recommendations:
        lines.append("\nrecommendations:")
        for r in report.recommendations:
            cells = recommendation_cells(r)
            lines.append(
                f"  {r.recommendation_id} {r.type:<12} {r.approach} → "
                f"{cells['expected']}; source {cells['source']}; range {cells['range']}; "
                f"effort {cells['effort']}; risk {cells['risk']}"
            )
    doc = document(result)
    for key in (*PLAN_SECTIONS, "data_quality"):
        section = doc.section(key)
        if section is not None:
            lines.append(f"\n{section.title.lower()}:")
            for block in section.blocks:
                lines.extend(_plain(block))
    return "\n".join(lines)
