"""ROI, timeline, risk and resources of a plan, checked against hand arithmetic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from agent.analysis.bottlenecks import Finding, find_bottlenecks
from agent.analysis.catalog import CATALOG
from agent.analysis.judge import judge
from agent.analysis.series import Series
from agent.planning.playbook import PLAYBOOK
from agent.planning.prioritize import (
    Coverage,
    Gain,
    PlannedItem,
    category_of,
    prioritize,
)
from agent.planning.risk import (
    hours_to_double,
    resource_requirements,
    risk_assessment,
)
from agent.planning.roi import infrastructure_roi, timeline_estimate
from protocols.messages import Phase
from protocols.reports import PhaseTimeline, Requirement, Unaddressed

HOUR = 3600.0
SINK_CACHING = {
    ("multi_level_caching", "redis_cache_hit"): "no memory for a second tier",
    ("multi_level_caching", "api_response_time"): "no memory for a second tier",
}


def findings_of(series: Mapping[str, Sequence[float]], *, hours: float = 1.0) -> list[Finding]:
    judgements = []
    for metric, values in series.items():
        v = np.asarray(values, dtype=np.float64)
        s = Series(ts=np.arange(v.size, dtype=np.float64) * hours * HOUR, values=v)
        judgements.append(judge(CATALOG[metric], s, target=target_of(metric)))
    return find_bottlenecks(judgements)


def target_of(metric: str) -> float:
    """The catalog's target; a throughput has none, so these tests configure 1 000 msg/s."""
    target = CATALOG[metric].target
    return 1000.0 if target is None else target


def spec_example(*, api_hours: float = 1.0) -> list[Finding]:
    """API p95 ≈ 150 ms vs 100 (declining), Redis hit 78 % vs 95 %."""
    api = findings_of(
        {"api_response_time": list(np.linspace(100.0, 150.0 / 0.98, 24))}, hours=api_hours
    )
    redis = findings_of({"redis_cache_hit": [78.0] * 24})
    return find_bottlenecks([f.judgement for f in api + redis])


def item(key: str, phase: Phase, *found: Finding, gain: float | None = None) -> PlannedItem:
    """A hand-made plan item: ``key`` fixing ``found`` with ``gain`` % (the prior by default)."""
    a = PLAYBOOK[key]
    expected = a.impact_expected if gain is None else gain
    covers = tuple(
        Coverage(
            finding=f,
            category=category_of(f.judgement.spec),
            gain=Gain(a.impact_low, expected, a.impact_high),
            score=50.0,
            relative_weight=1.0,
            effort_share_weeks=a.effort_weeks,
        )
        for f in found
    )
    return PlannedItem(
        recommendation_id=f"rec-{key}",
        approach=a,
        covers=covers,
        score=50.0,
        phase=phase,
        rationale="",
        order=0,
    )


# --- ROI ------------------------------------------------------------------------------------


def test_roi_of_the_example_without_caching_is_the_weighted_gain_per_target() -> None:
    found = spec_example()
    items = prioritize("t", found, sinking=SINK_CACHING)  # TTL tuning (25 %), queries (55 %)
    roi = infrastructure_roi(items, found)
    # (0.35·0.55 + 0.20·0.25) / (0.35 + 0.20) = 0.2425 / 0.55
    assert roi.figures.estimated_total_performance_gain_pct == pytest.approx(44.09, abs=0.005)
    # redis_cache_hit is the only breached infrastructure-efficiency metric: 25 %
    assert roi.figures.estimated_infrastructure_efficiency_pct == 25.0
    assert roi.figures.implementation_effort == "4 engineer-weeks over 2 items"
    targets = {t.metric: t for t in roi.derivation.targets}
    assert targets["api_response_time"].weight == 0.35
    assert targets["api_response_time"].combined_gain_pct == 55.0
    assert targets["redis_cache_hit"].items[0].approach == "cache_ttl_tuning"


def test_roi_of_the_example_with_one_caching_item_counts_it_on_both_targets() -> None:
    found = spec_example()
    roi = infrastructure_roi(prioritize("t", found), found)
    assert roi.figures.estimated_total_performance_gain_pct == 65.0  # 65 % on both
    assert roi.figures.estimated_infrastructure_efficiency_pct == 65.0
    assert roi.figures.implementation_effort == "4 engineer-weeks over 1 item"


def test_gains_on_one_metric_combine_as_independent_reductions_and_capacity_is_capped() -> None:
    (api,) = findings_of({"api_response_time": [200.0] * 12})
    (ws,) = findings_of({"websocket_throughput": [400.0] * 12})
    items = [
        item("query_optimization", "Phase_1_Critical", api, gain=50.0),
        item("batched_async_processing", "Phase_2_High", api, gain=40.0),
        item("websocket_clustering", "Phase_1_Critical", ws),  # 400 % counts as 100 %
    ]
    roi = infrastructure_roi(items, [api, ws])
    # api: 1 − 0.5·0.6 = 0.7; ws: 1.0; (0.35·0.7 + 0.25·1.0) / 0.6
    assert roi.figures.estimated_total_performance_gain_pct == pytest.approx(82.5)
    assert roi.figures.estimated_infrastructure_efficiency_pct == 0.0
    assert "none breached" in roi.derivation.infrastructure_efficiency


