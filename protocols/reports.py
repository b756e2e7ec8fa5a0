"""The ``report`` of a completed ``task_result/v1``, typed to the last field.

Two kinds, told apart by ``kind`` (a msgspec tagged union): ``AnalysisReport`` for the six
analysis task types and the monitor's summary, ``PlanningReport`` for
``strategic_backend_planning``. A peer decodes ``TaskResult`` once and gets typed objects;
the renderers take them as they are. Unknown fields (from a newer agent) are ignored on
decode; a field a report does not have is left out of the JSON (``omit_defaults``), so
``null`` on the wire means "computed, and there is none" (docs/protocol.md).

Every figure that is not plainly measured carries its source (``Provenance``): measured
from samples, the playbook's prior, calibrated from verified outcomes, or assumed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from protocols.types import (
    Direction,
    Ident,
    Phase,
    RiskLevel,
    Severity,
    Source,
    Text,
    Timestamp,
    Trend,
)


class Part(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of a report's parts: a field at its default is left out of the JSON."""


class ChangePoint(Struct, frozen=True, kw_only=True):
    """A level shift found in a metric's window (PELT over per-bucket medians)."""

    at: Timestamp
    before: float
    """Median level of the segment before the shift."""
    after: float
    shift: float
    """``after - before`` in the metric's unit."""
    shift_pct: float | None
    """``shift`` relative to ``before`` in %, None when ``before`` is 0."""
    worse: bool
    """Whether the shift moved the metric the wrong way for its direction."""


class Outlier(Struct, frozen=True, kw_only=True):
    at: Timestamp
    value: float
    robust_z: float
    """Distance from the window's median in robust standard deviations (MAD × 1.4826)."""


class BurnRate(Struct, frozen=True, kw_only=True):
    """One multi-window burn-rate rule of the SRE workbook, evaluated on the samples."""

    long_window: str
    short_window: str
    threshold: float
    severity: Literal["page", "ticket"]
    long_burn: float | None
    """Burn rate over the long window; None when the data does not cover it."""
    short_burn: float | None
    firing: bool
    """Both windows at or above the threshold."""
    coverage: float
    """Share of the long window the samples cover (0–1)."""


class SloStatus(Struct, frozen=True, kw_only=True):
    """Availability or error rate judged as an SLO over the window."""

    objective_pct: float
    """The good-event objective, e.g. 99.9 (for error rate: 100 − target)."""
    bad_fraction: float
    """Observed share of bad events over the window (0–1)."""
    error_budget_remaining: float
    """1 − bad_fraction / allowed; below 0 when the budget is overspent."""
    burn_rates: list[BurnRate]


class PeakPeriod(Struct, frozen=True, kw_only=True):
    start_hour: Annotated[int, Meta(ge=0, le=23)]
    end_hour: Annotated[int, Meta(ge=0, le=23)]
    """Inclusive, UTC; a period may wrap past midnight."""
    mean_rate: float
    """Mean request rate (req/s) over the period."""
    ratio_to_mean: float


class TrafficShare(Struct, frozen=True, kw_only=True):
    name: str
    share_pct: float
    requests: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class RequestPatterns(Struct, frozen=True, kw_only=True):
    """Traffic over the window from labelled request-count and latency samples."""

    total_requests: float
    mean_rate: float
    peak_periods: list[PeakPeriod]
    endpoints: list[TrafficShare]
    regions: list[TrafficShare]


class CauseLink(Struct, frozen=True, kw_only=True):
    """Why a breached metric is thought to be a symptom of another one."""

    symptom: str
    cause: str
    score: float
    """0–1: earlier breach, lagged correlation and the dependency table combined."""
    cause_onset: Timestamp | None
    symptom_onset: Timestamp | None
    correlation: float | None
    """Rank correlation of the two metrics' badness, the symptom taken ``lag_s`` later."""
    lag_s: float | None = None
    """Seconds the cause's badness leads the symptom's at the best correlation (None: none)."""
    prior: float = 0.0
    """The dependency table's share of the score: + declared, − declared the other way."""
    basis: str = ""
    """What supported the link, e.g. ``onset 30 s earlier, ρ 0.52 at lag 30 s, no table entry``."""


