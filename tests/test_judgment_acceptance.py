"""Judgment on telemetry not shaped like the agent's own model (``scripts/corpora.py``).

The corpora import nothing from the agent: their targets, noise (AR(1) φ = 0.9 at 10 s,
Student-t, daily cycles), steps and cascades are the generator's. Each test states one
acceptance rule of the judgment and runs the real strategies on that data, in process.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pytest

from agent.reports.html import render_html
from agent.reports.markdown import render_markdown
from agent.reports.text import render_text
from agent.store import MetricStore
from agent.strategies import ROUTES
from agent.strategies.base import TaskContext
from protocols import TaskParams, TaskResult, TaskType, decode
from protocols import encode as encode_message
from scripts.corpora import TASK_TYPES, Scenario, generate

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
SEEDS = range(10)


def run(scenario: Scenario) -> dict[str, Any]:
    """The scenario's task through its strategy, as a peer decodes the report."""
    task_type = TaskType(scenario.task_type)
    ctx = TaskContext(
        task_id=f"{scenario.name}-t",
        task_type=task_type,
        now=datetime.fromtimestamp(END, UTC),
        params=msgspec.convert(scenario.params, TaskParams),
    )
    report: dict[str, Any] = msgspec.to_builtins(ROUTES[task_type](ctx))
    return report


def as_result(scenario: Scenario, report: dict[str, Any]) -> dict[str, Any]:
    now = datetime.fromtimestamp(END, UTC)
    result = TaskResult(
        task_id=f"{scenario.name}-t",
        task_type=scenario.task_type,
        agent_id="prometheus-backend",
        status="completed",
        started_at=now,
        completed_at=now,
        duration_ms=1.0,
        report=report,
    )
    decoded: dict[str, Any] = json.loads(encode_message(result))
    return decoded


def declining(report: dict[str, Any]) -> list[str]:
    return [m for m, p in report["performance"].items() if p["trend"] == "declining"]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_healthy_autocorrelated_hours_hold_no_trend_bottleneck_or_trigger(task_type: str) -> None:
    reports = [run(generate(f"healthy_ar1.{task_type}", seed, END)) for seed in SEEDS]
    with_trend = [declining(r) for r in reports if declining(r)]
    assert len(with_trend) <= 1, with_trend
    for r in reports:
        serious = [b for b in r["bottlenecks"] if b["severity"] != "low"]
        assert serious == []
        triggers = (r.get("scalability_projections") or {}).get("scaling_triggers", [])
        assert [t for t in triggers if t["status"] == "expected"] == []


def test_a_step_is_a_level_shift_at_its_minute_not_a_slope() -> None:
    for seed in range(5):
        scenario = generate("step", seed, END)
        report = run(scenario)
        metric, at = scenario.truth["step_metric"], scenario.truth["step_at"]
        detail = report["performance"][metric]["trend_detail"]
        shift = detail["level_shift"]
        assert shift is not None, detail
        moment = datetime.fromisoformat(shift["at"]).timestamp()
        assert abs(moment - at) <= 60.0
        assert shift["after"] > 2 * shift["before"]
        # the slope, if any, is only over the segment after the step
        assert detail["span_s"] is None or detail["span_s"] <= END - at + 60.0
        bottleneck = next(b for b in report["bottlenecks"] if b["metric"] == metric)
        assert "stepped" in bottleneck["evidence"]


@pytest.mark.parametrize("order", ["cascade_cache_first", "cascade_db_first"])
def test_cascades_rank_their_root_first_in_either_order(order: str) -> None:
    for seed in range(5):
        scenario = generate(order, seed, END)
        report = run(scenario)
        root = scenario.truth["root"]
        ranked = [b["metric"] for b in report["bottlenecks"]]
        assert ranked[0] == root, (seed, ranked)
        caused = {b["metric"]: b["caused_by"] for b in report["bottlenecks"]}
        for symptom in scenario.truth["symptoms"]:
            assert root in caused[symptom], (seed, symptom, caused)
            assert ranked.index(symptom) > ranked.index(root)


def rendered(scenario: Scenario, report: dict[str, Any]) -> dict[str, str]:
    result = as_result(scenario, report)
    typed = decode(TaskResult, json.dumps(result).encode())  # as a peer reads it
    return {
        "json": json.dumps(result),
        "markdown": render_markdown(typed),
        "html": render_html(typed),
        "text": render_text(typed),
    }


def test_impossible_values_are_rejected_counted_and_said_in_every_format() -> None:
    scenario = generate("impossible_values", 0, END)
    report = run(scenario)
    rejected = report["data_quality"]["rejected_samples"]
    assert {m: r["count"] for m, r in rejected.items()} == scenario.truth["impossible"]
    for metric in scenario.truth["impossible"]:
        perf = report["performance"][metric]
        assert perf["rejected_samples"] == scenario.truth["impossible"][metric]
        if perf["unit"] == "%":
            assert 0.0 <= perf["current"] <= 100.0  # never averaged in
    for fmt, page in rendered(scenario, report).items():
        assert "Impossible samples rejected" in page or fmt == "json", fmt
        for metric in scenario.truth["impossible"]:
            assert metric in page


