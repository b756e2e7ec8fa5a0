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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from agent.reports.format import num, source_label, to_datetime
from agent.reports.sections import PHASE_ORDER, as_dict, as_list, is_planning, sources_of

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
    figure: Any | None
    """A ``plotly.graph_objects.Figure``, or None when the result cannot carry the chart."""
    caption: str = ""
    absent: str = ""
    """Why there is no figure (shown in its place)."""


def _t(x: Any) -> str:
    """A string from the result as chart text: plotly.js reads tags in it, so escape them."""
    return html.escape(str(x), quote=False)


def _finite(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


MAX_CHART_DAYS = 3_660.0
"""The longest projection drawn (ten years): the contract's horizons are 3 and 6 months."""


def _days(horizon: Mapping[str, Any]) -> float:
    """A horizon's length in days, 0 when absent or beyond anything worth drawing."""
    days = _finite(horizon.get("days"))
    return days if days is not None and 0.0 <= days <= MAX_CHART_DAYS else 0.0


def _x(ts: float) -> str:
    """Epoch seconds as the UTC wall time plotly.js reads (it ignores zone offsets)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _layout(fig: Any, height: int, top: int = 90, **extra: Any) -> Any:
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
    values: list[float]
    perf: dict[str, Any]


def _panels(report: Mapping[str, Any]) -> tuple[list[_Panel], list[str]]:
    """Metrics with a drawable series (≥ 2 finite points), and the judged ones without.

    Metrics measured but not judged (no target set) are drawn too, without a target line.
    """
    performance = {
        **{k: as_dict(v) for k, v in as_dict(report.get("measured")).items()},
        **as_dict(report.get("performance")),
    }
    series = as_dict(report.get("series"))
    panels: list[_Panel] = []
    without: list[str] = []
    for name, perf in performance.items():
        s = as_dict(series.get(name))
        pairs = [
            (t, v)
            for t, v in zip(as_list(s.get("timestamps")), as_list(s.get("values")), strict=False)
            if _finite(t) is not None and _finite(v) is not None
        ]
        if len(pairs) < 2:
            without.append(name)
            continue
        panels.append(
            _Panel(
                name=name,
                ts=[float(t) for t, _ in pairs],
                values=[float(v) for _, v in pairs],
                perf=as_dict(perf),
            )
        )
    return panels, without


def _panel_title(p: _Panel) -> str:
    perf = p.perf
    unit = _t(perf.get("unit") or "")
    head = (
        f"{_t(p.name)}: {_t(perf.get('statistic', 'value'))} {num(perf.get('current'), 4)} {unit}"
    )
    if perf.get("target") is None:
        return f"{head} (measured, no target set)"
    head += f" vs target {num(perf.get('target'), 4)}"
    if perf.get("meeting_target") is False:
        return f"<b>⚠ {head} — misses it ({num(perf.get('miss_ratio'), 3)}×)</b>"
    return head


def metric_chart(report: Mapping[str, Any]) -> Chart:
    """Small multiples: per metric its series, its target and its trend line."""
    title = "Metrics against their targets"
    panels, without = _panels(report)
    if not panels:
        if not without:
            why = "No chart: no metric was judged."
        elif "series" not in report:
            why = "No chart: the result carries no series (made before reports carried them)."
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

    def legend(kind: str) -> dict[str, Any]:
        first = kind not in shown
        shown.add(kind)
        return {"legendgroup": kind, "showlegend": first}

    for k, p in enumerate(panels):
        row, col = k // cols + 1, k % cols + 1
        breached = p.perf.get("meeting_target") is False
        x = [_x(t) for t in p.ts]
        unit = _t(p.perf.get("unit") or "")
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
        target = _finite(p.perf.get("target"))
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
        detail = as_dict(p.perf.get("trend_detail"))
        slope = _finite(detail.get("slope_per_hour"))
        if slope is not None and p.perf.get("trend") != "unknown":
            start, end = theil_sen_line(p.ts, p.values, slope)
            fig.add_trace(
                go.Scatter(
                    x=[x[0], x[-1]],
                    y=[start, end],
                    mode="lines",
                    name="Theil–Sen trend",
                    line={"color": TREND_COLOUR, "dash": "dot", "width": 2},
                    hovertemplate=(
                        f"trend {p.perf.get('trend')}: {slope:+.4g} {unit}/h<extra></extra>"
                    ),
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


def bottleneck_chart(report: Mapping[str, Any]) -> Chart:
    title = "Bottleneck ranking by urgency"
    bottlenecks = [as_dict(b) for b in as_list(report.get("bottlenecks"))]
    ranked = [b for b in bottlenecks if _finite(b.get("optimization_urgency")) is not None]
    if not ranked:
        why = (
            "No chart: no bottleneck — every judged metric meets its target."
            if "bottlenecks" in report
            else "No chart: the result has no bottleneck ranking."
        )
        return Chart("bottlenecks", title, None, absent=why)
    labels = [f"{i}. {_t(b.get('metric'))}" for i, b in enumerate(ranked, 1)]
    fig = go.Figure()
    for severity in (*SEVERITY_COLOURS, None):
        rows = [
            (label, b)
            for label, b in zip(labels, ranked, strict=True)
            if (b.get("severity") if b.get("severity") in SEVERITY_COLOURS else None) == severity
        ]
        if not rows:
            continue
        fig.add_trace(
            go.Bar(
                x=[float(b["optimization_urgency"]) for _, b in rows],
                y=[label for label, _ in rows],
                orientation="h",
                name=str(severity or "other"),
                marker={"color": SEVERITY_COLOURS.get(str(severity), "#999999")},
                text=[
                    f"{_t(b.get('bottleneck_type') or '')} · {num(b['optimization_urgency'])}"
                    for _, b in rows
                ],
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


def roadmap_chart(report: Mapping[str, Any]) -> Chart:
    title = "Phased roadmap: strategic score per plan item"
    plan = [as_dict(e) for e in as_list(report.get("prioritized_plan"))]
    plan = [e for e in plan if _finite(e.get("backend_strategic_score")) is not None]
    if not plan:
        why = (
            "No chart: the plan is empty (nothing misses its target)."
            if is_planning(report)
            else "No chart: the result holds no plan."
        )
        return Chart("roadmap", title, None, absent=why)
    timeline = as_dict(report.get("timeline_estimate"))
    timing = as_dict(timeline.get("phases"))
    weeks = source_label(sources_of(timeline).get("weeks"))
    labels = [
        f"{i}. {_t(e.get('approach'))} → {_t(e.get('target'))}" for i, e in enumerate(plan, 1)
    ]
    phases = [p for p in PHASE_ORDER if any(e.get("implementation_phase") == p for e in plan)]
    phases += sorted({str(e.get("implementation_phase")) for e in plan} - set(phases))
    fig = go.Figure()
    for phase in phases:
        rows = [
            (label, e)
            for label, e in zip(labels, plan, strict=True)
            if str(e.get("implementation_phase")) == phase
        ]
        t = as_dict(timing.get(phase))
        name = _t(phase.replace("_", " "))
        if t:
            name += f" (weeks {num(t.get('start_week'))}–{num(t.get('end_week'))}, {weeks})"
        fig.add_trace(
            go.Bar(
                x=[float(e["backend_strategic_score"]) for _, e in rows],
                y=[label for label, _ in rows],
                orientation="h",
                name=name,
                marker={"color": PHASE_COLOURS.get(phase, "#999999")},
                text=[f"{float(e['backend_strategic_score']):.1f}" for _, e in rows],
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
    out: list[float | None] = []
    for d in days:
        try:
            value = base * (1.0 + pct_per_day / 100.0) ** d
        except OverflowError:
            value = math.inf
        out.append(value if math.isfinite(value) and value > 0.0 else None)
    return out


def _capacity_absent(projections: Mapping[str, Any]) -> str | None:
    """Why there is no demand projection to draw (None: there is one)."""
    if not projections:
        return "No chart: the result has no scalability projections."
    base = as_dict(projections.get("current_baseline"))
    rate = as_dict(base.get("api_requests_per_s"))
    if _finite(rate.get("value")) is None:
        return f"No chart: no request-rate baseline ({rate.get('reason') or 'not in the result'})."
    growth = as_dict(base.get("demand_growth"))
    for key in ("3_months", "6_months"):
        projected = as_dict(as_dict(projections.get(key)).get("api_requests_per_s"))
        if _finite(projected.get("expected")) is None:
            reason = projected.get("reason") or growth.get("reason") or "not in the result"
            return f"No chart: the capacity projection needs a demand projection — {reason}."
    if _finite(growth.get("growth_pct_per_day")) is None:
        return f"No chart: demand growth unknown ({growth.get('reason') or 'not in the result'})."
    return None


def capacity_chart(report: Mapping[str, Any]) -> Chart:
    title = "Capacity: demand growth against the throughput ceiling"
    projections = as_dict(report.get("scalability_projections"))
    absent = _capacity_absent(projections)
    if absent is not None:
        return Chart("capacity", title, None, absent=absent)
    base = as_dict(projections["current_baseline"])
    now = to_datetime(as_dict(base.get("window")).get("end"))
    if now is None:
        return Chart("capacity", title, None, absent="No chart: the window's end is unknown.")
    rate = float(base["api_requests_per_s"]["value"])
    growth = as_dict(base["demand_growth"])
    g = float(growth["growth_pct_per_day"])
    ci = [_finite(c) for c in as_list(growth.get("ci95_pct_per_day"))]
    horizons = {k: as_dict(projections[k]) for k in ("3_months", "6_months")}
    last = max(_days(h) for h in horizons.values()) or 182.0
    days = sorted({*(float(d) for d in range(0, int(last) + 1, 7)), last})
    days += [_days(h) for h in horizons.values()]
    days = sorted(set(days))
    x = [_x((now + timedelta(days=d)).timestamp()) for d in days]
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
    fig.add_trace(
        go.Scatter(
            x=[x[i] for i in keep],
            y=[expected[i] for i in keep],
            mode="lines",
            name=f"expected demand ({g:+.3g} %/day, {source_label(growth)})",
            line={"color": OK_COLOUR, "width": 2},
            hovertemplate="%{x}<br>%{y:.4g} req/s<extra></extra>",
        )
    )
    points = [("now", 0.0, {"expected": rate})] + [
        (k.replace("_", " "), _days(h), as_dict(h.get("api_requests_per_s")))
        for k, h in horizons.items()
    ]
    fig.add_trace(
        go.Scatter(
            x=[_x((now + timedelta(days=d)).timestamp()) for _, d, _ in points],
            y=[_finite(p.get("expected")) for _, _, p in points],
            mode="markers+text",
            text=[f"{label}: {num(p['expected'], 4)}" for label, _, p in points],
            textposition=["top right"] + ["top left"] * (len(points) - 1),
            name=f"report figures (req/s, {source_label(base['api_requests_per_s'])})",
            marker={"color": OK_COLOUR, "size": 9},
            hovertemplate="%{text} req/s<extra></extra>",
        )
    )
    model = as_dict(base.get("capacity_model"))
    ceiling = _finite(model.get("ceiling"))
    after = as_dict(horizons["3_months"].get("utilisation"))
    optimised = _finite(after.get("optimised_ceiling_req_per_s"))
    after_source = source_label(sources_of(after).get("optimised_ceiling_req_per_s"))
    for level, name, dash in (
        (
            ceiling,
            f"throughput ceiling ({_t(model.get('model'))}): {num(ceiling, 4)} req/s "
            f"[{source_label(model)}]",
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
    meets = _finite(as_dict(base.get("utilisation")).get("days_to_ceiling"))
    if meets is not None:
        marks.append((meets, f"demand meets the ceiling (+{meets:.3g} d)"))
    for t in map(as_dict, as_list(projections.get("scaling_triggers"))):
        ahead = _finite(t.get("days_from_now"))
        if t.get("status") == "expected" and ahead is not None:
            marks.append(
                (
                    ahead,
                    f"{_t(t.get('metric'))} reaches {num(t.get('threshold'), 4)} (+{ahead:.3g} d)",
                )
            )
        elif t.get("status") == "already_crossed":
            marks.append((0.0, f"{_t(t.get('metric'))} already past {num(t.get('threshold'), 4)}"))
    beyond = [label for ahead, label in marks if not 0.0 <= ahead <= last]
    marks = [(ahead, label) for ahead, label in marks if 0.0 <= ahead <= last]
    for k, (ahead, label) in enumerate(sorted(marks)):
        at = _x((now + timedelta(days=ahead)).timestamp())
        fig.add_shape(
            type="line",
            x0=at,
            x1=at,
            yref="paper",
            y0=0,
            y1=1,
            line={"color": BAD_COLOUR, "dash": "dot", "width": 1.5},
        )
        fig.add_annotation(
            x=at,
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
    note = growth.get("note")
    if note:
        caption += f" Note: {note}."
    return Chart("capacity", title, fig, caption=caption)


def charts(report: Mapping[str, Any]) -> dict[str, Chart]:
    """Every chart that applies to ``report`` by the section it belongs to."""
    builders = {"metrics": metric_chart, "bottlenecks": bottleneck_chart}
    if is_planning(report):
        builders |= {"roadmap": roadmap_chart, "capacity": capacity_chart}
    return {key: _guarded(key, build, report) for key, build in builders.items()}


def _guarded(key: str, build: Callable[[Mapping[str, Any]], Chart], report: Any) -> Chart:
    """A chart, or why a free-form part of the report no agent would write cannot be drawn."""
    try:
        return build(report)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        return Chart(key, key.capitalize(), None, absent=f"No chart: the result is odd: {exc!r}")
