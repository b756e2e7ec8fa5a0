"""The ``api_optimization`` strategy end to end on inline data (pure, no server)."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.bottlenecks import evidence
from agent.analysis.catalog import CATALOG
from agent.analysis.judge import judge
from agent.analysis.series import from_inline
from agent.errors import InsufficientData, InvalidParams
from agent.strategies.api_optimization import SCOPE, analyze, recommendation_id
from agent.strategies.base import TaskContext
from protocols import AnalysisReport, TaskParams, TaskType
from tests.strategies import wire_finite

NOW = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
T0 = NOW.timestamp() - 3600


def _ctx(task_id: str = "task-1", **params: object) -> TaskContext:
    return TaskContext(
        task_id=task_id,
        task_type=TaskType.API_OPTIMIZATION,
        now=NOW,
        params=msgspec.convert(params, TaskParams),
    )


def _rising(start: float, step: float, n: int = 12) -> list[list[float]]:
    return [[T0 + i * 300.0, start + i * step] for i in range(n)]


def test_report_judges_ranks_and_recommends() -> None:
    ctx = _ctx(
        metrics={
            "api_response_time": _rising(100.0, 1.0),  # p95 110.45, declining
            "api_availability": 99.5,  # 5× the error budget
            "database_query_time": 75.0,  # 1.5× → high
            "api_throughput": 800.0,  # no target set: measured, not judged
        }
    )
    report = analyze(ctx)
    assert report.timestamp == NOW
    assert report.window == "1h"
    perf = report.performance
    assert perf["api_response_time"].statistic == "p95"
    assert perf["api_response_time"].current == 110.45
    assert perf["api_response_time"].trend == "declining"
    assert perf["api_availability"].miss_ratio == 5.0
    assert perf["api_availability"].statistic == "value"
    assert "api_throughput" not in perf
    throughput = report.measured["api_throughput"]
    assert (throughput.current, throughput.unit) == (800.0, "req/s")
    assert "no target set" in throughput.reason

    ranked = [(b.metric, b.severity, b.optimization_urgency) for b in report.bottlenecks]
    assert ranked == [
        ("api_availability", "critical", 100),
        ("api_response_time", "low", 83),
        ("database_query_time", "high", 75),
    ]
    assert report.bottlenecks[1].evidence.startswith(
        "p95 api_response_time 110.45 ms vs target 100 ms (1.10×), declining +12 ms/h"
    )

    by_metric: dict[str, list[str]] = {}
    for rec in report.recommendations:
        by_metric.setdefault(rec.target, []).append(rec.approach)
        assert not rec.calibrated
        assert rec.verifications == 0
    assert len(by_metric["api_availability"]) == 2  # critical: best two
    assert len(by_metric["api_response_time"]) == 1  # low: best one
    assert len(by_metric["database_query_time"]) == 2  # high: best two
    first = report.recommendations[0]
    assert first.type == "critical_fix"
    db = [r for r in report.recommendations if r.target == "database_query_time"]
    assert db[0].type == "optimization"
    # Pool pressure is not measured, so indexing comes before pooling and replicas.
    assert re.fullmatch(
        r"-?[\d.]+–[\d.]+ % lower database_query_time \(expected 55 %; 80 % range for one "
        r"outcome; playbook prior\)",
        db[0].expected_improvement,
    ), db[0].expected_improvement
    rng = db[0].expected_improvement_pct
    assert rng.level == 0.8
    assert rng.provenance is not None
    assert rng.provenance.source == "prior"
    assert rng.low < 40.0  # one outcome varies more than the mean
    assert rng.high > 70.0
    assert db[0].provenance["effort_weeks"].source == "prior"
    assert db[0].effort == "3 engineer-weeks"
    assert db[0].risk.startswith("medium: ")

    # The report survives the wire: no inf/NaN, every constraint holds.
    again = msgspec.json.decode(msgspec.json.encode(report), type=AnalysisReport)
    assert again == report


def test_recommendation_ids_are_deterministic_per_task() -> None:
    metrics = {"api_response_time": 300.0, "error_rate": 3.0}
    a = analyze(_ctx("task-a", metrics=metrics))
    b = analyze(_ctx("task-a", metrics=metrics))
    c = analyze(_ctx("task-b", metrics=metrics))
    ids_a = [r.recommendation_id for r in a.recommendations]
    assert ids_a == [r.recommendation_id for r in b.recommendations]
    assert set(ids_a).isdisjoint(r.recommendation_id for r in c.recommendations)
    assert len(set(ids_a)) == len(ids_a)
    assert recommendation_id("t", "m", "k") == recommendation_id("t", "m", "k")
    assert recommendation_id("t", "m", "k").startswith("rec-")
    assert len(recommendation_id("t", "m", "k")) == 16


def test_target_precedence_task_over_config_over_catalog() -> None:
    ctx = TaskContext(
        task_id="t",
        task_type=TaskType.API_OPTIMIZATION,
        now=NOW,
        params=TaskParams(
            metrics={"api_response_time": 150.0, "error_rate": 1.5, "api_throughput": 400.0},
            targets={"api_response_time": 200.0},
        ),
        target_overrides={"api_response_time": 50.0, "error_rate": 2.0},
    )
    perf = analyze(ctx).performance
    assert (perf["api_response_time"].target, perf["api_response_time"].target_source) == (
        200.0,
        "task",
    )
    assert (perf["error_rate"].target, perf["error_rate"].target_source) == (2.0, "config")
    assert "api_throughput" not in perf  # no target anywhere: measured only
    configured = dataclasses.replace(ctx, target_overrides={"api_throughput": 500.0})
    throughput = analyze(configured).performance["api_throughput"]
    assert (throughput.target, throughput.target_source, throughput.miss_ratio) == (
        500.0,
        "config",
        1.25,
    )


def test_unknown_and_out_of_scope_metrics_are_reported_not_dropped() -> None:
    report = analyze(
        _ctx(metrics={"api_response_time": 90.0, "foo_latency": 12.0, "real_time_delivery": 30.0})
    )
    assert report.data_quality.unknown_metrics == ["foo_latency"]
    assert report.data_quality.out_of_scope_metrics == ["real_time_delivery"]
    assert "real_time_delivery" in report.performance
    assert "foo_latency" not in report.performance
    assert "api_availability" in report.data_quality.missing_metrics
    assert report.data_quality.too_few_for_trend == {
        "api_response_time": 1,
        "real_time_delivery": 1,
    }


def test_series_are_windowed_from_their_latest_sample() -> None:
    old = [[T0 - 7200.0, 1000.0]]
    recent = [[T0 + i * 60.0, 80.0] for i in range(10)]
    report = analyze(_ctx(window="15m", metrics={"api_response_time": old + recent}))
    perf = report.performance["api_response_time"]
    assert perf.samples == 10
    assert perf.current == 80.0
    # 9 minutes of samples carry no rate per hour: said, not extrapolated
    assert perf.trend == "unknown"
    assert perf.trend_detail is not None
    assert perf.trend_detail.slope_per_hour is None
    assert perf.trend_detail.note == "9 min of data in the window: a rate per hour needs 15 min"
    assert report.window == "15m"


def test_no_api_data_is_insufficient_with_counts() -> None:
    with pytest.raises(InsufficientData) as caught:
        analyze(_ctx(metrics={"websocket_throughput": 900.0, "api_response_time": []}))
    assert caught.value.counts["api_response_time"] == 0
    assert caught.value.counts["websocket_throughput"] == 1
    with pytest.raises(InsufficientData):
        analyze(_ctx())


def test_bad_window_is_invalid_params() -> None:
    ctx = TaskContext(
        task_id="t",
        task_type=TaskType.API_OPTIMIZATION,
        now=NOW,
        params=TaskParams(metrics={"api_response_time": 1.0}),
        default_window="an hour",
    )
    with pytest.raises(InvalidParams):
        analyze(ctx)


def test_evidence_for_a_bounded_metric_names_the_error_budget() -> None:
    j = judge(CATALOG["api_availability"], from_inline(99.5), target=99.9)
    assert evidence(j) == (
        "value api_availability 99.5 % vs target 99.9 % (5.00× of the error budget), "
        "trend unknown (1 sample)"
    )


def test_report_numbers_are_finite_even_when_throughput_is_zero() -> None:
    report = analyze(_ctx(metrics={"api_throughput": 0.0}, targets={"api_throughput": 100.0}))
    perf = report.performance["api_throughput"]
    assert math.isfinite(perf.miss_ratio)
    assert report.bottlenecks[0].optimization_urgency == 100


@given(
    st.dictionaries(
        st.sampled_from([*SCOPE, "websocket_throughput", "foo"]),
        st.one_of(
            wire_finite,
            st.lists(st.tuples(st.integers(0, 86_400).map(lambda s: T0 + s), wire_finite)),
        ),
        max_size=8,
    )
)
def test_any_wire_valid_data_gives_a_wire_valid_report_or_insufficient_data(
    metrics: dict[str, object],
) -> None:
    try:
        report = analyze(_ctx(metrics=metrics))
    except InsufficientData:
        return
    assert msgspec.json.decode(msgspec.json.encode(report), type=AnalysisReport) == report
