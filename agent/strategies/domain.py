"""The one analysis pipeline every domain task type runs, parameterised by its scope.

A strategy module names its scope (the domain's own metrics, the infrastructure that
bears on them, any extra domain analysis) and calls ``analyze_domain``. Steps, all pure:
load the task's samples into a metric store, judge every catalog metric with data in the
window, find change points, outliers and SLO burn rates, read request patterns from
labelled traffic, rank likely causes among the breached metrics, rank bottlenecks so a
cause comes before its symptoms, and recommend from the playbook.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from agent.analysis.bottlenecks import Finding, find_bottlenecks, fmt_duration
from agent.analysis.catalog import AUXILIARY, CATALOG, DERIVED_RATES, resolve_target
from agent.analysis.causes import CauseInput, caused_by, rank_causes
from agent.analysis.changepoints import MIN_CHANGE_SAMPLES, find_outliers
from agent.analysis.judge import Judgement, Measurement, judge, measure
from agent.analysis.patterns import request_patterns
from agent.analysis.series import Series, bucketize, p95, parse_window, summed_counter_rate
from agent.analysis.slo import slo_status
from agent.analysis.trend import MIN_SAMPLES, control_false_discoveries
from agent.analysis.validity import screen, unit_suspicion
from agent.errors import InsufficientData
from agent.learning.calibration import calibration_from
from agent.learning.state import sinking
from agent.planning.playbook import CONDITIONS, LOAD_METRICS
from agent.planning.recommend import Calibration, recommend
from agent.store import MetricStore, store_from_params
from agent.strategies.base import TaskContext
from protocols.reports import (
    AnalysisReport,
    Bottleneck,
    CauseLink,
    ChangePoint,
    DataQuality,
    Findings,
    History,
    MeasuredMetric,
    MetricSeries,
    Outlier,
    Rejected,
    RequestPatterns,
    Skipped,
    SloStatus,
)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DomainInput:
    """What a domain's extra analysis may read: the windowed store and the judged metrics."""

    store: MetricStore
    window_s: float
    end: float
    judged: Mapping[str, Judgement]


Extra = Callable[[DomainInput], Findings]


@dataclass(frozen=True, slots=True)
class DomainScope:
    task_type: str
    primary: tuple[str, ...]
    """The domain's own metrics: with no data for any of them the task is ``insufficient_data``."""
    supporting: tuple[str, ...] = ()
    """Infrastructure metrics that bear on the domain, judged when present."""
    findings: Extra | None = None
    """The domain's own findings (WebSocket capacity, the cache's state): a pure function."""

    @property
    def metrics(self) -> tuple[str, ...]:
        return (*self.primary, *(m for m in self.supporting if m not in self.primary))


SLO_KINDS: Mapping[str, Literal["availability", "error_rate"]] = {
    "api_availability": "availability",
    "error_rate": "error_rate",
}
"""Metrics also judged as SLOs (error budget and multi-window burn rates)."""
CAUSE_EVIDENCE = 0.6
"""A link ranks a cause above its symptom (and takes the symptom's recommendations) only
with evidence from the series themselves: the dependency table alone scores at most 0.2,
a clearly earlier breach adds 0.5, correlation up to 0.3 (``analysis.causes``). Weaker
links are still listed in ``root_causes`` with their score, as possibilities."""
RATE_BUCKETS = 120
SERIES_POINTS = 60
"""A report's chart series: at most 60 bucket medians per metric, so results stay small."""


def summed_rate(counters: Mapping[Labels, Series], start: float, end: float) -> Series:
    """Total per-second rate of several counters on a common time grid (resets handled)."""
    edges = np.linspace(start, end, RATE_BUCKETS + 1)
    total = summed_counter_rate(counters, edges)
    seen = np.isfinite(total)
    centres = (edges[:-1] + edges[1:]) / 2
    return Series(ts=centres[seen], values=total[seen])


@dataclass(frozen=True, slots=True)
class MetricRead:
    """One metric's samples for the window as read from the store, the impossible ones out."""

    series: Series
    statistic: str | None = None
    """What the samples already are when not the catalog's statistic (``rate``, ``mean``)."""
    statistic_note: str | None = None
    rejected: int = 0
    rejected_reason: str | None = None


