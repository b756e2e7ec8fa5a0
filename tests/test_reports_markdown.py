"""The Markdown report of real results: strategies run on synthetic samples (pure, no server)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pytest

from agent.analysis.series import Series, bucketize
from agent.cli.report import NotAResult, parse_result
from agent.learning.state import LearningState
from agent.reports.charts import theil_sen_line
from agent.reports.markdown import render_markdown
from agent.strategies import api_optimization, strategic_backend_planning
from agent.strategies.base import TaskContext
from agent.strategies.domain import SERIES_POINTS
from protocols import (
    AnalysisReport,
    ErrorInfo,
    PlanningReport,
    TaskParams,
    TaskResult,
    TaskType,
    decode,
)
from protocols import encode as encode_message
from tests import synthetic
from tests.payloads import small_api_metrics

NOW = datetime(2025, 12, 2, 12, 0, tzinfo=UTC)


def as_result(
    task_id: str, task_type: str, report: AnalysisReport | PlanningReport | dict[str, Any]
) -> TaskResult:
    """A completed ``task_result/v1`` around ``report``, as a peer decodes it: typed, once."""
    result = TaskResult(
        task_id=task_id,
        task_type=task_type,
        agent_id="prometheus-backend",
        status="completed",
        started_at=NOW,
        completed_at=NOW,
        duration_ms=42.0,
    )
    sent: dict[str, Any] = msgspec.to_builtins(result)
    sent["report"] = msgspec.to_builtins(report)
    return decode(TaskResult, msgspec.json.encode(sent))


def wire(result: TaskResult) -> dict[str, Any]:
    """``result`` as the JSON on the wire (what the assertions compare the pages with)."""
    out: dict[str, Any] = json.loads(encode_message(result))
    return out


def typed(result: dict[str, Any]) -> TaskResult:
    """A ``task_result/v1`` as JSON, decoded as the ``report`` command decodes it."""
    return decode(TaskResult, json.dumps(result).encode())


def run_analysis(params: dict[str, Any], task_id: str = "api-incident") -> TaskResult:
    ctx = TaskContext(
        task_id=task_id,
        task_type=TaskType.API_OPTIMIZATION,
        now=NOW,
        params=msgspec.convert(params, TaskParams),
    )
    return as_result(task_id, "api_optimization", api_optimization.analyze(ctx))


def run_planning(days: float = 6.0, task_id: str = "plan-6d") -> TaskResult:
    ctx = TaskContext(
        task_id=task_id,
        task_type=TaskType.STRATEGIC_BACKEND_PLANNING,
        now=NOW,
        params=msgspec.convert(synthetic.backend_day(days=days), TaskParams),
        learning=LearningState(),
    )
    return as_result(task_id, "strategic_backend_planning", strategic_backend_planning.analyze(ctx))


def incident_params() -> dict[str, Any]:
    """The database slows, the API follows; labelled traffic for two endpoints and regions."""
    params = synthetic.db_first_incident()
    params["samples"] = synthetic.traffic()["samples"]
    return params


@pytest.fixture(scope="module")
def analysis() -> TaskResult:
    return run_analysis(incident_params())


@pytest.fixture(scope="module")
def planning() -> TaskResult:
    return run_planning()


def table_rows(markdown: str, first_cell: str) -> list[list[str]]:
    """The cells of every table row whose first cell is ``first_cell`` (flag mark dropped)."""
    rows = []
    for line in markdown.splitlines():
        if not line.startswith("| "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and cells[0].removeprefix("⚠ ") == first_cell:
            rows.append(cells)
    return rows


def section(markdown: str, title: str) -> str:
    """The text of the ``## title`` section (up to the next ``## ``)."""
    start = markdown.index(f"\n## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


# --- the series a report now carries -----------------------------------------------------


def test_series_are_the_bucket_medians_of_the_judged_samples(analysis: TaskResult) -> None:
    report = wire(analysis)["report"]
    raw = synthetic.db_first_incident()["metrics"]["database_query_time"]
    ts = np.array([t for t, _ in raw], dtype=float)
    values = np.array([v for _, v in raw], dtype=float)
    series = report["series"]["database_query_time"]
    expected = bucketize(Series(ts=ts, values=values), SERIES_POINTS)
    assert len(series["values"]) == SERIES_POINTS  # 120 samples → 60 buckets of 2
    assert series["bucket_s"] == pytest.approx((ts[-1] - ts[0]) / SERIES_POINTS)
    assert series["timestamps"] == pytest.approx(expected.ts.tolist())
    assert series["values"] == pytest.approx(expected.values.tolist(), rel=1e-5)
    # a bucket of two samples: its median is their mean, at their mean time
    assert series["values"][0] == pytest.approx((values[0] + values[1]) / 2, rel=1e-5)
    assert series["timestamps"][0] == pytest.approx((ts[0] + ts[1]) / 2)
    assert all(a < b for a, b in zip(series["timestamps"], series["timestamps"][1:], strict=False))
    # a bare number has no time axis: judged, but no series
    assert "api_availability" in report["performance"]
    assert "api_availability" not in report["series"]
    # the request rate derived from counters is a series too
    assert len(report["series"]["api_throughput"]["values"]) <= SERIES_POINTS


def test_a_short_series_is_given_sample_by_sample() -> None:
    result = wire(run_analysis({"window": "1h", "metrics": small_api_metrics()}, "small"))
    series = result["report"]["series"]["api_response_time"]
    assert series["bucket_s"] == 0.0
    assert series["values"] == [100.0 + 2 * i for i in range(12)]
    assert set(result["report"]["series"]) == {"api_response_time"}


def test_planning_reports_carry_series_too(planning: TaskResult) -> None:
    report = wire(planning)["report"]
    series = report["series"]
    judged_or_measured = {**report["performance"], **report["measured"]}
    assert set(series) <= set(judged_or_measured)
    assert {"cpu_utilization", "memory_utilization", "redis_cache_hit"} <= set(series)
    assert all(len(s["values"]) <= SERIES_POINTS for s in series.values())
    assert series["cpu_utilization"]["bucket_s"] == pytest.approx(6 * 86_400 / 60, rel=0.01)


def test_old_results_without_series_still_decode() -> None:
    report = wire(run_analysis({"window": "1h", "metrics": small_api_metrics()}, "old"))["report"]
    del report["series"]
    assert msgspec.convert(report, AnalysisReport).series == {}


def test_trend_line_intercept_is_theil_sen() -> None:
    # on an exact line the intercept is the line's value at the first point
    ts = [1_764_000_000.0 + 600.0 * i for i in range(7)]
    values = [50.0 + 3.0 * i / 6 for i in range(7)]  # +3 per hour
    start, end = theil_sen_line(ts, values, 3.0)
    assert start == pytest.approx(50.0)
    assert end == pytest.approx(53.0)
    # one wild point does not move it (the median of y − slope·t)
    values[3] += 1000.0
    assert theil_sen_line(ts, values, 3.0) == pytest.approx((50.0, 53.0))


# --- Markdown of an analysis ---------------------------------------------------------------


def test_analysis_markdown_headline_and_metrics(analysis: TaskResult) -> None:
    md = render_markdown(analysis)
    report = wire(analysis)["report"]
    assert md.startswith("# api_optimization report — task api-incident\n")
    assert "Status completed, answered by prometheus-backend" in md
    performance = report["performance"]
    missing = [m for m, p in performance.items() if not p["meeting_target"]]
    assert f"{len(performance)} metrics judged over 2h: {len(missing)} miss their target" in md
    top = report["bottlenecks"][0]
    assert f"Most urgent: {top['metric']} ({top['severity']}, urgency" in md

    metrics = section(md, "Metrics against their targets")
    db = performance["database_query_time"]
    [row] = table_rows(metrics, "database_query_time")
    assert row[0] == "⚠ database_query_time"  # misses its target: flagged
    assert row[1:6] == [f"{db['current']:.6g}", "50", "ms", "p95", "no"]
    assert row[6] == f"{db['miss_ratio']:.4g}×"
    # the database stepped up at minute 40 and kept climbing: the step, then the trend after it
    assert row[8].startswith("stepped ")
    assert "declining (p " in row[8]
    assert row[9] == f"+{db['trend_detail']['slope_per_hour']:.4g} ms/h"
    assert row[11] == str(db["samples"])
    [cpu] = table_rows(metrics, "cpu_utilization")
    assert cpu[0] == "cpu_utilization"  # meets its target: not flagged
    assert cpu[5] == "yes"


def test_analysis_markdown_ranking_recommendations_and_causes(analysis: TaskResult) -> None:
    md = render_markdown(analysis)
    report = wire(analysis)["report"]
    ranking = section(md, "Bottleneck ranking")
    for rank, b in enumerate(report["bottlenecks"], 1):
        [row] = table_rows(ranking, str(rank))
        assert row[1:5] == [
            b["metric"],
            b["bottleneck_type"],
            b["severity"],
            str(b["optimization_urgency"]),
        ]
    rank = 1 + [b["metric"] for b in report["bottlenecks"]].index("api_response_time")
    assert table_rows(ranking, str(rank))[0][5] == "database_query_time"  # caused by
    recommendations = section(md, "Recommendations")
    for r in report["recommendations"]:
        [row] = table_rows(recommendations, r["recommendation_id"])
        assert row[2:5] == [r["target"], r["approach"], r["expected_improvement"]]
        assert row[7] == "prior (playbook)"  # the expected gain's source
    causes = section(md, "Root causes")
    assert table_rows(causes, "api_response_time")[0][1] == "database_query_time"
    changes = section(md, "Change points and outliers")
    assert any(r[-1] == "worse" for r in table_rows(changes, "database_query_time"))
    patterns = section(md, "Request patterns")
    assert table_rows(patterns, "/api/feed")[0][1] == "75 %"
    assert table_rows(patterns, "eu")[0][1] == "75 %"
    assert "## Service-level objectives" in md
    quality = section(md, "Data quality")
    assert "No data for: error_rate, memory_utilization" in quality
    assert "Too few samples for a trend (fewer than 8): api_availability (1)" in quality
    for absent in ("Phased roadmap", "Capacity projection", "Return on investment"):
        assert f"## {absent}" not in md


# --- Markdown of a plan ------------------------------------------------------------------------


def test_planning_markdown_roadmap_by_phase(planning: TaskResult) -> None:
    md = render_markdown(planning)
    report = wire(planning)["report"]
    plan = report["prioritized_plan"]
    assert plan, "the synthetic backend misses targets: there is a plan"
    roadmap = section(md, "Phased roadmap")
    headings = re.findall(r"^### (Phase \d \w+)", roadmap, flags=re.MULTILINE)
    phases = list(dict.fromkeys(e["implementation_phase"].replace("_", " ") for e in plan))
    assert headings == sorted(phases)  # in phase order
    for phase_heading in headings:
        phase = phase_heading.replace(" ", "_")
        timing = report["timeline_estimate"]["phases"][phase]
        assert f"### {phase_heading} — weeks {timing['start_week']:g}–{timing['end_week']:g}" in md
    for rank, entry in enumerate(plan, 1):
        [row] = table_rows(roadmap, str(rank))
        assert row[1:4] == [entry["recommendation_id"], entry["target"], entry["approach"]]
        assert float(row[4]) == pytest.approx(entry["backend_strategic_score"], abs=0.01)
        # under its own phase's heading
        heading = entry["implementation_phase"].replace("_", " ")
        block = roadmap[roadmap.index(f"### {heading}") :]
        assert entry["recommendation_id"] in block.split("\n### ")[0]
    roi = report["infrastructure_roi"]
    gain = f"{roi['estimated_total_performance_gain_pct']:.4g} %"
    assert f"Expected performance gain: {gain}" in md
    assert f"risk {report['risk_assessment']['overall']}" in md
    timeline = section(md, "Timeline")
    assert (
        f"{report['timeline_estimate']['total_weeks']:g} weeks in all for 2 engineers" in timeline
    )


def test_planning_markdown_capacity_projection(planning: TaskResult) -> None:
    md = render_markdown(planning)
    projections = wire(planning)["report"]["scalability_projections"]
    base = projections["current_baseline"]
    capacity = section(md, "Capacity projection")
    rate = base["api_requests_per_s"]["value"]
    assert table_rows(capacity, "API requests per second")[0][1].startswith(f"{rate:.6g} (")
    model = base["capacity_model"]
    assert model["model"] == "usl"
    assert f"Throughput ceiling: {model['ceiling']:.6g} req/s" in capacity
    growth = base["demand_growth"]
    assert f"+{growth['growth_pct_per_day']:.4g} % per day" in capacity
    for key in ("3_months", "6_months"):
        [row] = table_rows(capacity, f"{key.replace('_', ' ')} ({projections[key]['days']:g} days)")
        expected = projections[key]["api_requests_per_s"]["expected"]
        assert row[1].startswith(f"{expected:,.0f} (" if expected >= 1e4 else f"{expected:.6g} (")
    triggers = {t["metric"]: t for t in projections["scaling_triggers"]}
    for metric, trigger in triggers.items():
        [row] = table_rows(capacity, metric)
        assert row[3] == trigger["status"]
        assert row[1] == f"{trigger['threshold']:g}"
    expected = [t for t in triggers.values() if t["status"] == "expected"]
    assert expected, "memory grows 3 points a day towards its 80 % trigger"
    when = datetime.fromisoformat(expected[0]["expected_at"]).strftime("%Y-%m-%d %H:%M")
    row = table_rows(capacity, expected[0]["metric"])[0]
    assert when in row[5]
    low, _high = expected[0]["days_from_now_range"]
    assert f"({low:.3g}–" in row[6]  # the date's range from the slope's interval


def test_planning_markdown_learning_report(planning: TaskResult) -> None:
    md = render_markdown(planning)
    learning = section(md, "Learning from verified outcomes")
    [row] = table_rows(learning, "Recommendation accuracy")
    # nothing verified: no made-up figure, and nothing to give a source for
    assert row[1:] == ["—", "no verified outcome yet", "—"]
    assert "verifications: 0" in learning


def test_short_history_says_why_there_is_no_projection() -> None:
    md = render_markdown(run_planning(days=1.0, task_id="plan-1d"))
    capacity = section(md, "Capacity projection")
    [row] = table_rows(capacity, "3 months (91 days)")
    assert "projections need at least 3 days" in row[1]


# --- failures and partial results ------------------------------------------------------------


def test_failed_result_shows_its_error() -> None:
    failed = TaskResult(
        task_id="t-failed",
        task_type="cache_optimization",
        agent_id="prometheus-backend",
        status="failed",
        started_at=NOW,
        completed_at=NOW,
        duration_ms=1.5,
        error=ErrorInfo(code="insufficient_data", message="no samples for any cache metric"),
    )
    md = render_markdown(decode(TaskResult, encode_message(failed)))
    assert md.startswith("# cache_optimization report — task t-failed")
    assert "- Error insufficient_data: no samples for any cache metric" in md
    assert "## Error\n\nThe task failed: insufficient_data — no samples for any cache metric" in md
    assert "## Metrics" not in md


def bare_report(**changes: Any) -> dict[str, Any]:
    """The least an analysis report holds: no metric, no bottleneck, nothing to recommend."""
    return {
        "kind": "analysis",
        "analysis_type": "api_optimization",
        "timestamp": "2026-11-29T12:00:00Z",
        "window": "1h",
        "performance": {},
        "bottlenecks": [],
        "recommendations": [],
        **changes,
    }


def completed(report: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "schema": "task_result/v1",
        "task_id": "x",
        "task_type": "api_optimization",
        "agent_id": "prometheus-backend",
        "status": "completed",
        "started_at": "2026-11-29T12:00:00Z",
        "completed_at": "2026-11-29T12:00:01Z",
        "duration_ms": 1.0,
        **({"report": report} if report is not None else {}),
    }


def test_a_result_without_report_or_sections_renders() -> None:
    """A section the report does not have is left out; a result without one says so."""
    md = render_markdown(typed(completed(None)))
    assert md.startswith("# api_optimization report — task x\n")
    assert "- The result holds no report." in md
    assert "\n## " not in md
    md = render_markdown(typed(completed(bare_report())))
    assert "## Metrics" not in md
    assert "No bottleneck: every judged metric meets its target." in md
    assert "Nothing to recommend." in md
    for absent in ("Root causes", "Change points", "Domain findings", "Data quality"):
        assert f"## {absent}" not in md


@pytest.mark.parametrize(
    ("report", "says"),
    [
        ({}, "missing required field `analysis_type` - at `$.report`"),  # untagged: analysis
        (bare_report(performance=[]), "Expected `object`, got `array` - at `$.report.performance`"),
        (bare_report(bottlenecks=[{"metric": None}]), "at `$.report.bottlenecks[0]"),
        (bare_report(findings={"cache": [1, {"a": 2}]}), "at `$.report.findings.cache`"),
        (bare_report(slo={"a": None}), "Expected `object`, got `null` - at `$.report.slo[...]`"),
        (
            {**bare_report(), "kind": "planning"},
            "missing required field `plan_type` - at `$.report`",
        ),
    ],
)
def test_a_malformed_report_is_refused_at_decode(report: dict[str, Any], says: str) -> None:
    """A report no agent would write never reaches a renderer: decoding refuses it, saying
    where (the ``report`` command prints that and exits 2, tests/test_reports_cli.py)."""
    with pytest.raises(NotAResult, match=r"^not a task_result/v1 \(schema_violation\): ") as exc:
        parse_result(json.dumps(completed(report)).encode())
    assert says in str(exc.value)


def test_text_cannot_break_the_markdown(analysis: TaskResult) -> None:
    result = wire(analysis)
    evil = "a|b <script>x</script> *bold* [link](http://x)\nnext"
    result["report"]["bottlenecks"][0]["evidence"] = evil
    md = render_markdown(typed(result))
    [row] = table_rows(section(md, "Bottleneck ranking"), "1")
    assert len(row) == 7  # the pipe did not add a column, the newline did not end the row
    assert row[6] == r"a\|b \<script\>x\</script\> \*bold\* \[link\](http://x) next"