def test_a_finding_no_item_fixes_counts_zero_and_no_findings_give_zero() -> None:
    found = spec_example()
    items = prioritize("t", found, symptoms=frozenset({"api_response_time"}))
    roi = infrastructure_roi(items, found)
    # Only Redis is fixed, by TTL tuning (25 %: caching for Redis alone scores lower):
    # 0.20·0.25 / (0.35 + 0.20)
    assert [i.approach.key for i in items] == ["cache_ttl_tuning"]
    assert roi.figures.estimated_total_performance_gain_pct == pytest.approx(
        100 * 0.05 / 0.55, abs=0.005
    )
    empty = infrastructure_roi([], [])
    assert empty.figures.estimated_total_performance_gain_pct == 0.0
    assert empty.figures.implementation_effort == "0 engineer-weeks over 0 items"


# --- timeline -------------------------------------------------------------------------------


def test_timeline_splits_a_phase_over_engineers_and_runs_phases_in_order() -> None:
    (api,) = findings_of({"api_response_time": [200.0] * 12})
    items = [
        item("multi_level_caching", "Phase_1_Critical", api),  # 4 wk: engineer A, 0–4
        item("connection_pooling", "Phase_1_Critical", api),  # 1 wk: engineer B, 0–1
        item("read_replicas", "Phase_1_Critical", api),  # 2 wk: B, after pooling, 1–3
        item("query_optimization", "Phase_2_High", api),  # 3 wk: 4–7
    ]
    t = timeline_estimate(items, engineers=2)
    assert t.phases["Phase_1_Critical"] == PhaseTimeline(
        items=3, engineer_weeks=7.0, weeks=4.0, start_week=0.0, end_week=4.0
    )
    assert t.phases["Phase_2_High"].weeks == 3.0
    assert t.phases["Phase_3_Medium"].weeks == 0.0
    assert t.total_weeks == 7.0
    assert timeline_estimate(items, engineers=1).total_weeks == 10.0
    assert "2 engineers" in t.basis


def test_timeline_waits_for_a_required_item_even_with_an_engineer_free() -> None:
    (db,) = findings_of({"database_query_time": [120.0] * 12})
    items = [
        item("connection_pooling", "Phase_1_Critical", db),  # 0–1
        item("read_replicas", "Phase_1_Critical", db),  # requires pooling: 1–3
    ]
    assert timeline_estimate(items, engineers=3).total_weeks == 3.0
    assert timeline_estimate([], engineers=2).total_weeks == 0.0
    with pytest.raises(ValueError, match="at least 1"):
        timeline_estimate(items, engineers=0)


# --- risk and resources ---------------------------------------------------------------------


def test_risk_is_raised_for_a_fast_declining_target() -> None:
    found = spec_example()
    api = next(f for f in found if f.metric == "api_response_time")
    # miss ≈ 50.4 ms at ≈ 2.31 ms/h: doubles in ≈ 22 h, well within a week
    hours = hours_to_double(api)
    assert hours is not None
    assert hours == pytest.approx(22, abs=1)
    items = prioritize("t", found, sinking=SINK_CACHING)
    risk = risk_assessment(items, found)
    by_approach = {r.approach: r for r in risk.items}
    assert by_approach["query_optimization"].playbook_risk_level == "medium"
    assert by_approach["query_optimization"].risk_level == "high"
    assert "api_response_time worsens fast" in by_approach["query_optimization"].risk_of_delay
    assert by_approach["cache_ttl_tuning"].risk_level == "low"  # Redis is stable
    assert by_approach["cache_ttl_tuning"].risk_of_delay is None
    assert risk.overall == "high"
    assert risk.by_level == {"low": 1, "medium": 0, "high": 1}


def test_a_slow_decline_does_not_raise_the_risk() -> None:
    found = spec_example(api_hours=30.0)  # the same rise over 30 days
    api = next(f for f in found if f.metric == "api_response_time")
    assert api.judgement.trend.declining
    hours = hours_to_double(api)
    assert hours is not None
    assert hours > 168
    items = prioritize("t", found, sinking=SINK_CACHING)
    levels = {r.approach: r.risk_level for r in risk_assessment(items, found).items}
    assert levels == {"cache_ttl_tuning": "low", "query_optimization": "medium"}


def test_an_unfixed_critical_finding_makes_the_plan_high_risk_and_a_healthy_one_is_low() -> None:
    found = spec_example()
    sinking = {**SINK_CACHING, ("cache_ttl_tuning", "redis_cache_hit"): "TTLs set by a vendor"}
    items = prioritize("t", found, sinking=sinking)
    risk = risk_assessment(items, found)
    assert risk.unaddressed == [Unaddressed(metric="redis_cache_hit", severity="critical")]
    assert risk.overall == "high"
    healthy = risk_assessment([], [])
    assert (healthy.overall, healthy.items, healthy.unaddressed) == ("low", [], [])


def test_resource_requirements_come_from_the_playbook() -> None:
    found = spec_example()
    items = prioritize("t", found, sinking=SINK_CACHING)
    needs = resource_requirements(items)
    assert needs.engineer_weeks == {
        "Phase_1_Critical": 1.0,
        "Phase_2_High": 3.0,
        "Phase_3_Medium": 0.0,
        "Phase_4_Low": 0.0,
        "total": 4.0,
    }
    costs = {c.approach: c.cost for c in needs.infrastructure}
    assert costs["cache_ttl_tuning"] == PLAYBOOK["cache_ttl_tuning"].infra_cost
    prerequisites = {p.approach: p for p in needs.prerequisites}
    assert prerequisites["query_optimization"].prerequisites == list(
        PLAYBOOK["query_optimization"].prerequisites
    )
    caching = resource_requirements(prioritize("t", found)).prerequisites[0]
    assert caching.requires == [Requirement(approach="cache_ttl_tuning", in_plan=False)]
