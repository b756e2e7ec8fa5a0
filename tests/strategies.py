"""Shared hypothesis strategies for the pure core (attrs keeps them in one file, so do we)."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from agent.analysis.catalog import CATALOG, MetricSpec
from agent.analysis.causes import CauseInput
from agent.analysis.series import Series
from protocols import (
    Alert,
    AnalysisReport,
    BaselineMetric,
    DeadLetter,
    ErrorInfo,
    ImplementationUpdate,
    ImprovementRange,
    KpiBatch,
    KpiSample,
    OptimizationPlan,
    PerformanceBaseline,
    PlanItem,
    Prediction,
    StrategicDirective,
    TaskParams,
    TaskRequest,
    TaskResult,
    VerificationResult,
)
from protocols.messages import BusinessImpactWeights, Message

finite = st.floats(allow_nan=False, allow_infinity=False)
"""Any finite float, down to subnormals and up to ±1.8e308."""
wire_finite = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
"""What the wire's ``Finite`` lets through."""
specs: st.SearchStrategy[MetricSpec] = st.sampled_from(list(CATALOG.values()))
ratios = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
epoch = st.floats(min_value=946_684_800, max_value=4_102_444_800, allow_nan=False)


@st.composite
def series(
    draw: st.DrawFn,
    values: st.SearchStrategy[float] = finite,
    times: st.SearchStrategy[float] = epoch,
) -> Series:
    """A time-sorted series of 0–40 samples; times may repeat, values may be extreme."""
    pairs = draw(st.lists(st.tuples(times, values), max_size=40))
    pairs.sort(key=lambda p: p[0])
    return Series(
        ts=np.array([t for t, _ in pairs], dtype=np.float64),
        values=np.array([v for _, v in pairs], dtype=np.float64),
    )


# --- wire messages (protocols/) ------------------------------------------------------
# Valid values of every constrained wire type, and one valid example of every message as
# a peer would write it: the seeds of the codec fuzz tests.

_IDENT_CHARS = string.ascii_letters + string.digits + "._:-"
_TOKEN_CHARS = string.ascii_letters + string.digits + "_-"

wire_ident = st.text(_IDENT_CHARS, min_size=1, max_size=128)
"""A task id or any other ``Ident``: 1–128 chars of ``[A-Za-z0-9._:-]``."""
wire_token = st.text(_TOKEN_CHARS, min_size=1, max_size=64)
wire_name = st.text(min_size=1, max_size=128)
wire_text = st.text(max_size=300)
wire_window = st.from_regex(r"\A[1-9][0-9]{0,5}[smhdw]\Z")
wire_subject = st.lists(
    st.text(_TOKEN_CHARS + "$", min_size=1, max_size=12), min_size=1, max_size=6
).map(".".join)
wire_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
"""Aware datetimes with whole-minute offsets, as RFC 3339 can carry them."""
wire_direction = st.sampled_from(["lower_is_better", "higher_is_better"])
wire_severity = st.sampled_from(["critical", "high", "medium", "low"])
wire_phase = st.sampled_from(["Phase_1_Critical", "Phase_2_High", "Phase_3_Medium", "Phase_4_Low"])
wire_labels = st.dictionaries(
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z"), st.text(max_size=40), max_size=4
)

json_leaves: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()  # nan and ±inf included: json.dumps(allow_nan=True) writes NaN / Infinity
    | st.text(max_size=30)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
"""Anything ``json.dumps(…, allow_nan=True)`` can write, including what the wire must refuse."""
finite_json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | wire_finite | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
"""JSON values that round-trip exactly (what a report may carry)."""

_improvement = st.builds(ImprovementRange, low=wire_finite, expected=wire_finite, high=wire_finite)

_task_params = st.builds(
    TaskParams,
    window=st.none() | wire_window,
    metrics=st.dictionaries(
        wire_name,
        wire_finite | st.lists(st.tuples(wire_datetimes | epoch, wire_finite), max_size=5),
        max_size=3,
    ),
    targets=st.dictionaries(wire_name, wire_finite, max_size=3),
    source=st.none() | wire_token,
)


