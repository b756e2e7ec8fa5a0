"""Every message of the wire contract (docs/protocol.md) as a msgspec Struct.

Rules (msgspec's schema-evolution rules): a new field gets a default; an existing
annotation never changes. Unknown fields are ignored; NaN/Infinity and values out
of range fail decoding. Outbound fields use the same types, so what we send is
what we would accept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from protocols.schemas import SchemaName

# --- constrained scalars --------------------------------------------------------

Finite = Annotated[float, Meta(ge=-1e15, le=1e15)]
"""A finite number of sane magnitude: NaN, ±Infinity and absurd values are rejected."""
NonNegative = Annotated[float, Meta(ge=0, le=1e15)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Timestamp = Annotated[datetime, Meta(tz=True)]
"""An RFC 3339 time with its offset (``2026-11-28T10:30:00Z``)."""
EpochSeconds = Annotated[float, Meta(ge=946_684_800, le=4_102_444_800)]
"""Unix seconds between 2000-01-01 and 2100-01-01: anything else is a unit mistake."""
TaskId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
Ident = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
Token = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
Text = Annotated[str, Meta(max_length=4096)]
Subject = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$", max_length=256)]
Window = Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,5}(s|m|h|d|w)$")]
"""A duration such as ``15m``, ``1h``, ``7d``."""
LabelKey = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
LabelValue = Annotated[str, Meta(max_length=256)]
Labels = Annotated[dict[LabelKey, LabelValue], Meta(max_length=16)]
Priority = Annotated[int, Meta(ge=-1000, le=1000)]

Direction = Literal["lower_is_better", "higher_is_better"]
Severity = Literal["critical", "high", "medium", "low"]
Trend = Literal["improving", "stable", "declining", "unknown"]
TaskStatus = Literal["completed", "failed", "rejected"]
Phase = Literal["Phase_1_Critical", "Phase_2_High", "Phase_3_Medium", "Phase_4_Low"]
RiskLevel = Literal["low", "medium", "high"]

SamplePoint = tuple[Timestamp | EpochSeconds, Finite]
"""One ``[timestamp, value]`` pair of inline data."""
InlineSeries = Annotated[list[SamplePoint], Meta(max_length=100_000)]
InlineMetrics = Annotated[dict[Name, Finite | InlineSeries], Meta(max_length=256)]


class Message(Struct, frozen=True, kw_only=True):
    """Base of every message; ``schema`` is checked by the codec before the body is decoded."""

    schema: str


# --- tasks ----------------------------------------------------------------------


class TaskParams(Struct, frozen=True, kw_only=True):
    """``params`` of a task; a task type may read more keys, unknown ones are ignored."""

    window: Window | None = None
    metrics: InlineMetrics = {}
    targets: Annotated[dict[Name, Finite], Meta(max_length=256)] = {}
    source: Token | None = None
    service: Token | None = None
    """The backend the task is about (e.g. ``orders``): what the agent learns from one
    service's verifications weighs most for that service's next plan."""
    samples: Annotated[list[KpiSample], Meta(max_length=200_000)] = []
    """Labelled samples (``endpoint``, ``region``, ``instance``, ``key_class``…), as in
    ``kpi_batch/v1``: per-endpoint traffic, per-node connections, per-key-class hits."""


class TaskRequest(Message, frozen=True, kw_only=True):
    """A task from Helios (or any peer): answered exactly once with a ``task_result/v1``."""

    schema: str = SchemaName.TASK_REQUEST.tag
    task_id: TaskId
    task_type: Token
    issued_at: Timestamp
    issuer: Name
    deadline: Timestamp | None = None
    reply_to: Subject | None = None
    priority: Priority | None = None
    params: TaskParams = TaskParams()


class ErrorInfo(Struct, frozen=True, kw_only=True):
    code: Token
    message: Text


class TaskResult(Message, frozen=True, kw_only=True):
    """The answer to one task: ``completed`` with a report, else ``failed``/``rejected``."""

    schema: str = SchemaName.TASK_RESULT.tag
    task_id: TaskId
    task_type: Token
    agent_id: Ident
    status: TaskStatus
    started_at: Timestamp
    completed_at: Timestamp
    duration_ms: NonNegative
    report: dict[str, Any] | None = None
    """An ``AnalysisReport`` or ``PlanningReport`` as JSON (decode it with ``msgspec.convert``)."""
    error: ErrorInfo | None = None


# --- reports (the ``report`` of a completed task_result) -----------------------


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


Source = Literal["measured", "prior", "calibrated", "assumed"]
"""Where a figure comes from: computed from samples, the playbook's prior, the prior
moved by verified outcomes, or a stated assumption (docs/learning.md, "Provenance")."""


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


class AnalysisReport(Struct, frozen=True, kw_only=True):
    """``report`` of the six analysis task types."""

    analysis_type: str
    timestamp: Timestamp
    window: str
    performance: dict[str, MetricPerformance]
    bottlenecks: list[Bottleneck]
    recommendations: list[Recommendation]
    data_quality: dict[str, Any] = {}
    """What the analysis could not use and why (metrics unknown, too few samples…)."""
    change_points: dict[str, list[ChangePoint]] = {}
    outliers: dict[str, list[Outlier]] = {}
    slo: dict[str, SloStatus] = {}
    request_patterns: RequestPatterns | None = None
    root_causes: list[CauseLink] = []
    findings: dict[str, Any] = {}
    """Domain-specific findings (WebSocket capacity and headroom, cache key classes…)."""
    directive_id: str | None = None
    """The ``strategic_directive/v1`` in force when the report was made (None: none)."""
    series: dict[str, MetricSeries] = {}
    """Per judged metric with samples over time, its window as bucket medians (for charts)."""
    measured: dict[str, MeasuredMetric] = {}
    """Metrics measured but not judged (no target set): their level and trend, no verdict."""


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


class ScalabilityProjections(Struct, frozen=True, kw_only=True):
    current_baseline: dict[str, Any]
    three_months: dict[str, Any] = msgspec.field(name="3_months")
    six_months: dict[str, Any] = msgspec.field(name="6_months")
    scaling_triggers: list[dict[str, Any]]


class PlanningReport(Struct, frozen=True, kw_only=True):
    """``report`` of ``strategic_backend_planning``."""

    plan_type: Literal["strategic_backend_optimization"]
    plan_id: Ident
    created_at: Timestamp
    prioritized_plan: list[PlanEntry]
    infrastructure_roi: InfrastructureRoi
    scalability_projections: ScalabilityProjections
    risk_assessment: dict[str, Any]
    resource_requirements: dict[str, Any]
    timeline_estimate: dict[str, Any]
    directive_id: str | None = None
    """The ``strategic_directive/v1`` in force when the plan was made (None: none)."""
    window: str = ""
    performance: dict[str, MetricPerformance] = {}
    bottlenecks: list[Bottleneck] = []
    recommendations: list[Recommendation] = []
    """Every plan item as a recommendation (with its expected range), for Athena's baseline."""
    skipped: list[dict[str, Any]] = []
    """Approaches left out and why (infeasible for a target, a symptom of another item)."""
    data_quality: dict[str, Any] = {}
    learning_report: dict[str, Any] = {}
    """Analysis effectiveness from verified history: accuracy, prediction error, shares."""
    series: dict[str, MetricSeries] = {}
    """Per judged metric with samples over time, its window as bucket medians (for charts)."""
    measured: dict[str, MeasuredMetric] = {}
    """Metrics measured but not judged (no target set): their level and trend, no verdict."""