class TrendDetail(Struct, frozen=True, kw_only=True):
    """How the trend was decided: Theil–Sen slope and the Mann–Kendall test."""

    method: str
    samples: int
    slope_per_hour: float | None = None
    """Change of the metric in its own unit per hour (Theil–Sen)."""
    kendall_tau: float | None = None
    p_value: float | None = None
    """Two-sided Mann–Kendall p, its variance corrected for lag-1 autocorrelation."""
    q_value: float | None = None
    """Benjamini–Hochberg q across the report's metrics: the verdict is decided on it."""
    slope_low_per_hour: float | None = None
    slope_high_per_hour: float | None = None
    """Sen's 95 % interval of the slope (autocorrelation-corrected)."""
    autocorrelation: float | None = None
    """Lag-1 autocorrelation of the residuals the test was corrected for."""
    variance_inflation: float | None = None
    """How much that autocorrelation widened the test's variance (n/n*, 1 = none)."""
    span_s: float | None = None
    """Seconds of data the slope was measured over (after ``level_shift``, if any)."""
    level_shift: ChangePoint | None = None
    """The recent step that explains the window better than a line; the slope is after it."""
    note: str | None = None
    """Why there is no verdict or no slope (too few samples, too short a span…)."""
    hours_to_breach: float | None = None
    """A metric still meeting its target but worsening: hours until it misses at this slope."""
    hours_to_breach_low: float | None = None
    hours_to_breach_high: float | None = None
    """Its 95 % range from the slope's interval; high None: the slope may be 0 (maybe never)."""


class MetricSeries(Struct, frozen=True, kw_only=True):
    """A judged metric's samples over the window, thinned for charts (at most 60 points).

    The span from the window's first to its last sample is cut into equal-width time
    buckets of ``bucket_s`` seconds; each non-empty bucket gives one point: ``values`` the
    median of its samples' values, ``timestamps`` (Unix epoch seconds) the median of their
    times, so neither the bucket's start nor its centre but a time inside the data, and
    strictly increasing. A window of at most 60 samples is given sample by sample
    (``bucket_s`` = 0). For counters the samples are the derived per-second rates.
    Values to six significant digits, times to the millisecond.
    """

    bucket_s: float
    timestamps: list[float]
    values: list[float]


class MetricPerformance(Struct, frozen=True, kw_only=True):
    current: float
    target: float
    unit: str
    direction: Direction
    meeting_target: bool
    miss_ratio: float
    trend: Trend
    samples: int
    statistic: str = "value"
    """Which statistic ``current`` is (``p95``, ``mean``, ``last``, ``value``)."""
    severity: Severity | None = None
    trend_detail: TrendDetail | None = None
    target_source: str = "catalog"
    """Where the target came from: ``catalog``, ``config`` or ``task``."""
    flags: list[str] = []
    """What is wrong with the data itself: a unit that looks off (latency in seconds, a
    ratio sent as a percentage), a mean standing in for a p95. A flagged metric is
    reported but never made a bottleneck."""
    rejected_samples: int = 0
    """Samples that cannot be (a percentage outside 0–100, a negative duration or rate):
    left out of every figure above and counted in ``data_quality.rejected_samples``."""
    statistic_note: str | None = None
    """Why ``statistic`` is not the catalog's (e.g. a mean from ``_sum``/``_count`` because
    every observation of the histogram fell in one bucket, so no p95 could be measured)."""


class MeasuredMetric(Struct, frozen=True, kw_only=True):
    """A metric measured but not judged: nobody set it a target (a throughput, by default).

    Its figures are from the samples like a judged metric's; ``reason`` says why there
    is no verdict. Set a target (task, directive or settings) to have it judged.
    """

    current: float
    unit: str
    direction: Direction
    statistic: str
    samples: int
    trend: Trend
    trend_detail: TrendDetail | None = None
    reason: str = ""


class Bottleneck(Struct, frozen=True, kw_only=True):
    metric: str
    bottleneck_type: str
    severity: Severity
    optimization_urgency: Annotated[int, Meta(ge=1, le=100)]
    evidence: str
    caused_by: list[str] = []
    """Metrics ranked as the likely cause when this one is a symptom (most likely first)."""


class Provenance(Struct, frozen=True, kw_only=True):
    """The source of one figure, and what backs it."""

    source: Source
    basis: Text = ""
    """In words: the samples, the playbook entry, the verifications or the assumption."""
    verifications: Annotated[int, Meta(ge=0)] = 0
    """Verified outcomes behind a calibrated figure (0 for the others)."""


