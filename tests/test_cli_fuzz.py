"""The command line's own decoders and the report renderers, fuzzed: any input is a clean
``UsageError`` / ``NotAResult`` or a rendering, never a crash."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli.common import UsageError
from agent.cli.params import parse_params
from agent.cli.report import NotAResult, parse_result
from agent.reports.html import render_html
from agent.reports.markdown import render_markdown
from agent.reports.text import render_text
from protocols import TaskParams, TaskResult, encode

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
SECTIONS = [
    "performance",
    "bottlenecks",
    "recommendations",
    "series",
    "prioritized_plan",
    "scalability_projections",
    "risk_assessment",
    "timeline_estimate",
    "root_causes",
    "change_points",
    "slo",
    "data_quality",
    "learning_report",
    "infrastructure_roi",
    "request_patterns",
    "findings",
    "window",
    "plan_type",
    "analysis_type",
    "outliers",
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_params_decoder_refuses_cleanly(data: bytes) -> None:
    try:
        params = parse_params(data, "fuzz.json")
    except UsageError as exc:
        message = str(exc)
        assert message.startswith("fuzz.json: ")
    else:
        assert isinstance(params, TaskParams)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_result_decoder_refuses_cleanly(data: bytes) -> None:
    with contextlib.suppress(NotAResult):
        assert isinstance(parse_result(data), TaskResult)


def real_reports() -> list[dict[str, Any]]:
    """An analysis and a plan the agent really made, from the tests' synthetic backends."""
    from agent.cli.analyze import analyze
    from agent.config import Settings
    from protocols import TaskType
    from tests.payloads import small_api_metrics
    from tests.synthetic import backend_day

    settings = Settings(nats_url="nats://127.0.0.1:1")
    out = []
    for task_type, params in (
        (TaskType.API_OPTIMIZATION, {"metrics": small_api_metrics()}),
        (TaskType.STRATEGIC_BACKEND_PLANNING, backend_day(days=4, step_s=600)),
    ):
        body = {**params, "window": "7d"}
        result = analyze(settings, task_type, msgspec.convert(body, TaskParams))
        assert result.report is not None, result.error
        out.append(json.loads(encode(result))["report"])
    return out


REAL = real_reports()


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, (*path, i))] or [path]
    return [path]


def mutated(report: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    out = copy.deepcopy(report)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if path:
        node[path[-1]] = new
    return out


def result_with(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "task_result/v1",
        "task_id": "fuzz-1",
        "task_type": "api_optimization",
        "agent_id": "fuzz",
        "status": "completed",
        "started_at": "2026-11-29T12:00:00Z",
        "completed_at": "2026-11-29T12:00:01Z",
        "duration_ms": 1.0,
        "report": report,
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(SECTIONS), JSON, max_size=6))
def test_renderers_survive_any_report_a_result_may_carry(report: dict[str, Any]) -> None:
    """A file either holds a report the agent could have made (decoded, typed), and it
    renders, or the command refuses it cleanly."""
    try:
        result = parse_result(json.dumps(result_with(report)).encode())
    except NotAResult:
        return
    assert "fuzz-1" in render_markdown(result)
    assert "fuzz-1" in render_text(result)
    assert "fuzz-1" in render_html(result)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_renderers_survive_odd_values_in_real_reports(data: st.DataObject) -> None:
    """A real report with one value replaced (another type, empty, huge, negative…)."""
    report = data.draw(st.sampled_from(REAL))
    paths = leaves(report)
    changed = report
    for _ in range(data.draw(st.integers(1, 3))):
        changed = mutated(changed, data.draw(st.sampled_from(paths)), data.draw(JSON))
    try:
        result = parse_result(json.dumps(result_with(changed)).encode())
    except NotAResult:
        return
    assert "fuzz-1" in render_markdown(result)
    assert "fuzz-1" in render_text(result)
    assert "fuzz-1" in render_html(result)


def test_absurd_projection_horizons_and_huge_numbers_render() -> None:
    """Regressions the fuzzing found: a horizon of 1e300 days made the capacity chart build
    a list that long; a 21-digit integer broke plotly's JSON (a figure's number is a float
    once decoded); a growth under −100 %/day made the curve complex; an id that is a list
    broke a lookup table (now refused at decode)."""
    planning = REAL[1]
    projections = ("scalability_projections",)
    odd = mutated(planning, (*projections, "3_months", "days"), 1e300)
    odd = mutated(odd, (*projections, "3_months", "api_requests_per_s"), {"expected": 120.0})
    odd = mutated(odd, (*projections, "6_months", "api_requests_per_s"), {"expected": 10**20})
    growth = (*projections, "current_baseline", "demand_growth")
    odd = mutated(odd, (*growth, "growth_pct_per_day"), -250.0)
    odd = mutated(odd, (*growth, "ci95_pct_per_day"), [-300.0, 10**20])
    result = parse_result(json.dumps(result_with(odd)).encode())
    page = render_html(result)
    assert 'id="chart-capacity"' in page  # drawn, the impossible stretches left out
    assert "fuzz-1" in render_markdown(result)
    assert "fuzz-1" in render_text(result)
    infra = planning["resource_requirements"]["infrastructure"]
    assert infra, "the plan lists its resources"
    listed = mutated(
        odd, ("resource_requirements", "infrastructure", 0, "recommendation_id"), ["a"]
    )
    with pytest.raises(NotAResult, match=r"at `\$\.report\.resource_requirements"):
        parse_result(json.dumps(result_with(listed)).encode())


def test_series_at_times_no_calendar_holds_are_not_drawn() -> None:
    """A series point at 1e20 s (a float the contract allows) is left out of the chart, not
    a crash of the page."""
    analysis = REAL[0]
    name = next(iter(analysis["series"]))
    odd = mutated(analysis, ("series", name, "timestamps", 0), 1e20)
    page = render_html(parse_result(json.dumps(result_with(odd)).encode()))
    assert "fuzz-1" in page