# --- to Hephaestus and Athena ------------------------------------------------------


class PlanItem(Struct, frozen=True, kw_only=True):
    recommendation_id: Ident
    target: Name
    approach: Name
    priority: Annotated[int, Meta(ge=0)]
    phase: Phase
    baseline_value: Finite
    target_value: Finite
    expected_improvement_pct: ImprovementRange
    effort: Text
    risk: Text
    score: Annotated[float, Meta(ge=0, le=100)] | None = None
    score_rationale: Text = ""
    """Why this item ranks where it does: the score's terms and where each comes from."""
    provenance: dict[Name, Provenance] = {}
    """Source of the item's other figures (``effort``, ``risk``)."""


class OptimizationPlan(Message, frozen=True, kw_only=True):
    """The items of a plan for Hephaestus to build, in priority order."""

    schema: str = SchemaName.OPTIMIZATION_PLAN.tag
    plan_id: Ident
    created_at: Timestamp
    agent_id: Ident
    source_task_id: TaskId
    items: list[PlanItem]
    service: Token | None = None
    """The backend the plan is for (the task's ``params.service``)."""


class BaselineMetric(Struct, frozen=True, kw_only=True):
    value: Finite
    target: Finite
    unit: str
    direction: Direction
    samples: Annotated[int, Meta(ge=0)]


class Prediction(Struct, frozen=True, kw_only=True):
    recommendation_id: Ident
    metric: Name
    approach: Name
    expected_improvement_pct: Finite
    expected_value: Finite
    expected_range: ImprovementRange | None = None
    """The full prediction: its predictive interval, level and provenance."""
    context: Annotated[dict[Name, Finite], Meta(max_length=16)] = {}
    """The state the prediction is for (``Recommendation.context``)."""


class PerformanceBaseline(Message, frozen=True, kw_only=True):
    """For Athena: the metrics before a plan and what each item is predicted to achieve."""

    schema: str = SchemaName.PERFORMANCE_BASELINE.tag
    baseline_id: Ident
    plan_id: Ident
    captured_at: Timestamp
    window: Window
    metrics: dict[Name, BaselineMetric]
    predictions: list[Prediction]
    service: Token | None = None
    """The backend the baseline was captured on (the task's ``params.service``)."""


# --- from Athena, Hephaestus, Helios ------------------------------------------------


