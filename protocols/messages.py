"""Every message of the wire contract (docs/protocol.md) as a msgspec Struct.

The reports live in ``protocols.reports``, the constrained scalars in ``protocols.types``;
both are re-exported here. Rules (msgspec's schema-evolution rules): a new field gets
a default; an existing annotation never changes (``TaskResult.report``, once a free-form
object, is now the typed union of what it always held). Unknown fields are ignored;
NaN/Infinity and values out of range fail decoding. Outbound fields use the same types,
so what we send is what we would accept.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from protocols.reports import (
    REPORT_TYPES as REPORT_TYPES,
)
from protocols.reports import (
    AnalysisReport as AnalysisReport,
)
from protocols.reports import (
    ApproachEffect as ApproachEffect,
)
from protocols.reports import (
    Bottleneck as Bottleneck,
)
from protocols.reports import (
    BurnRate as BurnRate,
)
from protocols.reports import (
    BusiestNode as BusiestNode,
)
from protocols.reports import (
    CacheFinding as CacheFinding,
)
from protocols.reports import (
    CacheMemory as CacheMemory,
)
from protocols.reports import (
    CacheState as CacheState,
)
from protocols.reports import (
    CapacityBaseline as CapacityBaseline,
)
from protocols.reports import (
    CapacityModel as CapacityModel,
)
from protocols.reports import (
    CauseLink as CauseLink,
)
from protocols.reports import (
    ChangePoint as ChangePoint,
)
from protocols.reports import (
    ConnectionCapacity as ConnectionCapacity,
)
from protocols.reports import (
    DataQuality as DataQuality,
)
from protocols.reports import (
    DemandGrowth as DemandGrowth,
)
from protocols.reports import (
    Figure as Figure,
)
from protocols.reports import (
    Findings as Findings,
)
from protocols.reports import (
    History as History,
)
from protocols.reports import (
    HorizonProjection as HorizonProjection,
)
from protocols.reports import (
    ImprovementRange as ImprovementRange,
)
from protocols.reports import (
    InfrastructureCost as InfrastructureCost,
)
from protocols.reports import (
    InfrastructureRoi as InfrastructureRoi,
)
from protocols.reports import (
    Interval as Interval,
)
from protocols.reports import (
    ItemGain as ItemGain,
)
from protocols.reports import (
    ItemRisk as ItemRisk,
)
from protocols.reports import (
    KeyClassHitRate as KeyClassHitRate,
)
from protocols.reports import (
    LearningReport as LearningReport,
)
from protocols.reports import (
    LinearFit as LinearFit,
)
from protocols.reports import (
    MeasuredMetric as MeasuredMetric,
)
from protocols.reports import (
    MetricEffect as MetricEffect,
)
from protocols.reports import (
    MetricPerformance as MetricPerformance,
)
from protocols.reports import (
    MetricSeries as MetricSeries,
)
from protocols.reports import (
    Outlier as Outlier,
)
from protocols.reports import (
    PeakPeriod as PeakPeriod,
)
from protocols.reports import (
    PhaseTimeline as PhaseTimeline,
)
from protocols.reports import (
    PlanEntry as PlanEntry,
)
from protocols.reports import (
    PlanningReport as PlanningReport,
)
from protocols.reports import (
    Prerequisites as Prerequisites,
)
from protocols.reports import (
    Projected as Projected,
)
from protocols.reports import (
    ProjectedUtilisation as ProjectedUtilisation,
)
from protocols.reports import (
    Provenance as Provenance,
)
from protocols.reports import (
    Ratio as Ratio,
)
from protocols.reports import (
    Recommendation as Recommendation,
)
from protocols.reports import (
    Report as Report,
)
from protocols.reports import (
    RequestPatterns as RequestPatterns,
)
from protocols.reports import (
    Requirement as Requirement,
)
from protocols.reports import (
    ResourceRequirements as ResourceRequirements,
)
from protocols.reports import (
    RiskAssessment as RiskAssessment,
)
from protocols.reports import (
    RoiDerivation as RoiDerivation,
)
from protocols.reports import (
    Runway as Runway,
)
from protocols.reports import (
    ScalabilityProjections as ScalabilityProjections,
)
from protocols.reports import (
    Skipped as Skipped,
)
from protocols.reports import (
    SloStatus as SloStatus,
)
from protocols.reports import (
    TargetGain as TargetGain,
)
from protocols.reports import (
    TimelineEstimate as TimelineEstimate,
)
from protocols.reports import (
    TrafficShare as TrafficShare,
)
from protocols.reports import (
    TrendDetail as TrendDetail,
)
from protocols.reports import (
    TriggerCrossing as TriggerCrossing,
)
from protocols.reports import (
    Unaddressed as Unaddressed,
)
from protocols.reports import (
    WeightsUsed as WeightsUsed,
)
from protocols.reports import (
    WindowSpan as WindowSpan,
)
from protocols.schemas import SchemaName
from protocols.types import (
    Direction as Direction,
)
from protocols.types import (
    EpochSeconds as EpochSeconds,
)
from protocols.types import (
    Finite as Finite,
)
from protocols.types import (
    Ident as Ident,
)
from protocols.types import (
    InlineMetrics as InlineMetrics,
)
from protocols.types import (
    InlineSeries as InlineSeries,
)
from protocols.types import (
    LabelKey as LabelKey,
)
from protocols.types import (
    Labels as Labels,
)
from protocols.types import (
    LabelValue as LabelValue,
)
from protocols.types import (
    Name as Name,
)
from protocols.types import (
    NonNegative as NonNegative,
)
from protocols.types import (
    Percent as Percent,
)
from protocols.types import (
    Phase as Phase,
)
from protocols.types import (
    Priority as Priority,
)
from protocols.types import (
    RiskLevel as RiskLevel,
)
from protocols.types import (
    SamplePoint as SamplePoint,
)
from protocols.types import (
    Severity as Severity,
)
from protocols.types import (
    Source as Source,
)
from protocols.types import (
    Subject as Subject,
)
from protocols.types import (
    TaskId as TaskId,
)
from protocols.types import (
    TaskStatus as TaskStatus,
)
from protocols.types import (
    Text as Text,
)
from protocols.types import (
    Timestamp as Timestamp,
)
from protocols.types import (
    Token as Token,
)
from protocols.types import (
    Trend as Trend,
)
from protocols.types import (
    Window as Window,
)


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
    report: Report | None = None
    """An ``AnalysisReport`` or a ``PlanningReport``, told apart by their ``kind``."""
    error: ErrorInfo | None = None


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
