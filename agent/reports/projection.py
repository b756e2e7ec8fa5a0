"""The capacity projection of a plan: the baseline measured now (request rate, connections,
users), the fitted throughput ceiling, demand growth and runway, the 3- and 6-month
projections, and when each scaling trigger is expected to be crossed."""

from __future__ import annotations

from agent.reports.document import Block, Bullets, Paragraph, Section, Subheading, table
from agent.reports.format import (
    NONE,
    num,
    share,
    signed,
    source_label,
    sourced,
    tagged,
    text,
    when,
)
from protocols.reports import (
    CapacityModel,
    DemandGrowth,
    Figure,
    HorizonProjection,
    Projected,
    Runway,
    ScalabilityProjections,
    TriggerCrossing,
)


def figure_cell(f: Figure) -> str:
    """A measured figure as ``value (basis) [source]``, or ``— (reason)``."""
    if f.value is None:
        return f"{NONE} ({text(f.reason)})" if f.reason else NONE
    shown = num(f.value)
    return tagged(f"{shown} ({text(f.basis)})" if f.basis else shown, sourced(f.source, f.basis))


def projected_cell(p: Projected) -> str:
    """A projected figure as ``expected (low–high) [source]``, or ``— (reason)``."""
    if p.expected is None:
        return f"{NONE} ({text(p.reason)})" if p.reason else NONE
    return tagged(f"{num(p.expected)} ({num(p.low)}–{num(p.high)})", sourced(p.source, p.basis))


def days_cell(t: TriggerCrossing) -> str:
    """``9.01 (7.2–13)``: days to a crossing with the range from the slope's interval."""
    days = num(t.days_from_now, 4)
    span = t.days_from_now_range
    if days == NONE or len(span) != 2 or span[0] is None:
        return days
    latest = num(span[1], 3) if span[1] is not None else "never"
    return f"{days} ({num(span[0], 3)}–{latest})"


def _model(model: CapacityModel) -> list[str]:
    source = source_label(sourced(model.source))
    items = [f"Model: {text(model.model)} — {text(model.reason)}"]
    if model.ceiling is not None:
        items.append(
            f"Throughput ceiling: {num(model.ceiling)} req/s"
            + (
                f" at {num(model.peak_concurrency)} concurrent"
                if model.peak_concurrency is not None
                else ""
            )
            + (
                " (beyond the highest load observed, "
                f"{num(model.max_observed_concurrency)}: extrapolated)"
                if model.peak_is_extrapolated
                else ""
            )
            + f" [{source}]"
        )
    else:
        items.append("Throughput ceiling: none found")
    items.append(
        f"λ {num(model.lambda_)}, σ {num(model.sigma)}, κ {num(model.kappa)}, "
        f"r² {num(model.r2)} over {num(model.points)} points [{source}]"
    )
    if model.concurrency_basis:
        items.append(f"Concurrency: {text(model.concurrency_basis)}")
    return items


def _growth(growth: DemandGrowth) -> Block:
    if growth.growth_pct_per_day is None:
        return Paragraph(f"Unknown: {text(growth.reason)}.")
    ci = growth.ci95_pct_per_day
    return Bullets(
        (
            f"{signed(growth.growth_pct_per_day)} % per day "
            f"(95 % interval {' to '.join(signed(c) for c in ci) or NONE} %), "
            f"r² {num(growth.r2)}, over {num(growth.span_days)} days, "
            f"{num(growth.points)} points "
            f"[{source_label(sourced(growth.source, growth.basis), basis=True)}]",
            text(growth.note),
        )
    )


def _runway(u: Runway) -> str:
    if u.reason is not None:
        return f"Utilisation of the ceiling: unknown ({text(u.reason)})"
    said = u.provenance
    line = (
        "Utilisation of the ceiling now: "
        f"{tagged(share(u.current_system), said.get('current_system'))}, "
        f"after the plan: {tagged(share(u.optimised_system), said.get('optimised_system'))}"
    )
    if u.runway_basis is not None:  # the growth is established: the days are dated
        line += (
            "; demand meets the ceiling in "
            f"{tagged(num(u.days_to_ceiling), said.get('days_to_ceiling'))} days ("
            f"{tagged(num(u.days_to_optimised_ceiling), said.get('days_to_optimised_ceiling'))}"
            " after the plan)"
        )
    return line


def _horizon(label: str, h: HorizonProjection) -> tuple[str, ...]:
    util = h.utilisation
    if util.reason is not None:
        used = f"{NONE} ({text(util.reason)})"
    else:
        now_ = util.current_system.expected if util.current_system is not None else None
        after = util.optimised_system.expected if util.optimised_system is not None else None
        sources = util.provenance
        used = (
            f"{tagged(share(now_), sources.get('current_system'))} now, "
            f"{tagged(share(after), sources.get('optimised_system'))} after the plan"
        )
    return (
        f"{label} ({num(h.days)} days)",
        projected_cell(h.api_requests_per_s),
        projected_cell(h.websocket_connections),
        projected_cell(h.concurrent_users),
        used,
    )


TRIGGER_COLUMNS = (
    "metric",
    "threshold",
    "current",
    "status",
    "slope/day",
    "expected at",
    "in days",
    "why",
    "source",
)


def capacity(projections: ScalabilityProjections) -> Section:
    base = projections.current_baseline
    blocks: list[Block] = [
        Paragraph(f"Observed from {when(base.window.start)} to {when(base.window.end)}."),
        Subheading("Current baseline"),
        table(
            ("figure", "value"),
            [
                ("API requests per second", figure_cell(base.api_requests_per_s)),
                ("WebSocket connections", figure_cell(base.websocket_connections)),
                ("Concurrent users", figure_cell(base.concurrent_users)),
            ],
        ),
        Subheading("Capacity model"),
        Bullets(tuple(_model(base.capacity_model))),
        Subheading("Demand growth"),
        _growth(base.demand_growth),
        Bullets((_runway(base.utilisation),)),
        Subheading("Projections (expected, 95 % interval)"),
        table(
            ("horizon", "req/s", "WebSocket connections", "concurrent users", "ceiling used"),
            [
                _horizon("3 months", projections.three_months),
                _horizon("6 months", projections.six_months),
            ],
        ),
    ]
    triggers = projections.scaling_triggers
    if triggers:
        blocks.append(Subheading("Scaling triggers"))
        blocks.append(
            table(
                TRIGGER_COLUMNS,
                [
                    (
                        text(t.metric),
                        num(t.threshold),
                        num(t.current),
                        text(t.status),
                        signed(t.slope_per_day),
                        when(t.expected_at),
                        days_cell(t),
                        text(t.reason),
                        NONE
                        if t.current is None
                        else source_label(sourced(t.source, t.basis), basis=True),
                    )
                    for t in triggers
                ],
                numeric=(1, 2, 4, 6),
                flagged=[
                    i for i, t in enumerate(triggers) if t.status in ("expected", "already_crossed")
                ],
            )
        )
    return Section("capacity", "Capacity projection", tuple(blocks))