def _metric_series(store: MetricStore, name: str, window_s: float, end: float) -> MetricRead | None:
    """A metric's samples in the window (all label sets merged), a scalar, or a derived rate.

    Samples its unit makes impossible are left out and counted (``validity.screen``); a
    metric left with none is read as having no data, its rejections still counted.
    """
    read: MetricRead | None = None
    if name in store.metrics():
        series = store.merged(name, window_s=window_s, end=end)
        if len(series):
            statistic, note = store.statistic_of(name) or (None, None)
            read = MetricRead(series, statistic, note)
    counter = DERIVED_RATES.get(name)
    if read is None and counter is not None and counter in store.metrics():
        counters = store.select(counter, window_s=window_s, end=end)
        rate = summed_rate(counters, end - window_s, end)
        if len(rate):
            read = MetricRead(rate, "rate")
    scalar = store.scalar(name)
    if read is None and scalar is not None:
        one = Series(ts=np.array([math.nan]), values=np.array([scalar]), scalar=True)
        read = MetricRead(one)
    if read is None:
        return None
    screened = screen(CATALOG[name], read.series)
    return dataclasses.replace(
        read,
        series=screened.series,
        rejected=screened.rejected,
        rejected_reason=screened.reason,
    )


@dataclass(frozen=True, slots=True)
class Judged:
    """Every catalog metric with data: judged against a target, or only measured."""

    judged: dict[str, Judgement] = field(default_factory=dict)
    measured: dict[str, Measurement] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, Rejected] = field(default_factory=dict)
    """Metric → ``{"count": n, "reason": …}`` of the impossible samples left out."""


def _judge_all(ctx: TaskContext, store: MetricStore, window_s: float, end: float) -> Judged:
    """Judge (or measure) every metric with data, then decide all trends together.

    Trends are re-decided on their Benjamini–Hochberg q across the report
    (``control_false_discoveries``): twenty tests at p < 0.05 would otherwise put a
    false trend in most healthy reports.
    """
    out = Judged()
    for name, spec in CATALOG.items():
        read = _metric_series(store, name, window_s, end)
        if read is None:
            continue
        if read.rejected:
            out.rejected[name] = Rejected(count=read.rejected, reason=read.rejected_reason)
        series = read.series
        if len(series) == 0:
            continue
        out.counts[name] = len(series)
        out.series[name] = series
        target, source = resolve_target(spec, *targets_of(ctx))
        if target is None:
            out.measured[name] = measure(spec, series, statistic=read.statistic)
            continue
        suspicion = unit_suspicion(spec, series, target)
        j = judge(
            spec,
            series,
            target=target,
            target_source=source,
            statistic=read.statistic,
            flags=(suspicion,) if suspicion else (),
        )
        out.judged[name] = dataclasses.replace(
            j, statistic_note=read.statistic_note, rejected=read.rejected
        )
    trends = {name: j.trend for name, j in out.judged.items()}
    trends |= {name: m.trend for name, m in out.measured.items()}
    decided = control_false_discoveries(trends)
    for name, j in out.judged.items():
        out.judged[name] = dataclasses.replace(j, trend=decided[name])
    for name, m in out.measured.items():
        out.measured[name] = dataclasses.replace(m, trend=decided[name])
    return out


