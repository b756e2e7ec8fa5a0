"""One monitor run's judgement of the live data: pure, plain data in and out.

The runtime's monitor loads the samples, the directive and the stored state, calls
``judge_live`` off the event loop (it is CPU-bound: the full assessment, SLO burn rates
and trigger dates over days of samples), then publishes what comes out. Nothing here
reads a clock or the bus: ``ctx.now`` and ``now`` are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.analysis.catalog import CATALOG
from agent.analysis.causes import DEPENDENCIES
from agent.analysis.judge import Judgement
from agent.analysis.series import parse_window
from agent.analysis.slo import slo_status
from agent.monitoring.episodes import AlertDraft, MonitorState, evaluate
from agent.monitoring.rules import MonitorConfig, MonitorInputs
from agent.monitoring.triggers import SCALING_TRIGGERS
from agent.planning.capacity import scaling_crossings
from agent.store import MetricStore
from agent.strategies.base import TaskContext
from agent.strategies.domain import (
    SLO_KINDS,
    Assessment,
    DomainScope,
    assess,
    bottlenecks_of,
    data_quality,
)
from protocols import AnalysisReport
from protocols.messages import CauseLink, SloStatus
from protocols.reports import Findings, TriggerCrossing

SCOPE = DomainScope(task_type="monitor", primary=tuple(CATALOG))
SLO_WINDOW_S = 3 * 86_400.0
"""Burn rates look back up to three days (the SRE workbook's slowest rule)."""
STRUCTURAL_LINK = 0.4
"""Score of a link by the dependency table alone, between metrics in trouble right now.

Not a weight of the cause ranking (``causes.W_PRIOR`` adds 0.2 to evidence there): it is
the monitor's own, chosen below the evidence threshold (0.6) so that an evidenced link
always outranks it when alerts are grouped under their cause."""


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """What a monitor run judges besides the task context: from the settings, fixed."""

    rules: MonitorConfig
    interval_s: float
    """Seconds between runs: a shift or spike within the last two is "right now"."""
    trigger_window: str = "7d"
    scaling_triggers: Mapping[str, float] = field(default_factory=dict)
    """Configured triggers, over ``SCALING_TRIGGERS``."""

    @property
    def history_s(self) -> float:
        """How far back a run reads: the SLO's 3 days or the triggers' window if longer."""
        return max(SLO_WINDOW_S, parse_window(self.trigger_window))


@dataclass(frozen=True, slots=True)
class LiveJudgement:
    alerts: list[AlertDraft]
    state: MonitorState
    report: AnalysisReport


def judge_live(
    ctx: TaskContext, state: MonitorState, *, now: float, config: LiveConfig, skipped_runs: int
) -> LiveJudgement:
    """Assess ``ctx.store`` at ``now``, evaluate the rules against ``state``, and report.

    Raises ``AgentError`` (``InsufficientData``) when there is nothing to assess.
    """
    store = ctx.store if ctx.store is not None else MetricStore()
    a = assess(ctx, SCOPE)
    inputs = MonitorInputs(
        judged=a.judged,
        slo=slo_statuses(store, a.judged, now),
        change_points=a.change_points,
        outliers=a.outliers,
        links=[*a.evidenced, *structural_links(a, since=now - 2 * config.interval_s)],
        triggers=trigger_crossings(
            store,
            {**SCALING_TRIGGERS, **config.scaling_triggers},
            window_s=parse_window(config.trigger_window),
            now=now,
            runway_days=config.rules.runway_days,
        ),
    )
    drafts, next_state = evaluate(inputs, state, now=now, config=config.rules)
    report = AnalysisReport(
        analysis_type="monitor",
        timestamp=ctx.now,
        window=ctx.params.window or ctx.default_window,
        performance={n: j.to_performance() for n, j in a.judged.items()},
        bottlenecks=bottlenecks_of(a),
        recommendations=[],
        data_quality=data_quality(ctx, SCOPE, a),
        change_points=a.change_points,
        outliers=a.outliers,
        slo=dict(inputs.slo),
        root_causes=a.links,
        findings=Findings(alerts=[d.alert_id for d in drafts], skipped_runs=skipped_runs),
    )
    return LiveJudgement(alerts=drafts, state=next_state, report=report)


def structural_links(a: Assessment, *, since: float) -> list[CauseLink]:
    """Links by the dependency table alone between metrics in trouble right now.

    Breached metrics are linked by the cause ranking; a symptom that only shifted or
    spiked since ``since`` (an anomaly, not yet a breach) is linked to its troubled
    dependencies here, so the alerts of one incident start as one problem.
    """
    shifted = {
        m
        for m, points in a.change_points.items()
        if any(p.worse and p.at.timestamp() >= since for p in points)
    }
    spiked = {m for m, found in a.outliers.items() if any(o.at.timestamp() >= since for o in found)}
    breached = {m for m, j in a.judged.items() if not j.meets_target}
    troubled = shifted | spiked | breached
    return [
        CauseLink(
            symptom=symptom,
            cause=cause,
            score=STRUCTURAL_LINK,
            cause_onset=None,
            symptom_onset=None,
            correlation=None,
        )
        for symptom in sorted(troubled)
        for cause in DEPENDENCIES.get(symptom, ())
        if cause in troubled
    ]


def slo_statuses(
    store: MetricStore, judged: Mapping[str, Judgement], now: float
) -> dict[str, SloStatus]:
    """The error budget and burn rates of every judged SLO metric over ``SLO_WINDOW_S``."""
    out = {}
    for name, kind in SLO_KINDS.items():
        if name not in judged:
            continue
        series = store.merged(name, window_s=SLO_WINDOW_S, end=now)
        status = slo_status(series, kind=kind, target=judged[name].target, window_s=SLO_WINDOW_S)
        if status is not None:
            out[name] = status
    return out


def trigger_crossings(
    store: MetricStore,
    triggers: Mapping[str, float],
    *,
    window_s: float,
    now: float,
    runway_days: float,
) -> list[TriggerCrossing]:
    """When each catalog metric with samples is expected to cross its scaling trigger
    (``scaling_crossings``, the plan's own, up to now; a metric without samples says
    nothing)."""
    crossings = scaling_crossings(
        store,
        {metric: threshold for metric, threshold in triggers.items() if metric in CATALOG},
        window_s=window_s,
        end=now,
        now=now,
        horizon_days=runway_days,
    )
    return [c for c in crossings if c.samples > 0]
