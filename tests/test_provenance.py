"""The source of every number: each figure of a report says whether it is measured, the
playbook's prior, calibrated from verified outcomes or assumed — on the wire and in every
rendering (text, Markdown, HTML); a figure whose source the result does not give is
shown as ``source unknown``, never as a bare number (docs/learning.md, "Provenance").

Real reports: the strategies run on inline synthetic samples, with and without a verified
history, as the other report tests do.
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from agent.learning.events import verification_event
from agent.learning.records import PredictionRecord
from agent.learning.state import LearningState, fold
from agent.planning.playbook import PLAYBOOK
from agent.reports.html import render_html
from agent.reports.markdown import render_markdown
from agent.reports.text import render_text
from agent.strategies import api_optimization, strategic_backend_planning
from agent.strategies.base import TaskContext
from protocols import AnalysisReport, PlanningReport, TaskParams, TaskResult, TaskType
from protocols.messages import ImprovementRange, VerificationResult
from tests import synthetic
from tests.test_reports_markdown import NOW, as_result, incident_params, typed, wire

SOURCES = {"measured", "prior", "calibrated", "assumed"}
RENDERERS: dict[str, Callable[[TaskResult], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "html": render_html,
}
ROI_FIGURES = (
    "estimated_total_performance_gain_pct",
    "estimated_infrastructure_efficiency_pct",
    "implementation_effort",
)
VERIFIED = 12
"""Verified outcomes of cache TTL tuning on the Redis hit rate in the calibrated history."""


# --- real reports ------------------------------------------------------------------------


def verified_history(n: int = VERIFIED) -> LearningState:
    """``n`` verified outcomes of cache TTL tuning on redis_cache_hit, each near the
    playbook's 25 % of the shortfall closed, from one plan issued a month ago."""
    approach = PLAYBOOK["cache_ttl_tuning"]
    made = NOW - timedelta(days=30)
    prediction = PredictionRecord(
        recommendation_id="rec-history",
        task_id="t-history",
        plan_id="plan-history",
        baseline_id="baseline-history",
        metric="redis_cache_hit",
        approach=approach.name,
        approach_key=approach.key,
        direction="higher_is_better",
        baseline_value=78.0,
        target_value=95.0,
        expected_improvement_pct=ImprovementRange(low=10.0, expected=25.0, high=40.0),
        expected_value=83.5,
        created_at=made,
    )
    events = [
        verification_event(
            VerificationResult(
                verification_id=f"v-history-{i}",
                plan_id="plan-history",
                recommendation_id="rec-history",
                metric="redis_cache_hit",
                baseline_value=78.0,
                measured_value=78.0 + 22.0 * (0.2 + 0.01 * i),  # 20–31 % of the shortfall
                verified_at=made + timedelta(days=1, hours=i),
            ),
            prediction,
        )
        for i in range(n)
    ]
    return fold(events, [("plan-history", 1)])


def analysis_report(learning: LearningState | None = None) -> AnalysisReport:
    ctx = TaskContext(
        task_id="prov-analysis",
        task_type=TaskType.API_OPTIMIZATION,
        now=NOW,
        params=msgspec.convert(incident_params(), TaskParams),
        learning=learning,
    )
    return api_optimization.analyze(ctx)


def planning_report(learning: LearningState) -> PlanningReport:
    ctx = TaskContext(
        task_id="prov-plan",
        task_type=TaskType.STRATEGIC_BACKEND_PLANNING,
        now=NOW,
        params=msgspec.convert(synthetic.backend_day(days=6.0), TaskParams),
        learning=learning,
    )
    return strategic_backend_planning.analyze(ctx)


# The fixtures are results as JSON (what the assertions read); ``pages`` renders them typed,
# decoded as the ``report`` command decodes them.


@pytest.fixture(scope="module")
def analysis() -> dict[str, Any]:
    return wire(as_result("prov-analysis", "api_optimization", analysis_report()))


@pytest.fixture(scope="module")
def planning() -> dict[str, Any]:
    report = planning_report(LearningState())
    return wire(as_result("prov-plan", "strategic_backend_planning", report))


