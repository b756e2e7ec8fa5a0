"""One figure of a report as a table cell, with its source: shared by every rendering
(the sections behind Markdown and HTML, and the terminal's text)."""

from __future__ import annotations

from agent.reports.format import NONE, num, share, source_label, tagged, text, when
from protocols.reports import (
    ImprovementRange,
    MeasuredMetric,
    MetricPerformance,
    Provenance,
    Recommendation,
    TrendDetail,
)


def measured_from(count: float, what: str) -> Provenance:
    """The source of a figure that can only be measured (the report holds no other): from
    ``count`` ``what`` (samples, verified outcomes…)."""
    return Provenance(source="measured", basis=f"{num(count)} {what}")


def trend_cell(p: MetricPerformance | MeasuredMetric) -> str:
    """``declining (p 0.001, q 0.02)``, ``stepped 60 → 180 at 10:40 UTC; stable since``."""
    detail = p.trend_detail
    trend = text(p.trend)
    if detail is None:
        return trend
    tests = [
        f"{label} {num(value, 2)}"
        for value, label in ((detail.p_value, "p"), (detail.q_value, "q"))
        if value is not None
    ]
    if tests:
        trend += f" ({', '.join(tests)})"
    shift = detail.level_shift
    if shift is not None:
        trend = (
            f"stepped {num(shift.before, 4)} → {num(shift.after, 4)} at "
            f"{when(shift.at)}; {trend} since"
        )
    if detail.note:
        trend += f": {text(detail.note)}"
    return trend


def breach_cell(detail: TrendDetail | None) -> str:
    """Hours to a breach of a metric still meeting its target, with its 95 % range."""
    if detail is None or detail.hours_to_breach is None:
        return NONE
    low, high = detail.hours_to_breach_low, detail.hours_to_breach_high
    span = f" ({num(low, 3)}–{num(high, 3) if high is not None else 'never'} h)"
    return f"{num(detail.hours_to_breach, 3)} h{span}"


def range_text(r: ImprovementRange) -> str:
    return f"{num(r.low, 4)}–{num(r.high, 4)} % (expected {num(r.expected, 4)} %)"


def range_cell(r: ImprovementRange) -> str:
    """An ``ImprovementRange`` with what its ends mean: ``-15–65 % (expected 25 %), 80 %
    range for one outcome; mean 95 %: -16–66 %``."""
    said = (
        f"{share(r.level)} range for one outcome"
        if r.level is not None
        else "range level not stated"
    )
    mean = r.mean_interval
    if mean is not None:
        said += f"; mean {share(mean.level)}: {num(mean.low, 4)}–{num(mean.high, 4)} %"
    return f"{range_text(r)}, {said}"


def gain_source(r: Recommendation) -> Provenance:
    """Where a recommendation's expected gain comes from: its range's ``provenance``, else
    (senders that predate it) ``calibrated`` and ``verifications``."""
    own = r.expected_improvement_pct.provenance
    if own is not None:
        return own
    if r.calibrated:
        return Provenance(source="calibrated", verifications=r.verifications)
    return Provenance(source="prior")


def recommendation_cells(r: Recommendation) -> dict[str, str]:
    """A recommendation's figures as shown, each with its source (text, Markdown, HTML)."""
    return {
        "expected": text(r.expected_improvement or range_text(r.expected_improvement_pct)),
        "range": range_cell(r.expected_improvement_pct),
        "source": source_label(gain_source(r)),
        "effort": tagged(text(r.effort), r.provenance.get("effort_weeks")),
        "risk": tagged(text(r.risk), r.provenance.get("risk")),
    }