def _ranked(findings: list[Finding], links: list[CauseLink], breached: set[str]) -> list[Finding]:
    """Findings in urgency order, except that a breached cause comes before its symptoms."""
    by_name = {f.metric: f for f in findings}
    ranked: list[Finding] = []
    placed: set[str] = set()

    def place(name: str, visiting: set[str]) -> None:
        if name in placed or name in visiting or name not in by_name:
            return
        visiting.add(name)
        for cause in caused_by(links, name):
            if cause in breached:
                place(cause, visiting)
        ranked.append(by_name[name])
        placed.add(name)

    for finding in findings:
        place(finding.metric, set())
    return ranked


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything one pass over the data found: what a report or a plan is made from."""

    window: str
    window_s: float
    end: float
    store: MetricStore
    judged: Mapping[str, Judgement]
    measured: Mapping[str, Measurement]
    """Metrics with data but no target (a throughput nobody set one for): no verdict."""
    counts: Mapping[str, int]
    rejected: Mapping[str, Rejected]
    """Impossible samples left out, per metric (count and reason)."""
    findings: list[Finding]
    """Bottlenecks, most urgent first, a cause always before its symptoms."""
    symptoms: frozenset[str]
    """Findings whose cause is another finding: the plan fixes the cause."""
    links: list[CauseLink]
    evidenced: list[CauseLink]
    change_points: dict[str, list[ChangePoint]]
    outliers: dict[str, list[Outlier]]
    slo: dict[str, SloStatus]
    series: Mapping[str, Series]
    """The windowed samples each metric was judged on (a scalar is a one-sample series)."""


def report_series(a: Assessment) -> dict[str, MetricSeries]:
    """Each judged metric with samples over time as at most ``SERIES_POINTS`` bucket medians.

    ``bucketize`` of the very samples the judge used (the trend's medians, coarser);
    bare numbers have no time axis and are left out.
    """
    out: dict[str, MetricSeries] = {}
    for name, series in a.series.items():
        if series.scalar or len(series) == 0:
            continue
        points = bucketize(series, SERIES_POINTS)
        width = float(series.ts[-1] - series.ts[0]) / SERIES_POINTS if points is not series else 0.0
        out[name] = MetricSeries(
            bucket_s=round(width, 3) if math.isfinite(width) else 0.0,
            timestamps=[round(t, 3) for t in points.ts.tolist()],
            values=[float(f"{v:.6g}") for v in points.values.tolist()],
        )
    return out


def signals_of(a: Assessment) -> dict[str, bool | None]:
    """Each playbook condition: seen (True), measured and absent (False), or not measured.

    A condition is seen when its series' p95 over the window reaches ``seen_at``: pool
    pressure that shows at the busy end of the window is pressure.
    """
    out: dict[str, bool | None] = {}
    for key, condition in CONDITIONS.items():
        series = a.store.merged(condition.metric, window_s=a.window_s, end=a.end)
        out[key] = None if len(series) == 0 else p95(series.values) >= condition.seen_at
    return out


def load_state(a: Assessment) -> dict[str, float]:
    """The window mean of every utilisation an approach relieves (``Approach.load``): the
    state the learning model reads besides the target's own miss."""
    out: dict[str, float] = {}
    for metric in LOAD_METRICS:
        series = a.store.merged(metric, window_s=a.window_s, end=a.end)
        if len(series):
            out[metric] = float(np.mean(series.values))
    return out


def calibration_of(ctx: TaskContext, a: Assessment) -> Calibration:
    """Expected gains in the state ``a`` found: the playbook's priors moved by what was
    verified in similar states (the priors alone before that)."""
    summaries = ctx.learning.summaries if ctx.learning is not None else {}
    return calibration_from(summaries, load_state(a), ctx.params.service)


def sinking_of(ctx: TaskContext) -> dict[tuple[str, str], str]:
    """(approach, metric) pairs Hephaestus reported infeasible, with the reason given."""
    return sinking(ctx.learning.infeasible) if ctx.learning is not None else {}


def targets_of(ctx: TaskContext) -> tuple[Mapping[str, float], Mapping[str, float]]:
    """(task targets, standing targets): a directive's targets override the configuration's."""
    standing = dict(ctx.target_overrides)
    if ctx.directive is not None:
        standing |= ctx.directive.targets
    return ctx.params.targets, standing


def assess(ctx: TaskContext, scope: DomainScope) -> Assessment:
    """Judge every metric with data, find change points, SLO burn, causes and bottlenecks."""
    params = ctx.params
    window_text = params.window or ctx.default_window
    window_s = parse_window(window_text)
    store = ctx.store if ctx.store is not None else store_from_params(params)
    newest = store.newest_ts()
    end = newest if newest is not None else 0.0

    j = _judge_all(ctx, store, window_s, end)
    judged, series_by_metric, counts = j.judged, j.series, j.counts
    if not any(name in judged or name in j.measured for name in scope.primary):
        raise InsufficientData(
            f"no samples for any {scope.task_type} metric ({', '.join(scope.primary)}) "
            f"in the last {window_text}",
            counts={**counts, **{name: counts.get(name, 0) for name in scope.metrics}},
        )

    change_points = {
        name: list(jd.change_points) for name, jd in judged.items() if jd.change_points
    }
    change_points |= {
        name: list(m.change_points) for name, m in j.measured.items() if m.change_points
    }
    outliers: dict[str, list[Outlier]] = {}
    for name, series in series_by_metric.items():
        if len(series) < MIN_CHANGE_SAMPLES or series.scalar:
            continue
        spikes = find_outliers(series)
        if spikes:
            outliers[name] = spikes
    slo: dict[str, SloStatus] = {}
    for name, kind in SLO_KINDS.items():
        if name in judged:
            status = slo_status(
                series_by_metric[name], kind=kind, target=judged[name].target, window_s=window_s
            )
            if status is not None:
                slo[name] = status

    # A metric whose unit looks wrong is shown, flagged, and kept out of every ranking.
    trusted = {name: jd for name, jd in judged.items() if not jd.flags}
    breached = {name for name, jd in trusted.items() if not jd.meets_target}
    links = rank_causes(
        {
            name: CauseInput(
                spec=CATALOG[name],
                series=series_by_metric[name],
                target=jd.target,
                breached=name in breached,
                shifts=jd.change_points,
            )
            for name, jd in trusted.items()
        }
    )
    evidenced = [link for link in links if link.score >= CAUSE_EVIDENCE]
    findings = _ranked(find_bottlenecks(trusted.values()), evidenced, breached)
    symptoms = frozenset(
        f.metric for f in findings if any(c in breached for c in caused_by(evidenced, f.metric))
    )
    return Assessment(
        window=window_text,
        window_s=window_s,
        end=end,
        store=store,
        judged=judged,
        measured=j.measured,
        counts=counts,
        rejected=j.rejected,
        findings=findings,
        symptoms=symptoms,
        links=links,
        evidenced=evidenced,
        change_points=change_points,
        outliers=outliers,
        slo=slo,
        series=series_by_metric,
    )


HISTORY_SHORTFALL = 0.9
"""A metric judged over less than this share of its window gets a sentence saying so."""


def _history(a: Assessment) -> History:
    """How much of the window each metric's samples actually cover, and why less.

    A live store holds a bounded number of samples per series; a week asked of a store
    that keeps 2.3 days is judged over 2.3 days, and the report must say so in words.
    """
    spans = {
        name: float(s.ts[-1] - s.ts[0])
        for name, s in a.series.items()
        if not s.scalar and len(s) > 1
    }
    short = {name: span for name, span in spans.items() if span < HISTORY_SHORTFALL * a.window_s}
    if not short:
        return History(window_s=a.window_s)
    stats = a.store.stats()
    dropped = int(stats.get("dropped_full", 0)) + int(stats.get("pruned_old", 0))
    why = (
        f"the store kept at most {a.store.max_samples_per_series:,} samples per series and "
        f"dropped {dropped:,} older ones"
        if dropped
        else "no older samples were given"
    )
    shortest = min(short.values())
    return History(
        window_s=a.window_s,
        short_metrics={name: round(span, 1) for name, span in sorted(short.items())},
        note=f"{len(short)} metric(s) judged over less than the {fmt_duration(a.window_s)} "
        f"asked for (the shortest over {fmt_duration(shortest)}): {why}",
    )


def data_quality(ctx: TaskContext, scope: DomainScope, a: Assessment) -> DataQuality:
    """What the analysis could not use, and why: unknown names, missing metrics, thin data,
    impossible samples, units that look wrong, statistics that stood in for others."""
    store, judged = a.store, a.judged
    newest = store.newest_ts()
    known = {*judged, *a.measured}
    return DataQuality(
        samples=dict(a.counts),
        window_end=datetime.fromtimestamp(a.end, UTC).isoformat() if newest is not None else None,
        history=_history(a),
        rejected_samples=dict(sorted(a.rejected.items())),
        unit_suspects={name: j.flags[0] for name, j in sorted(judged.items()) if j.flags},
        statistic_notes={
            name: j.statistic_note for name, j in sorted(judged.items()) if j.statistic_note
        },
        unjudged_metrics=dict.fromkeys(sorted(a.measured), UNJUDGED_REASON),
        unknown_metrics=sorted(
            m
            for m in {*store.metrics(), *store.scalar_metrics()}
            if m not in CATALOG and m not in AUXILIARY
        ),
        auxiliary_metrics=sorted(m for m in store.metrics() if m in AUXILIARY),
        out_of_scope_metrics=sorted(name for name in known if name not in scope.metrics),
        missing_metrics=[name for name in scope.metrics if name not in known],
        too_few_for_trend={
            name: j.samples for name, j in judged.items() if j.trend.trend == "unknown"
        },
        min_trend_samples=MIN_SAMPLES,
        unknown_targets=sorted(name for name in ctx.params.targets if name not in CATALOG),
        store=store.stats(),
        sources=store.sources(),
        source_report={k: dict(v) for k, v in ctx.source_report.items()},
        infeasible_skipped=[
            Skipped(approach=approach, metric=metric, reason=reason)
            for (approach, metric), reason in sorted(sinking_of(ctx).items())
            if any(f.metric == metric for f in a.findings)
        ],
    )


UNJUDGED_REASON = (
    "no target set: a throughput is judged only against a target you configure "
    "(task, directive or settings); capacity planning reads it as demand"
)


def measured_of(a: Assessment) -> dict[str, MeasuredMetric]:
    """The report's ``measured``: metrics with data and no target, with why."""
    return {name: m.to_measured(UNJUDGED_REASON) for name, m in a.measured.items()}


def bottlenecks_of(a: Assessment) -> list[Bottleneck]:
    breached = {name for name, j in a.judged.items() if not j.meets_target}
    return [_bottleneck(f, caused_by(a.evidenced, f.metric), breached) for f in a.findings]


def analyze_domain(ctx: TaskContext, scope: DomainScope) -> AnalysisReport:
    """Judge, rank and recommend for one domain; ``InsufficientData`` when it has no data."""
    a = assess(ctx, scope)
    extras = DomainInput(store=a.store, window_s=a.window_s, end=a.end, judged=a.judged)
    return AnalysisReport(
        analysis_type=scope.task_type,
        timestamp=ctx.now,
        window=a.window,
        performance={name: j.to_performance() for name, j in a.judged.items()},
        bottlenecks=bottlenecks_of(a),
        recommendations=recommend(
            ctx.task_id,
            a.findings,
            symptoms=a.symptoms,
            calibrate=calibration_of(ctx, a),
            sinking=sinking_of(ctx),
            signals=signals_of(a),
        ),
        data_quality=data_quality(ctx, scope, a),
        change_points=a.change_points,
        outliers=a.outliers,
        slo=a.slo,
        request_patterns=_patterns(a.store, a.window_s, a.end),
        root_causes=a.links,
        findings=scope.findings(extras) if scope.findings is not None else Findings(),
        directive_id=ctx.directive.directive_id if ctx.directive is not None else None,
        series=report_series(a),
        measured=measured_of(a),
    )


def _bottleneck(finding: Finding, causes: list[str], breached: set[str]) -> Bottleneck:
    base = finding.to_bottleneck()
    causes = [c for c in causes if c in breached]
    if not causes:
        return base
    return Bottleneck(
        metric=base.metric,
        bottleneck_type=base.bottleneck_type,
        severity=base.severity,
        optimization_urgency=base.optimization_urgency,
        evidence=f"{base.evidence}; likely a symptom of {', '.join(causes)}",
        caused_by=causes,
    )


def _patterns(store: MetricStore, window_s: float, end: float) -> RequestPatterns | None:
    """Request patterns from ``http_requests_total`` counters or ``http_request_rate`` gauges."""
    latencies = store.select("api_response_time", window_s=window_s, end=end)
    latencies |= store.select("api_response_time_by_endpoint", window_s=window_s, end=end)
    labelled_latency = {k: s for k, s in latencies.items() if k}
    counters = store.select("http_requests_total", window_s=window_s, end=end)
    if counters:
        return request_patterns(counters, labelled_latency, requests_are_counters=True)
    rates = store.select("http_request_rate", window_s=window_s, end=end)
    if rates:
        return request_patterns(rates, labelled_latency, requests_are_counters=False)
    return None