class VerificationResult(Message, frozen=True, kw_only=True):
    """From Athena: a recommendation's metric measured after it was applied."""

    schema: str = SchemaName.VERIFICATION_RESULT.tag
    verification_id: Ident
    plan_id: Ident
    recommendation_id: Ident
    metric: Name
    baseline_value: Finite
    measured_value: Finite
    verified_at: Timestamp
    approach: Name | None = None
    verdict: Name | None = None
    notes: Text | None = None


class ImplementationUpdate(Message, frozen=True, kw_only=True):
    """From Hephaestus: how far a plan item got, and whether it is feasible at all."""

    schema: str = SchemaName.IMPLEMENTATION_UPDATE.tag
    update_id: Ident
    plan_id: Ident
    recommendation_id: Ident
    status: Literal["accepted", "in_progress", "implemented", "rejected"]
    reported_at: Timestamp
    feasibility: Literal["feasible", "infeasible"] | None = None
    reason: Text | None = None
    effort_spent_weeks: Annotated[float, Meta(ge=0, le=10_000)] | None = None


class BusinessImpactWeights(Struct, frozen=True, kw_only=True):
    api_performance: Annotated[float, Meta(ge=0, le=1)]
    scalability: Annotated[float, Meta(ge=0, le=1)]
    ai_processing: Annotated[float, Meta(ge=0, le=1)]
    infrastructure_efficiency: Annotated[float, Meta(ge=0, le=1)]

    def __post_init__(self) -> None:
        total = self.api_performance + self.scalability + self.ai_processing
        total += self.infrastructure_efficiency
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"business_impact_weights must sum to 1, not {total:g}")


class StrategicDirective(Message, frozen=True, kw_only=True):
    """From Helios: business weights, focus areas and targets for all later work."""

    schema: str = SchemaName.STRATEGIC_DIRECTIVE.tag
    directive_id: Ident
    issued_at: Timestamp
    business_impact_weights: BusinessImpactWeights | None = None
    focus_areas: Annotated[list[Token], Meta(max_length=16)] = []
    targets: Annotated[dict[Name, Finite], Meta(max_length=256)] = {}
    valid_until: Timestamp | None = None


class KpiSample(Struct, frozen=True, kw_only=True):
    metric: Name
    value: Finite
    ts: Timestamp | EpochSeconds
    labels: Labels = {}


class KpiBatch(Message, frozen=True, kw_only=True):
    """Live samples from a KPI tracker, judged with the analysis tasks and by the monitor."""

    schema: str = SchemaName.KPI_BATCH.tag
    source: Name
    samples: Annotated[list[KpiSample], Meta(max_length=100_000)]


# --- from the agent to operators ---------------------------------------------------


class Alert(Message, frozen=True, kw_only=True):
    """Raised by the continuous monitoring: one per episode, re-sent only when it worsens."""

    schema: str = SchemaName.ALERT.tag
    alert_id: Ident
    raised_at: Timestamp
    metric: Name
    severity: Severity
    kind: Literal["target_breach", "degradation_trend", "anomaly", "capacity_runway", "resolved"]
    current: Finite
    target: Finite
    message: Text
    problem_id: Ident | None = None
    """Alerts that started together and share a cause carry the cause's alert id."""
    symptoms: Annotated[list[Name], Meta(max_length=64)] = []
    """On the cause's alert: the metrics it drags along."""
    caused_by: Annotated[list[Name], Meta(max_length=64)] = []
    """On a symptom's alert: the metrics ranked as its cause."""


class DeadLetter(Message, frozen=True, kw_only=True):
    """Input the agent refused, kept with its original bytes and the reason."""

    schema: str = SchemaName.DEAD_LETTER.tag
    received_at: Timestamp
    subject: str
    reason: Text
    error_code: Token
    payload_b64: str
    """The original bytes, unchanged, base64 (standard alphabet, padded); only the first
    ``len`` bytes when ``payload_truncated`` (a letter must fit the server's max payload)."""
    headers: dict[str, str] = {}
    task_id: str | None = None
    """The task id when it could be read from the payload."""
    payload_size: Annotated[int, Meta(ge=0)] = 0
    """Size of the original payload in bytes."""
    payload_sha256: str = ""
    """SHA-256 of the whole original payload, hex."""
    payload_truncated: bool = False


MESSAGE_TYPES: dict[SchemaName, type[Message]] = {
    SchemaName.TASK_REQUEST: TaskRequest,
    SchemaName.TASK_RESULT: TaskResult,
    SchemaName.OPTIMIZATION_PLAN: OptimizationPlan,
    SchemaName.PERFORMANCE_BASELINE: PerformanceBaseline,
    SchemaName.VERIFICATION_RESULT: VerificationResult,
    SchemaName.IMPLEMENTATION_UPDATE: ImplementationUpdate,
    SchemaName.STRATEGIC_DIRECTIVE: StrategicDirective,
    SchemaName.KPI_BATCH: KpiBatch,
    SchemaName.ALERT: Alert,
    SchemaName.DEAD_LETTER: DeadLetter,
}
"""One table from schema name to its Struct: the codec and the JSON Schema export read it."""

REPORT_TYPES: tuple[type[Struct], ...] = (AnalysisReport, PlanningReport)