@st.composite
def _weights(draw: st.DrawFn) -> BusinessImpactWeights:
    parts = draw(st.lists(st.integers(0, 100), min_size=4, max_size=4).filter(lambda p: sum(p) > 0))
    a, b, c, d = (p / sum(parts) for p in parts)
    return BusinessImpactWeights(
        api_performance=a, scalability=b, ai_processing=c, infrastructure_efficiency=d
    )


WIRE_MESSAGES: dict[type[Message], st.SearchStrategy[Any]] = {
    TaskRequest: st.builds(
        TaskRequest,
        task_id=wire_ident,
        task_type=wire_token,
        issued_at=wire_datetimes,
        issuer=wire_name,
        deadline=st.none() | wire_datetimes,
        reply_to=st.none() | wire_subject,
        priority=st.none() | st.integers(-1000, 1000),
        params=_task_params,
    ),
    TaskResult: st.builds(
        TaskResult,
        task_id=wire_ident,
        task_type=wire_token,
        agent_id=wire_ident,
        status=st.sampled_from(["completed", "failed", "rejected"]),
        started_at=wire_datetimes,
        completed_at=wire_datetimes,
        duration_ms=st.floats(0, 1e15),
        report=st.none()
        | st.builds(
            AnalysisReport,
            analysis_type=wire_token,
            timestamp=wire_datetimes,
            window=st.sampled_from(["15m", "1h", "7d"]),
            performance=st.just({}),
            bottlenecks=st.just([]),
            recommendations=st.just([]),
        ),
        error=st.none() | st.builds(ErrorInfo, code=wire_token, message=wire_text),
    ),
    OptimizationPlan: st.builds(
        OptimizationPlan,
        plan_id=wire_ident,
        created_at=wire_datetimes,
        agent_id=wire_ident,
        source_task_id=wire_ident,
        items=st.lists(
            st.builds(
                PlanItem,
                recommendation_id=wire_ident,
                target=wire_name,
                approach=wire_name,
                priority=st.integers(min_value=0, max_value=2**40),
                phase=wire_phase,
                baseline_value=wire_finite,
                target_value=wire_finite,
                expected_improvement_pct=_improvement,
                effort=wire_text,
                risk=wire_text,
            ),
            max_size=3,
        ),
    ),
    PerformanceBaseline: st.builds(
        PerformanceBaseline,
        baseline_id=wire_ident,
        plan_id=wire_ident,
        captured_at=wire_datetimes,
        window=wire_window,
        metrics=st.dictionaries(
            wire_name,
            st.builds(
                BaselineMetric,
                value=wire_finite,
                target=wire_finite,
                unit=st.text(max_size=8),
                direction=wire_direction,
                samples=st.integers(0, 2**40),
            ),
            max_size=3,
        ),
        predictions=st.lists(
            st.builds(
                Prediction,
                recommendation_id=wire_ident,
                metric=wire_name,
                approach=wire_name,
                expected_improvement_pct=wire_finite,
                expected_value=wire_finite,
            ),
            max_size=3,
        ),
    ),
    VerificationResult: st.builds(
        VerificationResult,
        verification_id=wire_ident,
        plan_id=wire_ident,
        recommendation_id=wire_ident,
        metric=wire_name,
        baseline_value=wire_finite,
        measured_value=wire_finite,
        verified_at=wire_datetimes,
        approach=st.none() | wire_name,
        verdict=st.none() | wire_name,
        notes=st.none() | wire_text,
    ),
    ImplementationUpdate: st.builds(
        ImplementationUpdate,
        update_id=wire_ident,
        plan_id=wire_ident,
        recommendation_id=wire_ident,
        status=st.sampled_from(["accepted", "in_progress", "implemented", "rejected"]),
        reported_at=wire_datetimes,
        feasibility=st.none() | st.sampled_from(["feasible", "infeasible"]),
        reason=st.none() | wire_text,
        effort_spent_weeks=st.none() | st.floats(0, 10_000),
    ),
    StrategicDirective: st.builds(
        StrategicDirective,
        directive_id=wire_ident,
        issued_at=wire_datetimes,
        business_impact_weights=st.none() | _weights(),
        focus_areas=st.lists(wire_token, max_size=4),
        targets=st.dictionaries(wire_name, wire_finite, max_size=3),
        valid_until=st.none() | wire_datetimes,
    ),
    KpiBatch: st.builds(
        KpiBatch,
        source=wire_name,
        samples=st.lists(
            st.builds(
                KpiSample,
                metric=wire_name,
                value=wire_finite,
                ts=wire_datetimes | epoch,
                labels=wire_labels,
            ),
            max_size=4,
        ),
    ),
    Alert: st.builds(
        Alert,
        alert_id=wire_ident,
        raised_at=wire_datetimes,
        metric=wire_name,
        severity=wire_severity,
        kind=st.sampled_from(
            ["target_breach", "degradation_trend", "anomaly", "capacity_runway", "resolved"]
        ),
        current=wire_finite,
        target=wire_finite,
        message=wire_text,
    ),
    DeadLetter: st.builds(
        DeadLetter,
        received_at=wire_datetimes,
        subject=st.text(max_size=60),
        reason=wire_text,
        error_code=wire_token,
        payload_b64=st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        headers=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=3),
        task_id=st.none() | wire_ident,
    ),
}
"""A strategy of valid instances for every message type of ``protocols.MESSAGE_TYPES``."""