def test_a_unit_mistake_is_flagged_in_every_format_and_never_a_bottleneck() -> None:
    scenario = generate("unit_seconds", 0, END)
    report = run(scenario)
    metric = scenario.truth["unit_mistake"]
    suspect = report["data_quality"]["unit_suspects"][metric]
    assert "looks like seconds" in suspect
    assert report["performance"][metric]["flags"] == [suspect]
    assert metric not in [b["metric"] for b in report["bottlenecks"]]
    for fmt, page in rendered(scenario, report).items():
        assert "looks like seconds" in page, fmt


def test_a_small_healthy_backend_without_a_throughput_target_has_no_throughput_bottleneck() -> None:
    for seed in range(5):
        scenario = generate("small_backend", seed, END)
        report = run(scenario)
        assert "api_throughput" not in [b["metric"] for b in report["bottlenecks"]]
        measured = report["measured"]["api_throughput"]
        assert 20.0 < measured["current"] < 40.0
        assert "no target set" in measured["reason"]


def test_long_inline_history_is_judged_whole_and_a_short_store_says_how_much() -> None:
    # 5.8 days at 15 s: 33 408 samples, more than a live store keeps per series
    n = int(5.8 * 86_400 / 15)
    ts = END - 15.0 * np.arange(n)[::-1]
    cpu = 40.0 + 5.0 * np.sin(ts / 3_600.0)
    params = {"window": "7d", "metrics": {"cpu_utilization": np.c_[ts, cpu].tolist()}}
    scenario = Scenario("long", "long", "strategic_backend_planning", params, {})
    report = run(scenario)
    assert report["data_quality"]["samples"]["cpu_utilization"] == n
    note = report["data_quality"]["history"]["note"]
    assert "less than the 7 d asked for (the shortest over 5.8 d)" in note
    assert "no older samples were given" in note

    store = MetricStore(max_samples_per_series=1_000)
    store.add_many("cpu_utilization", ts, cpu)
    ctx = TaskContext(
        task_id="short-store",
        task_type=TaskType.STRATEGIC_BACKEND_PLANNING,
        now=datetime.fromtimestamp(END, UTC),
        params=TaskParams(window="1d"),
        store=store,
    )
    short = msgspec.to_builtins(ROUTES[TaskType.STRATEGIC_BACKEND_PLANNING](ctx))
    said = short["data_quality"]["history"]["note"]
    assert "the shortest over 4.2 h" in said
    assert "kept at most 1,000 samples per series and dropped 32,408 older ones" in said
    pages = rendered(Scenario("short", "short", "strategic_backend_planning", {}, {}), short)
    for fmt, page in pages.items():
        assert "dropped 32,408 older ones" in page, fmt


def test_a_mean_standing_in_for_a_p95_is_named_and_explained_in_every_format() -> None:
    # what the Prometheus source stores for a saturated histogram (tests/test_source_prometheus)
    reason = (
        "every observation of db_client_operation_duration_seconds in the window fell in one "
        "bucket (0–5 s): its p95 would follow from that bucket's bounds (4 750 ms), not from "
        "the data, so the mean from _sum/_count is judged"
    )
    ts = END - 15.0 * np.arange(240)[::-1]
    store = MetricStore()
    store.add_many("database_query_time", ts, 0.85 + 0.05 * np.sin(ts / 600.0))
    store.add_many("api_response_time", ts, 40.0 + 2.0 * np.cos(ts / 900.0))
    store.set_statistic("database_query_time", "mean", reason)
    ctx = TaskContext(
        task_id="saturated",
        task_type=TaskType.API_OPTIMIZATION,
        now=datetime.fromtimestamp(END, UTC),
        params=TaskParams(window="1h"),
        store=store,
    )
    report = msgspec.to_builtins(ROUTES[TaskType.API_OPTIMIZATION](ctx))
    db = report["performance"]["database_query_time"]
    assert (db["statistic"], db["statistic_note"]) == ("mean", reason)
    assert db["current"] == pytest.approx(0.85, abs=0.06)
    assert report["bottlenecks"] == []
    assert report["data_quality"]["statistic_notes"] == {"database_query_time": reason}
    pages = rendered(Scenario("saturated", "s", "api_optimization", {}, {}), report)
    for fmt, page in pages.items():
        assert "mean from _sum/_count" in page, fmt

    # a database really slow on the mean is a bottleneck, named as a mean with the reason
    slow = MetricStore()
    slow.add_many("database_query_time", ts, 358.0 + 20.0 * np.sin(ts / 600.0))
    slow.add_many("api_response_time", ts, 40.0 + 2.0 * np.cos(ts / 900.0))
    slow.set_statistic("database_query_time", "mean", reason)
    slow_ctx = dataclasses.replace(ctx, store=slow)
    slow_report = msgspec.to_builtins(ROUTES[TaskType.API_OPTIMIZATION](slow_ctx))
    [bottleneck] = slow_report["bottlenecks"]
    assert bottleneck["evidence"].startswith("mean database_query_time 35")
    assert "; mean because every observation" in bottleneck["evidence"]
