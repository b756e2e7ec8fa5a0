"""The report's charts as plotly figures, drawn from the result's own numbers only.

- ``metric_chart``: each metric's bucket medians (``report.series``) against its target,
  with the Theil–Sen line of the report's slope; metrics missing their target in red.
- ``bottleneck_chart``: the ranking's urgency (1–100), coloured by severity.
- ``roadmap_chart``: each plan item's strategic score, coloured by phase (with the
  phase's weeks from the timeline).
- ``capacity_chart``: demand compounded at the fitted growth (with its 95 % interval)
  against the throughput ceiling, and the dates scaling triggers are expected.

Each returns a ``Chart`` whose ``figure`` is None with the ``absent`` sentence saying why
when the result lacks what the chart needs. A figure drawn is named with its source
(``format.source_label``), as in the tables. Nothing is drawn that the result does not
hold, except lines implied by its figures: the trend line (slope from the report,
intercept the Theil–Sen one over the series) and the growth curve (baseline ×
(1 + g)^days, the formula the 3- and 6-month figures were computed with).
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from agent.analysis.series import finite
from agent.reports.format import num, source_label, sourced, to_datetime
from agent.reports.plan import PHASE_ORDER
from protocols.reports import (
    AnalysisReport,
    MeasuredMetric,
    MetricPerformance,
    PlanningReport,
    ScalabilityProjections,
)

DAY_S = 86_400.0
HOUR_S = 3_600.0
SEVERITY_COLOURS: Mapping[str, str] = {
    "critical": "#b2182b",
    "high": "#ef8a62",
    "medium": "#e6c229",
    "low": "#67a9cf",
}
PHASE_COLOURS: Mapping[str, str] = {
    "Phase_1_Critical": "#b2182b",
    "Phase_2_High": "#ef8a62",
    "Phase_3_Medium": "#e6c229",
    "Phase_4_Low": "#67a9cf",
}
OK_COLOUR, BAD_COLOUR = "#2166ac", "#b2182b"
TARGET_COLOUR, TREND_COLOUR, CEILING_COLOUR = "#555555", "#f28e2b", "#4d4d4d"
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    figure: go.Figure | None
    """A plotly figure, or None when the result cannot carry the chart."""
    caption: str = ""
    absent: str = ""
    """Why there is no figure (shown in its place)."""


def _t(x: str) -> str:
    """A string from the result as chart text: plotly.js reads tags in it, so escape them."""
    return html.escape(x, quote=False)


MAX_CHART_DAYS = 3_660.0
"""The longest projection drawn (ten years): the contract's horizons are 3 and 6 months."""


def _days(days: float) -> float:
    """A horizon's length in days, 0 when beyond anything worth drawing."""
    return days if 0.0 <= days <= MAX_CHART_DAYS else 0.0


