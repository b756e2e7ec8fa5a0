"""One way to choose a fix: reports (``recommend``) and the plan (``prioritize``) agree.

Both take a finding's approaches from ``rank_candidates``; an approach whose ``needs``
is measured absent is no candidate, one whose need nobody measured ranks last.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.bottlenecks import Finding
from agent.analysis.catalog import CATALOG
from agent.learning.model import Gain
from agent.planning import prioritize as prioritize_module
from agent.planning import recommend as recommend_module
from agent.planning.playbook import CONDITIONS, PLAYBOOK
from agent.planning.prioritize import (
    BusinessWeights,
    Signals,
    prioritize,
    rank_candidates,
    sunk_candidates,
)
from agent.planning.recommend import APPROACHES_PER_SEVERITY, recommend
from agent.strategies import api_optimization, strategic_backend_planning
from agent.strategies.base import TaskContext
from protocols import TaskParams, TaskType
from tests.test_planning_prioritize import findings_of, random_findings, random_weights

POOLS = "db_pool_pressure"
HEALTHY = "connection pools healthy: no sign of pool pressure"


def slow_database() -> list[Finding]:
    """database_query_time at 75 ms against 50: 1.5×, high (a missing index, say)."""
    (finding,) = findings_of({"database_query_time": [75.0] * 12})
    assert finding.judgement.spec.bottleneck_type == "database_latency"
    return [finding]


def first_recommended(found: list[Finding], **kwargs: Any) -> dict[str, str]:
    """Metric → the key of the first approach ``recommend`` gives it."""
    by_name = {a.name: a.key for a in PLAYBOOK.values()}
    first: dict[str, str] = {}
    for r in recommend("t", found, **kwargs):
        first.setdefault(r.target, by_name[r.approach])
    return first


def planned(found: list[Finding], **kwargs: Any) -> dict[str, str]:
    """Metric → the key of the approach the plan chose for it."""
    items = prioritize("t", found, **kwargs)
    return {m: i.approach.key for i in items for m in i.targets}


# --- a slow database and the pool-pressure signal ----------------------------------------


@pytest.mark.parametrize("signals", [{}, {POOLS: None}], ids=["no entry", "None"])
def test_unmeasured_pool_pressure_puts_indexing_first_for_a_slow_database(
    signals: Signals,
) -> None:
    found = slow_database()
    # On score alone pooling (1 week) would win; unmeasured, it ranks after indexing.
    assert first_recommended(found, signals=signals) == {
        "database_query_time": "query_optimization"
    }
    (item,) = prioritize("t", found, signals=signals)
    assert item.approach.key == "query_optimization"
    assert item.skipped == ()  # still candidates: nothing was measured
    assert (
        "connection_pooling ranked after every approach with no unmet need for "
        "database_query_time: pool pressure not measured"
    ) in item.rationale
    assert "read_replicas ranked after" in item.rationale
    (choice,) = rank_candidates(found, signals=signals).values()
    assert [c.approach.key for c in choice.ranked] == [
        "query_optimization",
        "connection_pooling",
        "read_replicas",
    ]
    assert [c.unmeasured for c in choice.ranked] == [None, POOLS, POOLS]
    assert choice.ranked[1].score > choice.ranked[0].score  # demoted despite its score
    # A high finding gets two: indexing, then the best of the unconfirmed.
    recs = recommend("t", found, signals=signals)
    assert [r.approach for r in recs] == [
        PLAYBOOK["query_optimization"].name,
        PLAYBOOK["connection_pooling"].name,
    ]


def test_healthy_pools_drop_pooling_and_replicas_and_say_why() -> None:
    found = slow_database()
    signals = {POOLS: False}
    recs = recommend("t", found, signals=signals)
    assert [r.approach for r in recs] == [PLAYBOOK["query_optimization"].name]
    (item,) = prioritize("t", found, signals=signals)
    assert item.approach.key == "query_optimization"
    assert [(s.approach_key, s.reason) for s in item.skipped] == [
        ("connection_pooling", HEALTHY),
        ("read_replicas", HEALTHY),
    ]
    assert f"connection_pooling not chosen for database_query_time: {HEALTHY}" in item.rationale
    assert "not measured" not in item.rationale
    assert [
        (s.approach_key, s.metric, s.reason) for s in sunk_candidates(found, {}, signals=signals)
    ] == [
        ("connection_pooling", "database_query_time", HEALTHY),
        ("read_replicas", "database_query_time", HEALTHY),
    ]
    assert sunk_candidates(found, {}) == []


def test_pool_pressure_seen_lets_pooling_win_on_its_score() -> None:
    found = slow_database()
    signals = {POOLS: True}
    assert first_recommended(found, signals=signals) == {
        "database_query_time": "connection_pooling"
    }
    (item,) = prioritize("t", found, signals=signals)
    assert item.approach.key == "connection_pooling"
    assert "not measured" not in item.rationale
    assert item.skipped == ()
    (choice,) = rank_candidates(found, signals=signals).values()
    scores = [c.score for c in choice.ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(c.unmeasured is None for c in choice.ranked)


def test_an_unconfirmed_choice_says_so() -> None:
    found = slow_database()
    sinking = {("query_optimization", "database_query_time"): "no DBA time this quarter"}
    (item,) = prioritize("t", found, sinking=sinking)
    assert item.approach.key == "connection_pooling"  # the best of what is left
    assert (
        "connection_pooling chosen for database_query_time unconfirmed: pool pressure not measured"
    ) in item.rationale


def test_the_implementers_word_comes_first_when_both_rule_an_approach_out() -> None:
    found = slow_database()
    sinking = {("connection_pooling", "database_query_time"): "pgbouncer already in place"}
    skipped = sunk_candidates(found, sinking, signals={POOLS: False})
    assert [(s.approach_key, s.reason) for s in skipped] == [
        ("connection_pooling", "pgbouncer already in place"),
        ("read_replicas", HEALTHY),
    ]


def test_an_unknown_condition_is_worded_from_its_key() -> None:
    assert prioritize_module._absent("gpu_idle") == "gpu_idle measured absent"
    assert prioritize_module._unmeasured("gpu_idle") == "gpu_idle not measured"


# --- one definition of each shared piece ---------------------------------------------------


def test_recommend_reexports_the_plans_prior_calibration_type_and_ids() -> None:
    assert recommend_module.prior is prioritize_module.prior
    assert recommend_module.Calibration is prioritize_module.Calibration
    assert recommend_module.recommendation_id is prioritize_module.recommendation_id
    assert api_optimization.recommendation_id is prioritize_module.recommendation_id


# --- the same data through a report and a plan -----------------------------------------------

NOW = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)


def _ctx(task_type: TaskType, metrics: Mapping[str, object]) -> TaskContext:
    return TaskContext(
        task_id="t-1",
        task_type=task_type,
        now=NOW,
        params=msgspec.convert({"window": "1h", "metrics": dict(metrics)}, TaskParams),
    )


def test_an_api_report_and_the_plan_name_the_same_fix_for_a_missing_index() -> None:
    # A missing index: the database is slow, everything else meets its target.
    metrics = {"database_query_time": 80.0, "api_throughput": 800.0, "error_rate": 0.1}
    report = api_optimization.analyze(_ctx(TaskType.API_OPTIMIZATION, metrics))
    plan = strategic_backend_planning.analyze(_ctx(TaskType.STRATEGIC_BACKEND_PLANNING, metrics))
    assert [b.metric for b in report.bottlenecks] == ["database_query_time"]
    assert report.recommendations[0].approach == PLAYBOOK["query_optimization"].name
    assert [(e.target, e.approach) for e in plan.prioritized_plan] == [
        ("database_query_time", PLAYBOOK["query_optimization"].name)
    ]


# --- any findings: the report's first fix is the plan's fix -----------------------------------

signal_maps = st.dictionaries(
    st.sampled_from([*sorted(CONDITIONS), "not_a_condition"]), st.none() | st.booleans()
)
gains = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def calibrations(draw: st.DrawFn) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    return draw(
        st.dictionaries(
            st.tuples(st.sampled_from(list(PLAYBOOK)), st.sampled_from(list(CATALOG))),
            st.tuples(gains, gains, gains, st.integers(-3, 50)),
            max_size=6,
        )
    )


@given(
    found=st.lists(random_findings(), max_size=12),
    weights=random_weights(),
    sink=st.sets(
        st.tuples(st.sampled_from(list(PLAYBOOK)), st.sampled_from(list(CATALOG))), max_size=10
    ),
    calibration=calibrations(),
    symptoms=st.frozensets(st.sampled_from(list(CATALOG)), max_size=4),
    signals=signal_maps,
)
def test_the_first_recommendation_is_always_the_plans_choice(
    found: list[Finding],
    weights: BusinessWeights,
    sink: set[tuple[str, str]],
    calibration: dict[tuple[str, str], tuple[float, float, float, int]],
    symptoms: frozenset[str],
    signals: dict[str, bool | None],
) -> None:
    def calibrate(key: str, f: Finding) -> Gain:
        a = PLAYBOOK[key]
        low, mid, high, n = calibration.get(
            (key, f.metric), (a.impact_low, a.impact_expected, a.impact_high, 0)
        )
        return Gain(low=low, expected=mid, high=high, verifications=n)

    inputs: dict[str, Any] = {
        "weights": weights,
        "calibrate": calibrate,
        "symptoms": symptoms,
        "sinking": dict.fromkeys(sink, "infeasible"),
        "signals": signals,
    }
    chosen = planned(found, **inputs)
    first = first_recommended(found, **inputs)
    # Same metrics get a fix (none for a symptom or a metric with every approach ruled
    # out), and the same first fix.
    assert first == chosen
    for f in found:
        assert (f.metric in chosen) == (f.metric not in symptoms and f.metric in first)


@given(
    found=st.lists(random_findings(), max_size=10, unique_by=lambda f: f.metric),
    weights=random_weights(),
    sink=st.sets(
        st.tuples(st.sampled_from(list(PLAYBOOK)), st.sampled_from(list(CATALOG))), max_size=10
    ),
    signals=signal_maps,
)
def test_needs_rule_the_candidates_of_reports_and_plans_alike(
    found: list[Finding],
    weights: BusinessWeights,
    sink: set[tuple[str, str]],
    signals: dict[str, bool | None],
) -> None:
    sinking = dict.fromkeys(sink, "infeasible")
    by_name = {a.name: a for a in PLAYBOOK.values()}

    def state(key: str) -> bool | None:
        need = PLAYBOOK[key].needs
        return True if need is None else signals.get(need)

    recs = recommend("t", found, weights=weights, sinking=sinking, signals=signals)
    per_metric: dict[str, list[str]] = {}
    for r in recs:
        per_metric.setdefault(r.target, []).append(by_name[r.approach].key)
    severity = {f.metric: f.severity for f in found}
    for metric, keys in per_metric.items():
        assert len(keys) <= APPROACHES_PER_SEVERITY[severity[metric]]
        unmet = [state(k) is None for k in keys]
        assert unmet == sorted(unmet), "an unmeasured need ranked before a met one"
        assert all(state(k) is not False and (k, metric) not in sinking for k in keys)

    for choice in rank_candidates(
        found, weights=weights, sinking=sinking, signals=signals
    ).values():
        flags = [c.unmeasured is not None for c in choice.ranked]
        assert flags == sorted(flags)
        for group in (True, False):
            scores = [c.score for c in choice.ranked if (c.unmeasured is not None) == group]
            assert scores == sorted(scores, reverse=True)

    items = prioritize("t", found, weights=weights, sinking=sinking, signals=signals)
    for item in items:
        assert state(item.approach.key) is not False
        for s in item.skipped:
            need = PLAYBOOK[s.approach_key].needs
            assert (s.approach_key, s.metric) in sinking or (
                need is not None
                and signals.get(need) is False
                and s.reason == CONDITIONS[need].absent
            )
