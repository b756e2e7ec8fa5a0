"""Prioritising findings into a plan: choice, merging, scores, phases, order, sinking."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.bottlenecks import Finding, find_bottlenecks
from agent.analysis.catalog import CATALOG
from agent.analysis.judge import Judgement, judge
from agent.analysis.series import Series
from agent.analysis.trend import TrendResult
from agent.learning.model import Gain
from agent.planning.playbook import PLAYBOOK
from agent.planning.prioritize import (
    CATEGORY,
    PHASES,
    BusinessWeights,
    PlannedItem,
    category_of,
    does_no_good,
    phase_for,
    prioritize,
    score_candidate,
    sunk_candidates,
)
from agent.planning.recommend import recommendation_id
from agent.planning.risk import resource_requirements, risk_assessment
from agent.planning.roi import infrastructure_roi, timeline_estimate
from protocols.messages import BusinessImpactWeights

HOUR = 3600.0


def findings_of(
    series: Mapping[str, Sequence[float]],
    *,
    hours: float = 1.0,
    targets: Mapping[str, float] | None = None,
) -> list[Finding]:
    """Judge each metric's samples (one every ``hours``) on its target, then rank.

    The target is ``targets``' or else the catalog's (throughputs have none there: their
    target depends on the deployment, so a test names it).
    """
    judgements = []
    for metric, values in series.items():
        v = np.asarray(values, dtype=np.float64)
        s = Series(ts=np.arange(v.size, dtype=np.float64) * hours * HOUR, values=v)
        target = (targets or {}).get(metric, CATALOG[metric].target)
        judgements.append(judge(CATALOG[metric], s, target=target))
    return find_bottlenecks(judgements)


WEBSOCKET_TARGET = {"websocket_throughput": 1000.0}


API_DECLINING = list(np.linspace(100.0, 150.0 / 0.98, 24))
"""p95 ≈ 150 ms against 100 (1.5×, high), rising ≈ 2.3 ms/h: declining."""
REDIS_78 = [78.0] * 24
"""78 % against 95 %: (100 − 78)/(100 − 95) = 4.4× the error budget, critical."""


def spec_example() -> list[Finding]:
    return findings_of({"api_response_time": API_DECLINING, "redis_cache_hit": REDIS_78})


def by_key(items: Sequence[PlannedItem]) -> dict[str, PlannedItem]:
    return {item.approach.key: item for item in items}


# --- the swarm's worked example (docs/design.md) ----------------------------------------


def test_the_example_findings_read_as_the_design_says() -> None:
    redis, api = spec_example()
    assert (redis.metric, redis.severity, redis.urgency) == ("redis_cache_hit", "critical", 100)
    assert redis.judgement.ratio == pytest.approx(4.4)
    assert (api.metric, api.severity) == ("api_response_time", "high")
    assert api.judgement.trend.declining
    assert api.urgency == 100  # min(100, 1.5 × 50 × 1.5)


def test_one_caching_item_fixes_both_targets_of_the_example_in_phase_1() -> None:
    items = prioritize("t-1", spec_example())
    # Multi-level caching acts on cache_efficiency and processing_latency: one 4-week
    # project charged 2 weeks per target beats TTL tuning for Redis (59.4) and query
    # optimisation for the API (62.9).
    assert [i.approach.key for i in items] == ["multi_level_caching"]
    (item,) = items
    assert sorted(item.targets) == ["api_response_time", "redis_cache_hit"]
    assert item.primary.metric == "api_response_time"  # the better-scoring target
    # API: 100 × (0.45·1 + 0.30·0.65 + 0.25·1) × 1/(1 + 2/8) = 71.6
    assert item.score == pytest.approx(71.6)
    # Redis: 100 × (0.45·1 + 0.30·0.65 + 0.25·0.20/0.35) × 0.8 = 63.03
    assert item.covers[1].score == pytest.approx(100 * (0.45 + 0.195 + 0.25 * 0.2 / 0.35) * 0.8)
    assert item.phase == "Phase_1_Critical"  # driven by the critical Redis miss
    assert item.driving.metric == "redis_cache_hit"
    assert item.recommendation_id == recommendation_id(
        "t-1", "api_response_time", "multi_level_caching"
    )
    assert "needs cache_ttl_tuning first (not in this plan)" in item.rationale
    assert "next best for api_response_time: query_optimization 62.9" in item.rationale
    entry = item.to_entry()
    assert (entry.target, entry.backend_strategic_score) == ("api_response_time", 71.6)


def test_the_example_without_caching_puts_redis_in_phase_1_before_the_api_in_phase_2() -> None:
    reason = "no memory budget for a second cache tier"
    sinking = {
        ("multi_level_caching", "redis_cache_hit"): reason,
        ("multi_level_caching", "api_response_time"): reason,
    }
    items = prioritize("t-1", spec_example(), sinking=sinking)
    assert [(i.approach.key, i.targets, i.phase) for i in items] == [
        ("cache_ttl_tuning", ("redis_cache_hit",), "Phase_1_Critical"),
        ("query_optimization", ("api_response_time",), "Phase_2_High"),
    ]
    ttl, query = items
    # 100 × (0.45 + 0.30·0.25 + 0.25·0.2/0.35) × 1/(1 + 1/8)
    assert ttl.score == pytest.approx(100 * (0.45 + 0.075 + 0.25 * 0.2 / 0.35) / 1.125)
    assert query.score == pytest.approx(100 * (0.45 + 0.165 + 0.25) / (1 + 3 / 8))
    assert [i.order for i in items] == [0, 1]
    assert "Phase_1_Critical: redis_cache_hit is critical" in ttl.rationale
    assert "Phase_2_High: api_response_time is high" in query.rationale
    # The infeasible approach is not chosen, and each item says why it was passed over.
    assert all(i.approach.key != "multi_level_caching" for i in items)
    assert f"multi_level_caching not chosen for redis_cache_hit: {reason}" in ttl.rationale
    assert [s.approach_key for s in query.skipped] == ["multi_level_caching"]
    assert {
        (s.approach_key, s.metric, s.reason) for s in sunk_candidates(spec_example(), sinking)
    } == {(key, metric, reason) for key, metric in sinking}


def test_a_target_with_every_approach_infeasible_gets_no_item_and_the_reason_is_listed() -> None:
    found = findings_of({"websocket_throughput": [400.0] * 12}, targets=WEBSOCKET_TARGET)
    sinking = {("websocket_clustering", "websocket_throughput"): "no sticky sessions on our LB"}
    assert prioritize("t", found, sinking=sinking) == []
    (sunk,) = sunk_candidates(found, sinking)
    assert sunk.reason == "no sticky sessions on our LB"


def test_calibrated_gain_changes_the_choice_and_is_carried_with_its_verifications() -> None:
    def calibrate(key: str, f: Finding) -> Gain:
        if (key, f.metric) == ("cache_ttl_tuning", "redis_cache_hit"):
            return Gain(low=80.0, expected=90.0, high=95.0, verifications=5)
        a = PLAYBOOK[key]
        return Gain(low=a.impact_low, expected=a.impact_expected, high=a.impact_high)

    items = prioritize("t", spec_example(), calibrate=calibrate)
    ttl, caching = items
    assert (ttl.approach.key, ttl.targets) == ("cache_ttl_tuning", ("redis_cache_hit",))
    assert ttl.expected_gain_pct == 90.0
    assert ttl.primary.gain.verifications == 5
    assert ttl.primary.gain.calibrated
    assert (caching.approach.key, caching.targets) == (
        "multi_level_caching",
        ("api_response_time",),
    )
    assert not caching.primary.gain.calibrated
    # Caching requires TTL tuning, which is now in the plan and ordered first.
    assert "needs cache_ttl_tuning first (earlier in this plan)" in caching.rationale


# --- order, phases, weights -------------------------------------------------------------


def test_an_approach_comes_after_the_one_it_requires_which_is_promoted_to_its_phase() -> None:
    found = findings_of(
        {
            "content_retrieval_time": [450.0] * 12,  # 2.25× → critical
            "database_query_time": [55.0] * 12,  # 1.1× → low
        }
    )
    sinking = {("read_replicas", "database_query_time"): "replica lag breaks checkout reads"}
    # Pools under pressure: pooling and replicas pay off (unmeasured, both rank last).
    items = prioritize("t", found, sinking=sinking, signals={"db_pool_pressure": True})
    assert [i.approach.key for i in items] == ["connection_pooling", "read_replicas"]
    pooling, replicas = items
    assert replicas.targets == ("content_retrieval_time",)
    assert replicas.score > pooling.score  # it would come first on score alone
    assert replicas.phase == "Phase_1_Critical"
    # Pooling alone would be Phase_3 (low finding, score 45.4 ≥ 40); read replicas need it.
    assert pooling.score == pytest.approx(100 * (0.45 * 0.55 + 0.12 + 0.25 * 0.2 / 0.35) / 1.125)
    assert pooling.phase == "Phase_1_Critical"
    assert "promoted, required by read_replicas" in pooling.rationale
    assert "replica lag breaks checkout reads" in pooling.rationale


def test_items_are_ordered_by_phase_then_score() -> None:
    found = findings_of(
        {
            "api_response_time": API_DECLINING,
            "redis_cache_hit": REDIS_78,
            "cpu_utilization": [85.0] * 12,  # 1.21× → medium, urgency 61
        }
    )
    items = prioritize("t", found)
    assert [(i.approach.key, i.phase) for i in items] == [
        ("multi_level_caching", "Phase_1_Critical"),
        ("autoscaling", "Phase_3_Medium"),
    ]
    assert items[1].score == pytest.approx(
        100 * (0.45 * 0.61 + 0.3 * 0.45 + 0.25 * 0.2 / 0.35) / 1.25
    )


def test_raising_the_scalability_weight_moves_the_websocket_item_above_the_api_item() -> None:
    found = findings_of(
        {"websocket_throughput": [400.0] * 12, "api_response_time": [250.0] * 12},
        targets=WEBSOCKET_TARGET,
    )  # both 2.5× → critical, urgency 100
    default = by_key(prioritize("t", found))
    assert list(default) == ["query_optimization", "websocket_clustering"]
    scalable = BusinessWeights(
        api_performance=0.2, scalability=0.5, ai_processing=0.15, infrastructure_efficiency=0.15
    )
    raised = by_key(prioritize("t", found, weights=scalable))
    assert list(raised) == ["websocket_clustering", "query_optimization"]
    assert raised["websocket_clustering"].score > default["websocket_clustering"].score
    assert raised["query_optimization"].score < default["query_optimization"].score


def test_a_healthy_backend_has_no_items_and_nothing_in_phase_1() -> None:
    found = findings_of({"api_response_time": [80.0] * 12, "redis_cache_hit": [97.0] * 12})
    assert found == []
    assert prioritize("t", found) == []


def test_a_symptom_gets_no_item_of_its_own() -> None:
    items = prioritize("t", spec_example(), symptoms=frozenset({"api_response_time"}))
    assert [i.targets for i in items] == [("redis_cache_hit",)]


def test_ids_are_deterministic() -> None:
    assert [i.recommendation_id for i in prioritize("t", spec_example())] == [
        i.recommendation_id for i in prioritize("t", spec_example())
    ]


@pytest.mark.parametrize(
    ("severity", "score", "phase"),
    [
        ("critical", 10.0, "Phase_1_Critical"),
        ("high", 10.0, "Phase_2_High"),
        ("high", 80.0, "Phase_1_Critical"),
        ("medium", 59.9, "Phase_3_Medium"),
        ("medium", 60.0, "Phase_2_High"),
        ("low", 39.9, "Phase_4_Low"),
        ("low", 40.0, "Phase_3_Medium"),
    ],
)
def test_phase_is_the_more_urgent_of_severity_and_score(
    severity: str, score: float, phase: str
) -> None:
    assert phase_for(severity, score) == phase  # type: ignore[arg-type]


def test_score_formula_bounds_and_monotonicity() -> None:
    assert score_candidate(100, 100, 1.0, 0.0) == 100.0
    assert score_candidate(1, 0, 0.0, 1e9) >= 0.0
    base = score_candidate(50, 40, 0.5, 2.0)
    assert score_candidate(60, 40, 0.5, 2.0) > base
    assert score_candidate(50, 50, 0.5, 2.0) > base
    assert score_candidate(50, 40, 0.6, 2.0) > base
    assert score_candidate(50, 40, 0.5, 3.0) < base
    assert score_candidate(50, 400, 0.5, 2.0) == score_candidate(50, 100, 0.5, 2.0)
    assert math.isfinite(score_candidate(math.nan, math.inf, math.nan, math.nan))


# --- the category table and the weights ---------------------------------------------------


def test_every_catalog_metric_has_a_row_in_the_category_table() -> None:
    for spec in CATALOG.values():
        assert (spec.domain, spec.bottleneck_type) in CATEGORY
    assert category_of(CATALOG["websocket_throughput"]) == "scalability"
    assert category_of(CATALOG["api_throughput"]) == "scalability"
    assert category_of(CATALOG["redis_cache_hit"]) == "infrastructure_efficiency"
    assert category_of(CATALOG["report_generation"]) == "ai_processing"
    assert category_of(CATALOG["api_response_time"]) == "api_performance"


def test_weights_default_validate_and_come_from_a_directive() -> None:
    w = BusinessWeights()
    assert (w.api_performance, w.scalability, w.ai_processing, w.infrastructure_efficiency) == (
        0.35,
        0.25,
        0.20,
        0.20,
    )
    assert w.relative("api_performance") == 1.0
    with pytest.raises(ValueError, match="sum to 1"):
        BusinessWeights(api_performance=0.5)
    with pytest.raises(ValueError, match=r"<= 1\.0"):
        BusinessWeights(api_performance=1.2, scalability=-0.2)
    wire = BusinessImpactWeights(
        api_performance=0.1, scalability=0.6, ai_processing=0.1, infrastructure_efficiency=0.2
    )
    assert BusinessWeights.from_wire(wire).scalability == 0.6
    assert BusinessWeights.from_wire(None) == w


# --- any findings at all ------------------------------------------------------------------


@st.composite
def random_findings(draw: st.DrawFn) -> Finding:
    spec = draw(st.sampled_from(list(CATALOG.values())))
    ratio = draw(st.floats(min_value=1.0001, max_value=1e6, allow_nan=False))
    trend = draw(
        st.builds(
            TrendResult,
            trend=st.sampled_from(["improving", "stable", "declining", "unknown"]),
            samples=st.integers(0, 10_000),
            slope_per_hour=st.none() | st.floats(allow_nan=False, allow_infinity=False),
        )
    )
    values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
    j = Judgement(
        spec=spec,
        current=draw(values),
        statistic="mean",
        target=draw(values),
        target_source="catalog",
        ratio=ratio,
        trend=trend,
    )
    assert j.severity is not None
    return Finding(judgement=j, severity=j.severity, urgency=j.urgency, evidence="")


@st.composite
def random_weights(draw: st.DrawFn) -> BusinessWeights:
    parts = draw(st.lists(st.integers(0, 100), min_size=4, max_size=4).filter(any))
    total = sum(parts)
    a, s, ai = (p / total for p in parts[:3])
    return BusinessWeights(a, s, ai, max(0.0, 1.0 - a - s - ai))


gains = st.floats(allow_nan=True, allow_infinity=True)


@given(
    found=st.lists(random_findings(), max_size=12),
    weights=random_weights(),
    sink=st.sets(
        st.tuples(st.sampled_from(list(PLAYBOOK)), st.sampled_from(list(CATALOG))), max_size=10
    ),
    calibration=st.dictionaries(
        st.sampled_from(list(PLAYBOOK)),
        st.tuples(gains, gains, gains, st.integers(-3, 50)),
        max_size=5,
    ),
    engineers=st.integers(1, 5),
)
def test_any_findings_give_a_consistent_plan(
    found: list[Finding],
    weights: BusinessWeights,
    sink: set[tuple[str, str]],
    calibration: dict[str, tuple[float, float, float, int]],
    engineers: int,
) -> None:
    def calibrate(key: str, f: Finding) -> Gain:
        a = PLAYBOOK[key]
        low, mid, high, n = calibration.get(
            key, (a.impact_low, a.impact_expected, a.impact_high, 0)
        )
        return Gain(low=low, expected=mid, high=high, verifications=n)

    sinking = dict.fromkeys(sink, "infeasible")
    items = prioritize("t", found, weights=weights, calibrate=calibrate, sinking=sinking)
    targets = [m for i in items for m in i.targets]
    assert len(targets) == len(set(targets)), "a target is fixed twice"
    assert len({i.approach.key for i in items}) == len(items)
    assert [i.order for i in items] == list(range(len(items)))
    for i in items:
        assert 0.0 <= i.score <= 100.0
        assert all(0.0 <= c.score <= 100.0 and math.isfinite(c.gain.expected) for c in i.covers)
        assert (i.approach.key, i.primary.metric) not in sinking
        i.to_entry()
    phases = [PHASES.index(i.phase) for i in items]
    assert phases == sorted(phases)
    position = {i.approach.key: i.order for i in items}
    for i in items:
        for key in i.approach.requires:
            assert position.get(key, -1) < i.order
    if not found:
        assert items == []
    roi = infrastructure_roi(items, found, weights=weights)
    assert 0.0 <= roi.figures.estimated_total_performance_gain_pct <= 100.0
    assert 0.0 <= roi.figures.estimated_infrastructure_efficiency_pct <= 100.0
    timeline = timeline_estimate(items, engineers=engineers)
    assert math.isfinite(timeline.total_weeks)
    assert timeline.total_weeks >= 0.0
    assert risk_assessment(items, found).overall in {"low", "medium", "high"}
    requirements = resource_requirements(items)
    assert requirements.engineer_weeks["total"] == pytest.approx(
        sum(i.approach.effort_weeks for i in items)
    )


# --- the harmful-skip rule ----------------------------------------------------------------


def test_only_a_calibrated_gain_at_or_below_zero_does_no_good() -> None:
    def g(expected: float, verifications: int, mean_high: float | None = None) -> Gain:
        return Gain(
            low=expected - 30.0,
            expected=expected,
            high=expected + 30.0,
            verifications=verifications,
            mean_low=expected - 10.0,
            mean_high=expected + 10.0 if mean_high is None else mean_high,
        )

    assert does_no_good(g(-5.0, 12))
    assert does_no_good(g(0.0, 3))
    assert does_no_good(g(-1.0, 3, mean_high=20.0))  # expected to hurt: skipped
    assert not does_no_good(g(2.0, 12))
    assert not does_no_good(g(-5.0, 0))  # the playbook's prior never verified anything