class Interval(Struct, frozen=True, kw_only=True):
    low: float
    high: float
    level: Annotated[float, Meta(gt=0, lt=1)]
    """Coverage level, e.g. 0.95 for a 95 % interval."""


class ImprovementRange(Struct, frozen=True, kw_only=True):
    """An expected improvement in %: ``low``–``high`` is where the NEXT single outcome
    should land with probability ``level`` (a predictive interval, not the mean's)."""

    low: float
    expected: float
    high: float
    level: Annotated[float, Meta(gt=0, lt=1)] | None = None
    """Coverage level of ``low``–``high`` for one outcome (0.8 from this agent); None from
    senders that predate it."""
    mean_interval: Interval | None = None
    """Interval of the MEAN effect in this context: narrows with evidence, unlike low–high."""
    provenance: Provenance | None = None
    """Prior (playbook) or calibrated (n verifications); None from senders that predate it."""


class Recommendation(Struct, frozen=True, kw_only=True):
    recommendation_id: Ident
    type: Literal["critical_fix", "optimization", "improvement"]
    target: str
    approach: str
    expected_improvement: str
    expected_improvement_pct: ImprovementRange
    effort: str
    risk: str
    calibrated: bool
    effort_weeks: float | None = None
    verifications: int = 0
    """How many verified outcomes back the expected figure (0 = playbook prior only)."""
    provenance: dict[str, Provenance] = {}
    """Source of ``effort_weeks`` and ``risk`` (the expected gain carries its own)."""
    score: float | None = None
    """The ranking score that chose this approach for its target (see ``rationale``)."""
    rationale: str = ""
    """How the score was computed, from which figures, and what came next."""
    context: dict[str, float] = {}
    """The state the expected figure is for: ``miss`` (log of how far the metric misses its
    target) and ``load`` (utilisation of the resource the approach relieves, a fraction)."""


# --- findings of a domain analysis ----------------------------------------------------


class LinearFit(Part, frozen=True, kw_only=True):
    intercept: float | None
    slope_per_connection: float | None
    r2: float | None
    points: int


class BusiestNode(Part, frozen=True, kw_only=True):
    labels: dict[str, str]
    connections: float | None


class ConnectionCapacity(Part, frozen=True, kw_only=True):
    """WebSocket connections per node now, the capacity the latency allows, the headroom."""

    status: Literal["ok", "no_data"]
    reason: str | None = None
    nodes: int | None = None
    connections_total: float | None = None
    connections_per_node: float | None = None
    busiest_node: BusiestNode | None = None
    latency_metric: str | None = None
    latency_target: float | None = None
    observed_peak_per_node: float | None = None
    fit: LinearFit | None = None
    capacity_per_node: float | None = None
    capacity_basis: str | None = None
    headroom_pct: float | None = None
    nodes_needed_now: int | None = None
    throughput_per_connection: float | None = None
    throughput_capacity_per_node: float | None = None


class KeyClassHitRate(Part, frozen=True, kw_only=True):
    key_class: str
    hit_rate_pct: float | None
    lookups: float | None
    share_pct: float | None
    meeting_target: bool
    basis: str


class CacheMemory(Part, frozen=True, kw_only=True):
    utilization_pct: float | None
    basis: str
    used_bytes: float | None = None
    limit_bytes: float | None = None


class CacheFinding(Part, frozen=True, kw_only=True):
    kind: str
    detail: str


class CacheState(Part, frozen=True, kw_only=True):
    """The cache's state and what limits its hit rate, each finding with its numbers."""

    key_classes: list[KeyClassHitRate]
    evictions_per_s: float | None
    expirations_per_s: float | None
    findings: list[CacheFinding]
    memory: CacheMemory | None = None


class Findings(Part, frozen=True, kw_only=True):
    """Domain-specific findings; the monitor's summary names the alerts it raised."""

    websocket_capacity: ConnectionCapacity | None = None
    cache: CacheState | None = None
    alerts: list[str] | None = None
    skipped_runs: int | None = None


# --- data quality --------------------------------------------------------------------


class History(Part, frozen=True, kw_only=True):
    """How much of the window each metric's samples cover, and why less."""

    window_s: float
    short_metrics: dict[str, float] = {}
    note: str | None = None


class Rejected(Part, frozen=True, kw_only=True):
    """Samples of one metric that cannot be (a percentage over 100, a negative duration)."""

    count: int
    reason: str | None = None