@pytest.fixture(scope="module")
def calibrated() -> dict[str, Any]:
    report = planning_report(verified_history())
    return wire(as_result("prov-plan-calibrated", "strategic_backend_planning", report))


@pytest.fixture(scope="module", params=["analysis", "planning", "calibrated"])
def result(request: pytest.FixtureRequest) -> dict[str, Any]:
    found: dict[str, Any] = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module", params=["planning", "calibrated"])
def plan(request: pytest.FixtureRequest) -> dict[str, Any]:
    found: dict[str, Any] = request.getfixturevalue(request.param)
    return found


# --- reading a rendering --------------------------------------------------------------------


_UNIT = re.compile(r"<(tr|li|p|h3)\b[^>]*>(.*?)</\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def units(page: str, fmt: str) -> list[str]:
    """What a reader sees as one line: a text line, a Markdown line (escapes undone), an
    HTML table row, list item, paragraph or heading (tags stripped, entities decoded)."""
    if fmt == "html":
        return [html.unescape(_TAG.sub(" ", m.group(2))) for m in _UNIT.finditer(page)]
    if fmt == "markdown":
        return [re.sub(r"\\(.)", r"\1", line) for line in page.splitlines()]
    return page.splitlines()


def shown_with(page: str, fmt: str, *needles: str) -> list[str]:
    """The units showing every one of ``needles``."""
    return [u for u in units(page, fmt) if all(n in u for n in needles)]


def pages(result: dict[str, Any]) -> Iterator[tuple[str, str]]:
    decoded = typed(result)
    for fmt, render in RENDERERS.items():
        yield fmt, render(decoded)


def label(provenance: dict[str, Any]) -> str:
    """The label a rendering must show for ``provenance`` (the docs' words)."""
    source = provenance["source"]
    if source == "prior":
        return "prior (playbook)"
    if source == "calibrated":
        n = provenance["verifications"]
        if n == 0:
            return "calibrated (outcomes on other metrics)"
        return f"calibrated ({n} verification{'' if n == 1 else 's'})"
    return str(source)


def pct(x: float) -> str:
    return f"{x:.4g} %"


# --- the wire -----------------------------------------------------------------------------


def test_the_wire_report_carries_a_source_for_every_recommendation_and_roi_figure() -> None:
    analysed = json.loads(msgspec.json.encode(analysis_report()))
    planned = json.loads(msgspec.json.encode(planning_report(LearningState())))
    for report in (analysed, planned):
        assert report["recommendations"]
        for r in report["recommendations"]:
            gain = r["expected_improvement_pct"]
            assert gain["provenance"]["source"] in {"prior", "calibrated"}, r
            assert gain["level"] == 0.8
            assert {k: p["source"] for k, p in r["provenance"].items()} == {
                "effort_weeks": "prior",
                "risk": "prior",
            }
    roi = planned["infrastructure_roi"]
    assert set(roi["provenance"]) == set(ROI_FIGURES), roi
    assert {p["source"] for p in roi["provenance"].values()} <= SOURCES
    assert roi["provenance"]["implementation_effort"]["source"] == "prior"
    for target in planned["timeline_estimate"]["roi_derivation"]["targets"]:
        assert target["provenance"]["combined_gain_pct"]["source"] in SOURCES
        for item in target["items"]:
            assert item["provenance"]["expected_gain_pct"]["source"] in {"prior", "calibrated"}


def test_the_wire_plan_sections_say_the_source_of_each_figure() -> None:
    report = json.loads(msgspec.json.encode(planning_report(LearningState())))
    timeline = report["timeline_estimate"]["provenance"]
    assert {k: p["source"] for k, p in timeline.items()} == {
        "engineers": "assumed",
        "engineer_weeks": "prior",
        "weeks": "assumed",
        "total_weeks": "assumed",
    }
    assert "default" in timeline["engineers"]["basis"]  # which setting: none, the default
    resources = report["resource_requirements"]["provenance"]
    assert {p["source"] for p in resources.values()} == {"prior"}
    risk = report["risk_assessment"]
    assert risk["provenance"]["overall"]["source"] in SOURCES
    assert all(i["provenance"]["risk_level"]["source"] == "prior" for i in risk["items"])

    projections = report["scalability_projections"]
    base = projections["current_baseline"]
    for key in ("api_requests_per_s", "websocket_connections", "concurrent_users"):
        assert base[key]["source"] == "measured"
    assert base["capacity_model"]["source"] == base["demand_growth"]["source"] == "measured"
    used = base["utilisation"]
    figures = {k for k, v in used.items() if isinstance(v, int | float)}
    assert figures == set(used["provenance"])  # every figure of it, and only those
    assert used["provenance"]["current_system"]["source"] == "measured"
    gain_source = report["infrastructure_roi"]["provenance"]["estimated_total_performance_gain_pct"]
    assert used["provenance"]["optimised_system"]["source"] == gain_source["source"]
    for key in ("3_months", "6_months"):
        h = projections[key]
        assert h["api_requests_per_s"]["source"] == "measured"
        assert h["websocket_connections"]["source"] == "assumed"  # grows with requests: assumed
        assert h["concurrent_users"]["source"] == "assumed"
        u = h["utilisation"]
        assert set(u["provenance"]) == {
            "ceiling_req_per_s",
            "optimised_ceiling_req_per_s",
            "plan_gain_pct",
            "current_system",
            "optimised_system",
        }
        assert u["provenance"]["plan_gain_pct"] == gain_source
    for trigger in projections["scaling_triggers"]:
        assert trigger["source"] == "measured", trigger


def test_a_verified_history_makes_the_gains_calibrated_on_the_wire() -> None:
    report = json.loads(msgspec.json.encode(planning_report(verified_history())))
    gains = {
        r["target"]: r["expected_improvement_pct"]["provenance"] for r in report["recommendations"]
    }
    assert gains["redis_cache_hit"] == {
        "source": "calibrated",
        "basis": gains["redis_cache_hit"]["basis"],
        "verifications": VERIFIED,
    }
    roi = report["infrastructure_roi"]["provenance"]["estimated_total_performance_gain_pct"]
    everything = all(g["source"] == "calibrated" for g in gains.values())
    assert roi["source"] == ("calibrated" if everything else "prior")
    if everything:
        assert roi["verifications"] == sum(g["verifications"] for g in gains.values())


# --- every rendering ---------------------------------------------------------------------


def test_metric_figures_say_they_are_measured(result: dict[str, Any]) -> None:
    report = result["report"]
    for fmt, page in pages(result):
        for name, perf in report["performance"].items():
            if fmt == "text":  # the terminal's table says it once, in its heading
                assert "(measured from the samples)" in page
                continue
            rows = shown_with(page, fmt, name, f"measured: {perf['samples']} samples")
            assert rows, (fmt, name)


def test_every_recommendation_shows_its_source_range_level_and_mean(
    result: dict[str, Any],
) -> None:
    for fmt, page in pages(result):
        for r in result["report"]["recommendations"]:
            gain = r["expected_improvement_pct"]
            mean = gain["mean_interval"]
            said = shown_with(
                page,
                fmt,
                r["recommendation_id"],
                label(gain["provenance"]),
                "80 % range for one outcome",
                f"mean 95 %: {mean['low']:.4g}–{mean['high']:.4g} %",
            )
            assert said, (fmt, r["recommendation_id"])
            effort = f"{r['effort']} [{label(r['provenance']['effort_weeks'])}]"
            risk = f"{r['risk']} [{label(r['provenance']['risk'])}]"
            assert shown_with(page, fmt, r["recommendation_id"], effort, risk), fmt


def test_every_plan_entry_shows_its_score_terms_and_gain_source(plan: dict[str, Any]) -> None:
    report = plan["report"]
    recs = {r["recommendation_id"]: r for r in report["recommendations"]}
    assert report["prioritized_plan"]
    for fmt, page in pages(plan):
        for entry in report["prioritized_plan"]:
            rid = entry["recommendation_id"]
            assert "[measured]" in entry["score_rationale"]
            gain = recs[rid]["expected_improvement_pct"]
            expected = f"{pct(gain['expected'])} [{label(gain['provenance'])}]"
            assert shown_with(page, fmt, rid, expected, entry["score_rationale"]), (fmt, rid)


def test_roi_figures_show_their_source(plan: dict[str, Any]) -> None:
    report = plan["report"]
    roi = report["infrastructure_roi"]
    shown = {
        "estimated_total_performance_gain_pct": "Expected performance gain: "
        + pct(roi["estimated_total_performance_gain_pct"]),
        "estimated_infrastructure_efficiency_pct": "Infrastructure efficiency: "
        + pct(roi["estimated_infrastructure_efficiency_pct"]),
        "implementation_effort": f"Effort: {roi['implementation_effort']}",
    }
    for fmt, page in pages(plan):
        for key, figure in shown.items():
            p = roi["provenance"][key]
            assert shown_with(page, fmt, f"{figure} [{label(p)}: {p['basis']}]"), (fmt, key)
        headline = roi["provenance"]["estimated_total_performance_gain_pct"]
        gain = (
            f"expected gain {pct(roi['estimated_total_performance_gain_pct'])} [{label(headline)}]"
        )
        assert shown_with(page, fmt, gain), fmt  # the summary line too
        for target in report["timeline_estimate"]["roi_derivation"]["targets"]:
            combined = target["provenance"]["combined_gain_pct"]
            cell = f"{pct(target['combined_gain_pct'])} [{label(combined)}]"
            assert shown_with(page, fmt, target["metric"], target["category"], cell), fmt


def test_timeline_and_resources_show_their_sources(plan: dict[str, Any]) -> None:
    report = plan["report"]
    timeline = report["timeline_estimate"]
    sources = timeline["provenance"]
    for fmt, page in pages(plan):
        assert shown_with(
            page,
            fmt,
            f"{timeline['total_weeks']:g} weeks in all for {timeline['engineers']} engineers "
            f"[weeks: {label(sources['total_weeks'])}; engineers: {label(sources['engineers'])}]",
        ), fmt
        assert shown_with(
            page,
            fmt,
            f"engineer-weeks [{label(sources['engineer_weeks'])}]",
            f"weeks [{label(sources['weeks'])}]",
        ), fmt
        assert shown_with(page, fmt, f"Engineers: assumed: {sources['engineers']['basis']}"), fmt
        for key, p in report["resource_requirements"]["provenance"].items():
            assert shown_with(page, fmt, f"{label(p)}: {p['basis']}"), (fmt, key)
        assert shown_with(page, fmt, "infrastructure [prior (playbook)]"), fmt


def test_risk_figures_show_their_source(plan: dict[str, Any]) -> None:
    report = plan["report"]
    risk = report["risk_assessment"]
    for fmt, page in pages(plan):
        overall = risk["provenance"]["overall"]
        assert shown_with(page, fmt, f"Overall risk: {risk['overall']} [{label(overall)}"), fmt
        for item in risk["items"]:
            p = item["provenance"]["risk_level"]
            assert shown_with(page, fmt, item["recommendation_id"], f"{label(p)}: {p['basis']}")


def test_capacity_figures_show_their_source(plan: dict[str, Any]) -> None:
    report = plan["report"]
    projections = report["scalability_projections"]
    base = projections["current_baseline"]
    plan_gain = report["infrastructure_roi"]["provenance"]["estimated_total_performance_gain_pct"]
    after = f"[{label(plan_gain)}] after the plan"
    for fmt, page in pages(plan):
        for name in ("API requests per second", "WebSocket connections", "Concurrent users"):
            assert shown_with(page, fmt, name, "[measured]"), (fmt, name)
        assert shown_with(page, fmt, "Throughput ceiling:", "[measured]"), fmt
        assert shown_with(page, fmt, "% per day", "[measured: per-bucket req/s"), fmt
        now = f"{base['utilisation']['current_system'] * 100:.4g} % [measured]"
        assert shown_with(
            page, fmt, "Utilisation of the ceiling now: " + now, f"[{label(plan_gain)}]"
        )
        for key in ("3_months", "6_months"):
            row = shown_with(
                page, fmt, f"{key.replace('_', ' ')} ({projections[key]['days']:g} days)"
            )
            assert len(row) == 1, (fmt, key)
            assert row[0].count("[measured]") == 2, row  # req/s and the ceiling used now
            assert row[0].count("[assumed]") == 2, row  # connections and users
            assert after in row[0], row
        for trigger in projections["scaling_triggers"]:
            assert shown_with(page, fmt, trigger["metric"], "measured: level, slope and date")


def test_the_learning_report_says_it_is_measured_from_verified_outcomes(
    calibrated: dict[str, Any],
) -> None:
    learning = calibrated["report"]["learning_report"]
    assert learning["verified_outcomes"] == VERIFIED
    for fmt, page in pages(calibrated):
        assert shown_with(
            page, fmt, "Recommendation accuracy", f"measured: {VERIFIED} verified outcomes"
        ), fmt
        assert shown_with(page, fmt, "cache_ttl_tuning", f"measured: {VERIFIED} verified outcomes")
        assert shown_with(page, fmt, f"calibrated ({VERIFIED} verifications)"), fmt


# --- a report that does not say -------------------------------------------------------------


def stripped(value: Any, keys: frozenset[str]) -> Any:
    """``value`` with every ``keys`` entry of every object in it removed."""
    if isinstance(value, dict):
        return {k: stripped(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [stripped(v, keys) for v in value]
    return value


def test_without_provenance_every_figure_says_source_unknown(planning: dict[str, Any]) -> None:
    """Every figure's ``provenance`` and ``source`` left out (the fields a report may omit;
    a recommendation's ``calibrated`` flag it may not, so the gain keeps its source)."""
    bare = stripped(copy.deepcopy(planning), frozenset({"provenance", "source"}))
    report = bare["report"]
    # the business weights' ``source`` says whose weights they are, not where a figure is from
    weights = planning["report"]["data_quality"].get("business_weights")
    if weights is not None:
        report["data_quality"]["business_weights"] = weights
    unknown = "source unknown"
    for fmt, page in pages(bare):
        for r in report["recommendations"]:
            rid = r["recommendation_id"]
            row = shown_with(page, fmt, rid, r["expected_improvement"])
            assert row, (fmt, rid)
            assert all(unknown in u for u in row), (fmt, row)
            assert shown_with(page, fmt, rid, f"{r['effort']} [{unknown}]"), (fmt, rid)
        for entry in report["prioritized_plan"]:
            assert shown_with(page, fmt, entry["recommendation_id"], f"[{unknown}]"), fmt
        gain = pct(report["infrastructure_roi"]["estimated_total_performance_gain_pct"])
        assert shown_with(page, fmt, f"Expected performance gain: {gain} [{unknown}]"), fmt
        assert shown_with(page, fmt, f"[weeks: {unknown}; engineers: {unknown}]"), fmt
        assert shown_with(page, fmt, f"engineer-weeks [{unknown}]"), fmt
        assert shown_with(page, fmt, "API requests per second", f"[{unknown}]"), fmt
        assert shown_with(page, fmt, "3 months (91 days)", f"[{unknown}]"), fmt
        assert shown_with(
            page, fmt, f"Overall risk: {report['risk_assessment']['overall']} [{unknown}]"
        ), fmt


def test_an_older_sender_is_read_from_its_calibrated_flag(calibrated: dict[str, Any]) -> None:
    """Reports from before ``provenance`` still say prior or calibrated (n verifications)."""
    old = stripped(copy.deepcopy(calibrated), frozenset({"provenance"}))
    for fmt, page in pages(old):
        for r in old["report"]["recommendations"]:
            said = label({"source": "calibrated" if r["calibrated"] else "prior", **r})
            assert shown_with(page, fmt, r["recommendation_id"], said), (fmt, r["target"])