def _x(moment: datetime) -> str:
    """A UTC time as the wall time plotly.js reads (it ignores zone offsets)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _layout(fig: go.Figure, height: int, top: int = 90, **extra: object) -> go.Figure:
    """Common layout; ``top`` leaves room for the legend (and subplot titles) above."""
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 30, "t": top, "b": 50},
        font=FONT,
        plot_bgcolor="#fafafa",
        paper_bgcolor="#ffffff",
        legend={"orientation": "h", "x": 0.0, "y": 0.99, "yanchor": "top", "yref": "container"},
        **extra,
    )
    return fig


# --- metrics against their targets ----------------------------------------------------


def theil_sen_line(
    timestamps: Sequence[float], values: Sequence[float], slope_per_hour: float
) -> tuple[float, float]:
    """The trend line through the series: (value at the first time, at the last).

    Intercept by Theil–Sen's rule, median(y − slope·t) with t in hours from the first
    point; the slope is the report's (over the judge's bucket medians).
    """
    t0 = timestamps[0]
    hours = [(t - t0) / HOUR_S for t in timestamps]
    intercept = statistics.median(
        v - slope_per_hour * h for v, h in zip(values, hours, strict=True)
    )
    return intercept, intercept + slope_per_hour * hours[-1]


@dataclass(frozen=True, slots=True)
class _Panel:
    name: str
    ts: list[float]
    at: list[datetime]
    values: list[float]
    perf: MetricPerformance | MeasuredMetric


def _panels(report: AnalysisReport | PlanningReport) -> tuple[list[_Panel], list[str]]:
    """Metrics with a drawable series (≥ 2 points at times a calendar holds), and the
    judged ones without. Metrics measured but not judged (no target set) are drawn too,
    without a target line."""
    performance: dict[str, MetricPerformance | MeasuredMetric] = {
        **report.measured,
        **report.performance,
    }
    panels: list[_Panel] = []
    without: list[str] = []
    for name, perf in performance.items():
        s = report.series.get(name)
        points = [
            (t, at, v)
            for t, v in (zip(s.timestamps, s.values, strict=False) if s is not None else [])
            if (at := to_datetime(t)) is not None and finite(v) is not None
        ]
        if len(points) < 2:
            without.append(name)
            continue
        panels.append(
            _Panel(
                name=name,
                ts=[t for t, _, _ in points],
                at=[at for _, at, _ in points],
                values=[v for _, _, v in points],
                perf=perf,
            )
        )
    return panels, without


def _panel_title(p: _Panel) -> str:
    perf = p.perf
    unit = _t(perf.unit)
    head = f"{_t(p.name)}: {_t(perf.statistic)} {num(perf.current, 4)} {unit}"
    if isinstance(perf, MeasuredMetric):
        return f"{head} (measured, no target set)"
    head += f" vs target {num(perf.target, 4)}"
    if not perf.meeting_target:
        return f"<b>⚠ {head} — misses it ({num(perf.miss_ratio, 3)}×)</b>"
    return head


def metric_chart(report: AnalysisReport | PlanningReport) -> Chart:
    """Small multiples: per metric its series, its target and its trend line."""
    title = "Metrics against their targets"
    panels, without = _panels(report)
    if not panels:
        if not without:
            why = "No chart: no metric was judged."
        else:
            verb = "was" if len(without) == 1 else "were"
            why = (
                f"No chart: the result carries no time series ({', '.join(without)} {verb} "
                "given as single values or with fewer than 2 points over time)."
            )
        return Chart("metrics", title, None, absent=why)
    cols = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[_panel_title(p) for p in panels],
        vertical_spacing=min(0.3 / rows + 0.04, 0.12),
        horizontal_spacing=0.08,
    )
    shown: set[str] = set()

    def legend(kind: str) -> dict[str, object]:
        first = kind not in shown
        shown.add(kind)
        return {"legendgroup": kind, "showlegend": first}

    for k, p in enumerate(panels):
        row, col = k // cols + 1, k % cols + 1
        breached = isinstance(p.perf, MetricPerformance) and not p.perf.meeting_target
        x = [_x(at) for at in p.at]
        unit = _t(p.perf.unit)
        kind = "bucket medians (missing target)" if breached else "bucket medians"
        fig.add_trace(
            go.Scatter(
                x=x,
                y=p.values,
                mode="lines+markers",
                name=kind,
                line={"color": BAD_COLOUR if breached else OK_COLOUR, "width": 1.5},
                marker={"size": 4},
                hovertemplate=f"{_t(p.name)}<br>%{{x}}<br>%{{y:.4g}} {unit}<extra></extra>",
                **legend(kind),
            ),
            row=row,
            col=col,
        )
        target = finite(p.perf.target) if isinstance(p.perf, MetricPerformance) else None
        if target is not None:
            fig.add_trace(
                go.Scatter(
                    x=[x[0], x[-1]],
                    y=[target, target],
                    mode="lines",
                    name="target",
                    line={"color": TARGET_COLOUR, "dash": "dash", "width": 1.5},
                    hovertemplate=f"target {target:.4g} {unit}<extra></extra>",
                    **legend("target"),
                ),
                row=row,
                col=col,
            )
        detail = p.perf.trend_detail
        slope = finite(detail.slope_per_hour) if detail is not None else None
        if slope is not None and p.perf.trend != "unknown":
            start, end = theil_sen_line(p.ts, p.values, slope)
            fig.add_trace(
                go.Scatter(
                    x=[x[0], x[-1]],
                    y=[start, end],
                    mode="lines",
                    name="Theil–Sen trend",
                    line={"color": TREND_COLOUR, "dash": "dot", "width": 2},
                    hovertemplate=f"trend {p.perf.trend}: {slope:+.4g} {unit}/h<extra></extra>",
                    **legend("Theil–Sen trend"),
                ),
                row=row,
                col=col,
            )
        fig.update_yaxes(title_text=unit, row=row, col=col)
    fig.update_annotations(font={"size": 12})
    _layout(fig, height=120 + 260 * rows, hovermode="closest")
    caption = (
        "Points are the medians of equal time buckets of the samples the judge used; the "
        "current value is the statistic named (a latency's p95 sits above its medians). "
        "Dashed: the target; dotted: the Theil–Sen trend (the report's slope per hour, "
        "intercept the median of value − slope·time). Red: misses its target."
    )
    if without:
        caption += f" Not drawn (no series over time): {', '.join(without)}."
    return Chart("metrics", title, fig, caption=caption)


# --- bottleneck ranking -----------------------------------------------------------------


def bottleneck_chart(report: AnalysisReport | PlanningReport) -> Chart:
    title = "Bottleneck ranking by urgency"
    ranked = report.bottlenecks
    if not ranked:
        why = "No chart: no bottleneck — every judged metric meets its target."
        return Chart("bottlenecks", title, None, absent=why)
    labels = [f"{i}. {_t(b.metric)}" for i, b in enumerate(ranked, 1)]
    fig = go.Figure()
    for severity, colour in SEVERITY_COLOURS.items():
        rows = [
            (label, b) for label, b in zip(labels, ranked, strict=True) if b.severity == severity
        ]
        if not rows:
            continue
        fig.add_trace(
            go.Bar(
                x=[float(b.optimization_urgency) for _, b in rows],
                y=[label for label, _ in rows],
                orientation="h",
                name=severity,
                marker={"color": colour},
                text=[f"{_t(b.bottleneck_type)} · {num(b.optimization_urgency)}" for _, b in rows],
                textposition="inside",
                insidetextanchor="start",
                hovertemplate="%{y}: urgency %{x}<br>%{text}<extra></extra>",
            )
        )
    fig.update_yaxes(categoryorder="array", categoryarray=labels, autorange="reversed")
    fig.update_xaxes(range=[0, 100], title_text="optimisation urgency (1–100)")
    _layout(fig, height=max(220, 100 + 36 * len(ranked)), top=50, barmode="overlay")
    caption = (
        "Most urgent at the top, as ranked in the report (a cause before its symptoms); "
        "urgency = min(100, miss ratio × 50), × 1.5 when the trend is declining."
    )
    return Chart("bottlenecks", title, fig, caption=caption)


# --- phased roadmap ---------------------------------------------------------------------


def roadmap_chart(report: PlanningReport) -> Chart:
    title = "Phased roadmap: strategic score per plan item"
    plan = report.prioritized_plan
    if not plan:
        why = "No chart: the plan is empty (nothing misses its target)."
        return Chart("roadmap", title, None, absent=why)
    timeline = report.timeline_estimate
    weeks = source_label(timeline.provenance.get("weeks"))
    labels = [f"{i}. {_t(e.approach)} → {_t(e.target)}" for i, e in enumerate(plan, 1)]
    fig = go.Figure()
    for phase in (p for p in PHASE_ORDER if any(e.implementation_phase == p for e in plan)):
        rows = [
            (label, e)
            for label, e in zip(labels, plan, strict=True)
            if e.implementation_phase == phase
        ]
        t = timeline.phases.get(phase)
        name = _t(phase.replace("_", " "))
        if t is not None:
            name += f" (weeks {num(t.start_week)}–{num(t.end_week)}, {weeks})"
        fig.add_trace(
            go.Bar(
                x=[e.backend_strategic_score for _, e in rows],
                y=[label for label, _ in rows],
                orientation="h",
                name=name,
                marker={"color": PHASE_COLOURS[phase]},
                text=[f"{e.backend_strategic_score:.1f}" for _, e in rows],
                textposition="outside",
                hovertemplate="%{y}<br>score %{x:.2f}<extra>" + name + "</extra>",
            )
        )
    fig.update_yaxes(categoryorder="array", categoryarray=labels, autorange="reversed")
    fig.update_xaxes(range=[0, 105], title_text="backend strategic score (0–100)")
    _layout(fig, height=max(220, 100 + 36 * len(plan)), top=50, barmode="overlay")
    caption = (
        "Plan items in plan order, coloured by implementation phase; phases run one after "
        "another (weeks from the timeline estimate). How each score was computed, every "
        "term with its source, is in the table below."
    )
    return Chart("roadmap", title, fig, caption=caption)


# --- capacity projection ----------------------------------------------------------------


def _growth_curve(base: float, pct_per_day: float, days: Sequence[float]) -> list[float | None]:
    """``base × (1 + g)^d`` per day, None where it is not a positive finite number."""
    factor = 1.0 + pct_per_day / 100.0
    out: list[float | None] = []
    for d in days:
        try:
            value = base * factor**d if factor > 0.0 else math.nan
        except OverflowError:
            value = math.inf
        out.append(value if math.isfinite(value) and value > 0.0 else None)
    return out


@dataclass(frozen=True, slots=True)
class _Demand:
    """What the capacity chart draws from: the baseline, its growth and the horizons."""

    now: datetime
    rate: float
    growth_pct_per_day: float
    horizons: dict[str, tuple[float, float]]
    """``3 months``/``6 months`` → (days, expected req/s)."""


def _demand(projections: ScalabilityProjections) -> _Demand | str:
    """The demand projection to draw, or why there is none."""
    base = projections.current_baseline
    rate, growth = finite(base.api_requests_per_s.value), base.demand_growth
    if rate is None:
        why = base.api_requests_per_s.reason or "not in the result"
        return f"No chart: no request-rate baseline ({why})."
    horizons: dict[str, tuple[float, float]] = {}
    for label, h in (("3 months", projections.three_months), ("6 months", projections.six_months)):
        expected = finite(h.api_requests_per_s.expected)
        if expected is None:
            reason = h.api_requests_per_s.reason or growth.reason or "not in the result"
            return f"No chart: the capacity projection needs a demand projection — {reason}."
        horizons[label] = (_days(h.days), expected)
    g = finite(growth.growth_pct_per_day)
    if g is None:
        return f"No chart: demand growth unknown ({growth.reason or 'not in the result'})."
    now = to_datetime(base.window.end)
    if now is None or now > datetime.max.replace(tzinfo=now.tzinfo) - timedelta(
        days=MAX_CHART_DAYS
    ):
        return "No chart: the window's end is unknown."
    return _Demand(now=now, rate=rate, growth_pct_per_day=g, horizons=horizons)


def capacity_chart(report: PlanningReport) -> Chart:
    title = "Capacity: demand growth against the throughput ceiling"
    projections = report.scalability_projections
    demand = _demand(projections)
    if isinstance(demand, str):
        return Chart("capacity", title, None, absent=demand)
    base = projections.current_baseline
    growth = base.demand_growth
    now, rate, g = demand.now, demand.rate, demand.growth_pct_per_day
    ci = [finite(c) for c in growth.ci95_pct_per_day]
    last = max(d for d, _ in demand.horizons.values()) or 182.0
    days = sorted({*(float(d) for d in range(0, int(last) + 1, 7)), last})
    days += [d for d, _ in demand.horizons.values()]
    days = sorted(set(days))

    def at(d: float) -> str:
        return _x(now + timedelta(days=d))

    x = [at(d) for d in days]
    fig = go.Figure()
    if len(ci) == 2 and ci[0] is not None and ci[1] is not None:
        low, high = _growth_curve(rate, ci[0], days), _growth_curve(rate, ci[1], days)
        keep = [i for i in range(len(days)) if low[i] is not None and high[i] is not None]
        fig.add_trace(
            go.Scatter(
                x=[x[i] for i in keep],
                y=[low[i] for i in keep],
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[x[i] for i in keep],
                y=[high[i] for i in keep],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(33,102,172,0.15)",
                name=f"95 % interval ({ci[0]:+.3g} to {ci[1]:+.3g} %/day)",
                hoverinfo="skip",
            )
        )
    expected = _growth_curve(rate, g, days)
    keep = [i for i, v in enumerate(expected) if v is not None]
    growth_source = source_label(sourced(growth.source, growth.basis))
    fig.add_trace(
        go.Scatter(
            x=[x[i] for i in keep],
            y=[expected[i] for i in keep],
            mode="lines",
            name=f"expected demand ({g:+.3g} %/day, {growth_source})",
            line={"color": OK_COLOUR, "width": 2},
            hovertemplate="%{x}<br>%{y:.4g} req/s<extra></extra>",
        )
    )
    points = [("now", 0.0, rate)] + [(k, d, v) for k, (d, v) in demand.horizons.items()]
    figure = base.api_requests_per_s
    fig.add_trace(
        go.Scatter(
            x=[at(d) for _, d, _ in points],
            y=[v for _, _, v in points],
            mode="markers+text",
            text=[f"{label}: {num(v, 4)}" for label, _, v in points],
            textposition=["top right"] + ["top left"] * (len(points) - 1),
            name=f"report figures (req/s, {source_label(sourced(figure.source, figure.basis))})",
            marker={"color": OK_COLOUR, "size": 9},
            hovertemplate="%{text} req/s<extra></extra>",
        )
    )
    model = base.capacity_model
    ceiling = finite(model.ceiling)
    after = projections.three_months.utilisation
    optimised = finite(after.optimised_ceiling_req_per_s)
    after_source = source_label(after.provenance.get("optimised_ceiling_req_per_s"))
    for level, name, dash in (
        (
            ceiling,
            f"throughput ceiling ({_t(model.model)}): {num(ceiling, 4)} req/s "
            f"[{source_label(sourced(model.source))}]",
            "solid",
        ),
        (optimised, f"ceiling after the plan: {num(optimised, 4)} req/s [{after_source}]", "dash"),
    ):
        if level is not None:
            fig.add_trace(
                go.Scatter(
                    x=[x[0], x[-1]],
                    y=[level, level],
                    mode="lines",
                    name=name,
                    line={"color": CEILING_COLOUR, "dash": dash, "width": 2},
                    hovertemplate=name + "<extra></extra>",
                )
            )
    marks: list[tuple[float, str]] = []
    meets = finite(base.utilisation.days_to_ceiling)
    if meets is not None:
        marks.append((meets, f"demand meets the ceiling (+{meets:.3g} d)"))
    for t in projections.scaling_triggers:
        ahead = finite(t.days_from_now)
        if t.status == "expected" and ahead is not None:
            marks.append((ahead, f"{_t(t.metric)} reaches {num(t.threshold, 4)} (+{ahead:.3g} d)"))
        elif t.status == "already_crossed":
            marks.append((0.0, f"{_t(t.metric)} already past {num(t.threshold, 4)}"))
    beyond = [label for ahead, label in marks if not 0.0 <= ahead <= last]
    marks = [(ahead, label) for ahead, label in marks if 0.0 <= ahead <= last]
    for k, (ahead, label) in enumerate(sorted(marks)):
        fig.add_shape(
            type="line",
            x0=at(ahead),
            x1=at(ahead),
            yref="paper",
            y0=0,
            y1=1,
            line={"color": BAD_COLOUR, "dash": "dot", "width": 1.5},
        )
        fig.add_annotation(
            x=at(ahead),
            yref="paper",
            y=1 - 0.07 * k,
            text=label,
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"color": BAD_COLOUR, "size": 11},
            bgcolor="rgba(255,255,255,0.8)",
        )
    fig.update_yaxes(type="log", title_text="requests per second (log scale)")
    fig.update_xaxes(title_text="date (UTC)")
    _layout(fig, height=480, hovermode="closest")
    caption = (
        "Demand compounded from the baseline at the fitted growth rate (the formula of the "
        "3- and 6-month figures), its 95 % interval shaded, against the fitted throughput "
        "ceiling; dotted red lines: when demand meets the ceiling and when scaling triggers "
        "are expected to be crossed."
    )
    if beyond:
        caption += f" Beyond the chart: {'; '.join(beyond)}."
    if growth.note:
        caption += f" Note: {growth.note}."
    return Chart("capacity", title, fig, caption=caption)


def charts(report: AnalysisReport | PlanningReport) -> dict[str, Chart]:
    """Every chart that applies to ``report`` by the section it belongs to."""
    drawn = {"metrics": metric_chart(report), "bottlenecks": bottleneck_chart(report)}
    if isinstance(report, PlanningReport):
        drawn |= {"roadmap": roadmap_chart(report), "capacity": capacity_chart(report)}
    return drawn