class Skipped(Part, frozen=True, kw_only=True):
    """An approach or a metric left out of a plan, and why."""

    reason: str
    metric: str | None = None
    approach: str | None = None


class WeightsUsed(Part, frozen=True, kw_only=True):
    """The business weights a plan was scored with, and whose they are."""

    source: str
    api_performance: float
    scalability: float
    ai_processing: float
    infrastructure_efficiency: float


class DataQuality(Part, frozen=True, kw_only=True):
    """What the analysis could not use and why: unknown names, missing metrics, thin data,
    impossible samples, units that look wrong, statistics that stood in for others."""

    samples: dict[str, int] = {}
    window_end: str | None = None
    history: History | None = None
    rejected_samples: dict[str, Rejected] = {}
    unit_suspects: dict[str, str] = {}
    statistic_notes: dict[str, str] = {}
    unjudged_metrics: dict[str, str] = {}
    unknown_metrics: list[str] = []
    auxiliary_metrics: list[str] = []
    out_of_scope_metrics: list[str] = []
    missing_metrics: list[str] = []
    too_few_for_trend: dict[str, int] = {}
    min_trend_samples: int | None = None
    unknown_targets: list[str] = []
    store: dict[str, int] = {}
    sources: dict[str, list[str]] = {}
    source_report: dict[str, dict[str, Any]] = {}
    """Each live source's own account of the fetch (queries, fallbacks, problems): free-form
    by design, as the source (Prometheus, the KPI stream) describes itself."""
    infeasible_skipped: list[Skipped] = []
    business_weights: WeightsUsed | None = None


# --- the analysis report ----------------------------------------------------------


class AnalysisReport(Struct, frozen=True, kw_only=True, tag_field="kind", tag="analysis"):
    """``report`` of the six analysis task types (and of the monitor's summary)."""

    analysis_type: str
    timestamp: Timestamp
    window: str
    performance: dict[str, MetricPerformance]
    bottlenecks: list[Bottleneck]
    recommendations: list[Recommendation]
    data_quality: DataQuality = DataQuality()
    """What the analysis could not use and why (metrics unknown, too few samples…)."""
    change_points: dict[str, list[ChangePoint]] = {}
    outliers: dict[str, list[Outlier]] = {}
    slo: dict[str, SloStatus] = {}
    request_patterns: RequestPatterns | None = None
    root_causes: list[CauseLink] = []
    findings: Findings = Findings()
    """Domain-specific findings (WebSocket capacity and headroom, cache key classes…)."""
    directive_id: str | None = None
    """The ``strategic_directive/v1`` in force when the report was made (None: none)."""
    series: dict[str, MetricSeries] = {}
    """Per judged metric with samples over time, its window as bucket medians (for charts)."""
    measured: dict[str, MeasuredMetric] = {}
    """Metrics measured but not judged (no target set): their level and trend, no verdict."""


# --- the planning report's parts ------------------------------------------------------


class PlanEntry(Struct, frozen=True, kw_only=True):
    recommendation_id: Ident
    target: str
    approach: str
    backend_strategic_score: Annotated[float, Meta(ge=0, le=100)]
    implementation_phase: Phase
    score_rationale: str = ""
    """How the score was computed (urgency measured, gain prior or calibrated, weight,
    effort prior) and why the phase."""


class InfrastructureRoi(Struct, frozen=True, kw_only=True):
    estimated_total_performance_gain_pct: float
    estimated_infrastructure_efficiency_pct: float
    implementation_effort: str
    provenance: dict[str, Provenance] = {}
    """Source of each figure above (prior or calibrated gains; the playbook's effort)."""


class ItemGain(Part, frozen=True, kw_only=True):
    recommendation_id: str
    approach: str
    expected_gain_pct: float
    verifications: int
    provenance: dict[str, Provenance] = {}


class TargetGain(Part, frozen=True, kw_only=True):
    """One breached metric's combined gain from the items fixing it."""

    metric: str
    category: str
    weight: float
    items: list[ItemGain]
    combined_gain_pct: float
    provenance: dict[str, Provenance] = {}


class RoiDerivation(Part, frozen=True, kw_only=True):
    """How ``infrastructure_roi`` was computed, so a reader can redo it by hand."""

    total: str
    infrastructure_efficiency: str
    targets: list[TargetGain]


class PhaseTimeline(Part, frozen=True, kw_only=True):
    items: int
    engineer_weeks: float
    weeks: float
    start_week: float
    end_week: float