_AT = "2026-11-28T10:30:00Z"
WIRE_EXAMPLES: dict[type[Message], dict[str, Any]] = {
    TaskRequest: {
        "schema": "task_request/v1",
        "task_id": "t-1",
        "task_type": "api_optimization",
        "issued_at": _AT,
        "issuer": "helios",
        "deadline": "2026-11-28T11:30:00Z",
        "reply_to": "_INBOX.abc.1",
        "priority": 5,
        "params": {
            "window": "1h",
            "metrics": {
                "api_response_time": [[_AT, 120.5], [1_764_325_860, 130]],
                "error_rate": 0.5,
            },
            "targets": {"api_response_time": 150},
            "source": "inline",
        },
    },
    TaskResult: {
        "schema": "task_result/v1",
        "task_id": "t-1",
        "task_type": "api_optimization",
        "agent_id": "prometheus-backend",
        "status": "completed",
        "started_at": _AT,
        "completed_at": "2026-11-28T10:30:01.250000Z",
        "duration_ms": 1250.0,
        "report": {
            "kind": "analysis",
            "analysis_type": "api_optimization",
            "timestamp": "2026-11-28T10:30:01Z",
            "window": "1h",
            "performance": {},
            "bottlenecks": [],
            "recommendations": [],
        },
    },
    OptimizationPlan: {
        "schema": "optimization_plan/v1",
        "plan_id": "plan-1",
        "created_at": _AT,
        "agent_id": "prometheus-backend",
        "source_task_id": "t-1",
        "items": [
            {
                "recommendation_id": "rec-1",
                "target": "api_response_time",
                "approach": "response_caching",
                "priority": 1,
                "phase": "Phase_1_Critical",
                "baseline_value": 240.0,
                "target_value": 150.0,
                "expected_improvement_pct": {"low": 10.0, "expected": 25.0, "high": 40.0},
                "effort": "medium",
                "risk": "low",
            }
        ],
    },
    PerformanceBaseline: {
        "schema": "performance_baseline/v1",
        "baseline_id": "base-1",
        "plan_id": "plan-1",
        "captured_at": _AT,
        "window": "1h",
        "metrics": {
            "api_response_time": {
                "value": 240.0,
                "target": 150.0,
                "unit": "ms",
                "direction": "lower_is_better",
                "samples": 12,
            }
        },
        "predictions": [
            {
                "recommendation_id": "rec-1",
                "metric": "api_response_time",
                "approach": "response_caching",
                "expected_improvement_pct": 25.0,
                "expected_value": 180.0,
            }
        ],
    },
    VerificationResult: {
        "schema": "verification_result/v1",
        "verification_id": "ver-1",
        "plan_id": "plan-1",
        "recommendation_id": "rec-1",
        "metric": "api_response_time",
        "baseline_value": 240.0,
        "measured_value": 190.0,
        "verified_at": _AT,
        "approach": "response_caching",
        "verdict": "improved",
        "notes": "p95 over 1h",
    },
    ImplementationUpdate: {
        "schema": "implementation_update/v1",
        "update_id": "upd-1",
        "plan_id": "plan-1",
        "recommendation_id": "rec-1",
        "status": "implemented",
        "reported_at": _AT,
        "feasibility": "feasible",
        "reason": "done",
        "effort_spent_weeks": 1.5,
    },
    StrategicDirective: {
        "schema": "strategic_directive/v1",
        "directive_id": "dir-1",
        "issued_at": _AT,
        "business_impact_weights": {
            "api_performance": 0.4,
            "scalability": 0.3,
            "ai_processing": 0.2,
            "infrastructure_efficiency": 0.1,
        },
        "focus_areas": ["api_optimization", "cache_optimization"],
        "targets": {"api_response_time": 120},
        "valid_until": "2026-12-28T10:30:00Z",
    },
    KpiBatch: {
        "schema": "kpi_batch/v1",
        "source": "kpi-tracker",
        "samples": [
            {"metric": "api_response_time", "value": 120.5, "ts": _AT, "labels": {"region": "eu"}},
            {"metric": "error_rate", "value": 0.2, "ts": 1_764_325_800},
            {"metric": "error_rate", "value": 0.3, "ts": 1_764_325_860.5},
        ],
    },
    Alert: {
        "schema": "alert/v1",
        "alert_id": "alert-1",
        "raised_at": _AT,
        "metric": "api_response_time",
        "severity": "high",
        "kind": "target_breach",
        "current": 240.0,
        "target": 150.0,
        "message": "api_response_time p95 240 ms misses its 150 ms target",
    },
    DeadLetter: {
        "schema": "dead_letter/v1",
        "received_at": _AT,
        "subject": "swarm.tasks.prometheus-backend.api_optimization",
        "reason": "not valid UTF-8 JSON",
        "error_code": "invalid_payload",
        "payload_b64": "e30=",
        "headers": {"Nats-Msg-Id": "abc"},
        "task_id": "t-1",
    },
}
"""One valid example of every message, as a peer would write it (plain JSON data)."""