class TimelineEstimate(Part, frozen=True, kw_only=True):
    engineers: int
    phases: dict[str, PhaseTimeline]
    total_weeks: float
    basis: str
    provenance: dict[str, Provenance] = {}
    roi_derivation: RoiDerivation | None = None


class ItemRisk(Part, frozen=True, kw_only=True):
    recommendation_id: str
    approach: str
    targets: list[str]
    risk_level: RiskLevel
    playbook_risk_level: RiskLevel
    risk: str
    risk_of_delay: str | None
    provenance: dict[str, Provenance] = {}


class Unaddressed(Part, frozen=True, kw_only=True):
    metric: str
    severity: Severity


class RiskAssessment(Part, frozen=True, kw_only=True):
    overall: RiskLevel
    by_level: dict[str, int]
    items: list[ItemRisk]
    unaddressed: list[Unaddressed]
    basis: str
    provenance: dict[str, Provenance] = {}


class InfrastructureCost(Part, frozen=True, kw_only=True):
    recommendation_id: str
    approach: str
    cost: str


class Requirement(Part, frozen=True, kw_only=True):
    approach: str
    in_plan: bool


class Prerequisites(Part, frozen=True, kw_only=True):
    recommendation_id: str
    approach: str
    prerequisites: list[str]
    requires: list[Requirement]


class ResourceRequirements(Part, frozen=True, kw_only=True):
    engineer_weeks: dict[str, float]
    """Per phase, and ``total``."""
    infrastructure: list[InfrastructureCost]
    prerequisites: list[Prerequisites]
    provenance: dict[str, Provenance] = {}


# --- capacity: what the system carries now and in 3 and 6 months ------------------------


class WindowSpan(Part, frozen=True, kw_only=True):
    start: str | None
    end: str | None
    seconds: float


class Figure(Part, frozen=True, kw_only=True):
    """One measured figure and how it was computed; ``value`` None with the ``reason``."""

    value: float | None
    basis: str | None = None
    source: Source | None = None
    reason: str | None = None


class CapacityModel(Part, frozen=True, kw_only=True):
    """The Universal Scalability Law fitted to (concurrency, req/s), and its ceiling."""

    model: str
    reason: str
    observations: int
    points: int
    lambda_: float | None = msgspec.field(default=None, name="lambda")
    sigma: float | None = None
    kappa: float | None = None
    r2: float | None = None
    peak_concurrency: float | None = None
    ceiling: float | None = None
    max_observed_concurrency: float | None = None
    peak_is_extrapolated: bool
    concurrency_basis: str | None = None
    source: Source | None = None


class DemandGrowth(Part, frozen=True, kw_only=True):
    """Exponential demand growth per day, or the ``reason`` there is none."""

    model: str | None = None
    growth_pct_per_day: float | None = None
    stderr_pct_per_day: float | None = None
    ci95_pct_per_day: list[float | None] = []
    r2: float | None = None
    span_days: float | None = None
    points: int | None = None
    note: str | None = None
    basis: str | None = None
    source: Source | None = None
    significance: str | None = None
    """Why the fitted growth is no basis for a projection (None: it is one)."""
    reason: str | None = None


class Runway(Part, frozen=True, kw_only=True):
    """Utilisation of the fitted ceiling now, and days until demand meets it."""

    current_system: float | None = None
    optimised_system: float | None = None
    days_to_ceiling: float | None = None
    days_to_optimised_ceiling: float | None = None
    runway_basis: str | None = None
    provenance: dict[str, Provenance] = {}
    reason: str | None = None


class CapacityBaseline(Part, frozen=True, kw_only=True):
    window: WindowSpan
    api_requests_per_s: Figure
    websocket_connections: Figure
    concurrent_users: Figure
    capacity_model: CapacityModel
    demand_growth: DemandGrowth
    utilisation: Runway


class Projected(Part, frozen=True, kw_only=True):
    """A figure some days ahead: expected and both ends of the growth's 95 % interval."""

    expected: float | None = None
    low: float | None = None
    high: float | None = None
    basis: str | None = None
    source: Source | None = None
    reason: str | None = None


class ProjectedUtilisation(Part, frozen=True, kw_only=True):
    ceiling_req_per_s: float | None = None
    optimised_ceiling_req_per_s: float | None = None
    plan_gain_pct: float | None = None
    current_system: Projected | None = None
    optimised_system: Projected | None = None
    basis: str | None = None
    provenance: dict[str, Provenance] = {}
    reason: str | None = None


class HorizonProjection(Part, frozen=True, kw_only=True):
    days: float
    api_requests_per_s: Projected
    websocket_connections: Projected
    concurrent_users: Projected
    utilisation: ProjectedUtilisation


class TriggerCrossing(Part, frozen=True, kw_only=True):
    """When a metric is expected to cross its scaling trigger, and the numbers behind it."""

    metric: str
    status: str
    reason: str
    threshold: float | None
    direction: Direction
    current: float | None
    slope_per_day: float | None
    p_value: float | None
    expected_at: str | None
    expected_ts: float | None
    days_from_now: float | None
    days_from_now_range: list[float | None]
    horizon_days: float | None
    samples: int
    span_days: float | None
    source: Source | None = None
    basis: str | None = None


class ScalabilityProjections(Struct, frozen=True, kw_only=True):
    current_baseline: CapacityBaseline
    three_months: HorizonProjection = msgspec.field(name="3_months")
    six_months: HorizonProjection = msgspec.field(name="6_months")
    scaling_triggers: list[TriggerCrossing]


# --- what verified history says of the agent's own predictions ---------------------------


class Ratio(Part, frozen=True, kw_only=True):
    """A share or a mean with what it is made of; ``value`` None with the ``reason``."""

    value: float | None
    numerator: float
    denominator: float
    basis: str
    reason: str | None = None


class MetricEffect(Part, frozen=True, kw_only=True):
    verifications: int
    success_rate: float | None
    mean_ratio: float | None
    ratio_quantiles: tuple[float, float, float] | None
    mape: float | None


class ApproachEffect(Part, frozen=True, kw_only=True):
    verifications: int
    recommendation_accuracy: Ratio
    prediction_error_mape: Ratio
    metrics: dict[str, MetricEffect]


class LearningReport(Part, frozen=True, kw_only=True):
    """Analysis effectiveness from verified history: accuracy, prediction error, shares."""

    recommendation_accuracy: Ratio
    prediction_error_mape: Ratio
    by_approach: dict[str, ApproachEffect]
    implemented_share: Ratio
    rejected_share: Ratio
    plans_verified_share: Ratio
    verified_outcomes: int
    verifications: int
    unknown_verifications: int
    undefined_verifications: int
    updates: int
    unknown_updates: int
    plans_issued: int
    items_issued: int


# --- the planning report ----------------------------------------------------------------


class PlanningReport(Struct, frozen=True, kw_only=True, tag_field="kind", tag="planning"):
    """``report`` of ``strategic_backend_planning``."""

    plan_type: Literal["strategic_backend_optimization"]
    plan_id: Ident
    created_at: Timestamp
    prioritized_plan: list[PlanEntry]
    infrastructure_roi: InfrastructureRoi
    scalability_projections: ScalabilityProjections
    risk_assessment: RiskAssessment
    resource_requirements: ResourceRequirements
    timeline_estimate: TimelineEstimate
    directive_id: str | None = None
    """The ``strategic_directive/v1`` in force when the plan was made (None: none)."""
    window: str = ""
    performance: dict[str, MetricPerformance] = {}
    bottlenecks: list[Bottleneck] = []
    recommendations: list[Recommendation] = []
    """Every plan item as a recommendation (with its expected range), for Athena's baseline."""
    skipped: list[Skipped] = []
    """Approaches left out and why (infeasible for a target, a symptom of another item)."""
    data_quality: DataQuality = DataQuality()
    learning_report: LearningReport | None = None
    """Analysis effectiveness from verified history: accuracy, prediction error, shares."""
    series: dict[str, MetricSeries] = {}
    """Per judged metric with samples over time, its window as bucket medians (for charts)."""
    measured: dict[str, MeasuredMetric] = {}
    """Metrics measured but not judged (no target set): their level and trend, no verdict."""


def report_kind(report: dict[str, object]) -> str:
    """The ``kind`` an untagged report (from an agent before the tag) has by its fields."""
    return "planning" if "plan_type" in report else "analysis"


Report = AnalysisReport | PlanningReport
"""A task result's report: one tagged union, decoded once with the result."""

REPORT_TYPES: tuple[type[AnalysisReport], type[PlanningReport]] = (AnalysisReport, PlanningReport)