# --- labelled request samples and judged metrics (analysis/patterns, analysis/causes) ---

request_labels = st.lists(
    st.tuples(st.sampled_from(["endpoint", "region", "method"]), st.sampled_from(["a", "b", "/x"])),
    max_size=3,
    unique_by=lambda pair: pair[0],
).map(lambda pairs: tuple(sorted(pairs)))
"""Sorted label pairs drawn from a few keys and values, so label sets collide and group."""
any_time_series = series() | series(times=finite)
"""Epoch-stamped series, or series stamped at any finite time (down to 1e-305, up to 1e308)."""
labelled_series = st.dictionaries(request_labels, any_time_series, max_size=4)
"""Label set → series of any finite values (counters, rates or latencies alike)."""


@st.composite
def cause_inputs(draw: st.DrawFn) -> dict[str, CauseInput]:
    """Metric name → ``CauseInput`` for a few catalog metrics: any series, target, verdict."""
    names = draw(st.lists(st.sampled_from(sorted(CATALOG)), unique=True, max_size=6))
    return {
        name: CauseInput(
            spec=CATALOG[name],
            series=draw(any_time_series | st.builds(_scalar, finite)),
            target=draw(finite),
            breached=draw(st.booleans()),
        )
        for name in names
    }


def _scalar(value: float) -> Series:
    return Series(ts=np.array([np.nan]), values=np.array([value]), scalar=True)


@st.composite
def long_series(draw: st.DrawFn, max_size: int = 600) -> Series:
    """A time-sorted series of 0–``max_size`` samples: long enough to be bucketed.

    Times repeat now and then and values reach the float extremes, as in ``series``.
    """
    n = draw(st.integers(0, max_size))
    ts = draw(hnp.arrays(np.float64, n, elements=epoch))
    values = draw(hnp.arrays(np.float64, n, elements=finite))
    return Series(ts=np.sort(ts), values=values)


# --- capacity planning (planning/capacity) -------------------------------------------

plausible_load = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)
"""Concurrency or throughput as a system reports it: enough of these reach the USL fit."""


@st.composite
def load_observations(
    draw: st.DrawFn, values: st.SearchStrategy[float] = finite, max_size: int = 60
) -> tuple[Any, Any]:
    """Paired (concurrency, throughput) float64 arrays of one length, 0–``max_size``."""
    size = draw(st.integers(0, max_size))
    concurrency = draw(hnp.arrays(np.float64, size, elements=values))
    throughput = draw(hnp.arrays(np.float64, size, elements=values))
    return concurrency, throughput
