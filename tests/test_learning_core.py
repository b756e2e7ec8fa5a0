"""The learning loop's pure core: outcomes, idempotent folds, calibration, effectiveness."""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analysis.bottlenecks import Finding, find_bottlenecks
from agent.analysis.catalog import CATALOG
from agent.analysis.judge import judge
from agent.analysis.series import Series
from agent.learning.calibration import calibration_from, pool_of
from agent.learning.effectiveness import effectiveness
from agent.learning.events import (
    FeedbackEvent,
    LearningEvent,
    VerificationEvent,
    decode_event,
    encode_event,
    feedback_event,
    verification_event,
)
from agent.learning.model import NO_CONTEXT, TAU_MIN, Gain, gain, prior_tau
from agent.learning.outcomes import actual_improvement_pct, outcome_of
from agent.learning.records import PredictionRecord
from agent.learning.state import (
    INFEASIBLE_KEY,
    TOTALS_KEY,
    LearningState,
    OutcomeSummary,
    PlanProgress,
    Totals,
    apply_infeasible,
    apply_outcome,
    apply_plan_issued,
    apply_plan_verification,
    apply_totals_update,
    apply_totals_verification,
    apply_update,
    fold,
    plan_key,
    sinking,
    summary_key,
)
from agent.planning.playbook import PLAYBOOK
from agent.planning.prioritize import prior, prioritize, score_candidate
from protocols.messages import Direction, ImplementationUpdate, ImprovementRange, VerificationResult

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
T = TypeVar("T")
Status = Literal["accepted", "in_progress", "implemented", "rejected"]


def prediction(
    rec: str,
    *,
    metric: str = "api_response_time",
    approach_key: str = "query_optimization",
    expected: float = 55.0,
    plan_id: str = "plan-1",
    direction: Direction | None = None,
) -> PredictionRecord:
    return PredictionRecord(
        recommendation_id=rec,
        task_id="t-1",
        plan_id=plan_id,
        baseline_id="baseline-1",
        metric=metric,
        approach=PLAYBOOK[approach_key].name if approach_key in PLAYBOOK else approach_key,
        approach_key=approach_key,
        direction=direction or CATALOG[metric].direction,
        baseline_value=100.0,
        target_value=CATALOG[metric].target,
        expected_improvement_pct=ImprovementRange(
            low=expected - 15.0, expected=expected, high=expected + 15.0
        ),
        expected_value=100.0 * (1 - expected / 100),
        created_at=T0,
    )


def verification(
    vid: str, rec: str, baseline: float, measured: float, *, plan_id: str = "plan-1", hours: int = 1
) -> VerificationResult:
    return VerificationResult(
        verification_id=vid,
        plan_id=plan_id,
        recommendation_id=rec,
        metric="api_response_time",
        baseline_value=baseline,
        measured_value=measured,
        verified_at=T0 + timedelta(hours=hours),
    )


def update(
    uid: str,
    rec: str,
    status: Status,
    *,
    plan_id: str = "plan-1",
    hours: float = 1.0,
    feasibility: Literal["feasible", "infeasible"] | None = None,
    reason: str | None = None,
) -> ImplementationUpdate:
    return ImplementationUpdate(
        update_id=uid,
        plan_id=plan_id,
        recommendation_id=rec,
        status=status,
        reported_at=T0 + timedelta(hours=hours),
        feasibility=feasibility,
        reason=reason,
    )


def summary_of(
    ratios: Sequence[float],
    *,
    approach_key: str = "query_optimization",
    metric: str = "api_response_time",
    predicted: float = 55.0,
) -> OutcomeSummary:
    """A summary of outcomes with these ratios (actual = ratio × predicted)."""
    s: OutcomeSummary | None = None
    p = prediction("rec-x", metric=metric, approach_key=approach_key, expected=predicted)
    for i, r in enumerate(ratios):
        actual = r * predicted  # a latency of 100 that fell by `actual` %
        outcome = outcome_of(verification(f"v-{i}", "rec-x", 100.0, 100.0 - actual), p)
        assert outcome is not None
        s = apply_outcome(s, outcome)
    assert s is not None
    return s


# --- the actual improvement -----------------------------------------------------------


def test_improvement_is_direction_aware_in_the_playbooks_sense() -> None:
    # A latency that fell 30 %.
    assert actual_improvement_pct("lower_is_better", False, 200.0, 140.0) == pytest.approx(30.0)
    # A hit rate from 78 to 95 removed 17 of the 22 points short of 100.
    assert actual_improvement_pct("higher_is_better", True, 78.0, 95.0) == pytest.approx(1700 / 22)
    assert round(actual_improvement_pct("higher_is_better", True, 78.0, 95.0) or 0, 2) == 77.27
    # Throughput up 20 %.
    assert actual_improvement_pct("higher_is_better", False, 500.0, 600.0) == pytest.approx(20.0)
    # Getting worse is negative, in every direction.
    assert actual_improvement_pct("lower_is_better", False, 100.0, 150.0) == pytest.approx(-50.0)
    assert actual_improvement_pct("higher_is_better", True, 99.0, 98.0) == pytest.approx(-100.0)


@pytest.mark.parametrize(
    ("direction", "bounded", "baseline", "measured"),
    [
        ("lower_is_better", False, 0.0, 10.0),
        ("higher_is_better", False, 0.0, 10.0),
        ("higher_is_better", True, 100.0, 99.0),
        ("higher_is_better", True, 100.5, 99.0),
        ("lower_is_better", False, math.nan, 1.0),
        ("higher_is_better", False, 1.0, math.inf),
        ("lower_is_better", False, 5e-324, -1e308),  # overflows: undefined, not inf
    ],
)
def test_undefined_improvements_are_none(
    direction: Direction, bounded: bool, baseline: float, measured: float
) -> None:
    assert actual_improvement_pct(direction, bounded, baseline, measured) is None


def test_an_outcome_scores_the_prediction() -> None:
    p = prediction("rec-1", expected=50.0)
    o = outcome_of(verification("v-1", "rec-1", 200.0, 150.0), p)  # fell 25 %
    assert o is not None
    assert (o.approach_key, o.metric, o.plan_id) == (
        "query_optimization",
        "api_response_time",
        "plan-1",
    )
    assert (o.predicted_pct, o.actual_pct, o.success) == (50.0, 25.0, True)
    # the ratio is against the playbook's prior (query optimisation: 55 %), not against
    # the prediction (50 %, maybe already calibrated): every ratio shares one base
    assert o.ratio == pytest.approx(25.0 / 55.0)
    assert o.abs_pct_error == pytest.approx(100.0)  # |50 − 25| / 25, against the prediction
    assert o.verified_at == (T0 + timedelta(hours=1)).timestamp()
    # An actual change of 0.2 %: the error is over the 1-point floor, not over 0.2.
    flat = outcome_of(verification("v-2", "rec-1", 1000.0, 998.0), p)
    assert flat is not None
    assert flat.abs_pct_error == pytest.approx(49.8 * 100)
    worse = outcome_of(verification("v-3", "rec-1", 100.0, 110.0), p)
    assert worse is not None
    assert not worse.success
    assert worse.ratio == pytest.approx(-10.0 / 55.0)
    # A bounded metric from the catalog; the prediction's direction is what counts.
    hit = outcome_of(
        verification("v-4", "rec-2", 78.0, 95.0),
        prediction(
            "rec-2", metric="redis_cache_hit", approach_key="cache_ttl_tuning", expected=25.0
        ),
    )
    assert hit is not None
    assert hit.actual_pct == pytest.approx(77.27, abs=0.01)
    assert outcome_of(verification("v-5", "rec-1", 0.0, 10.0), p) is None


# --- idempotency ---------------------------------------------------------------------


def test_a_duplicate_outcome_is_applied_once_and_returns_the_same_object() -> None:
    p = prediction("rec-1")
    o = outcome_of(verification("v-1", "rec-1", 100.0, 70.0), p)
    assert o is not None
    once = apply_outcome(None, o)
    assert apply_outcome(once, o) is once
    assert (once.count, once.successes, once.applied) == (1, 1, ["v-1"])
    twice = apply_outcome(once, dataclasses.replace(o, verification_id="v-2"))
    assert twice.count == 2
    assert twice is not once
    assert once.count == 1  # the input is never mutated


def test_plan_updates_are_idempotent_and_the_latest_report_wins() -> None:
    later = update("u-2", "rec-1", "implemented", hours=5)
    earlier = update("u-1", "rec-1", "in_progress", hours=2, feasibility="feasible")
    p = apply_update(None, later)
    assert apply_update(p, later) is p
    p = apply_update(p, earlier)  # arrives late: recorded, but does not undo "implemented"
    assert p.statuses == {"rec-1": "implemented"}
    assert p.applied_updates == ["u-2", "u-1"]
    assert p.feasibility["rec-1"].feasibility == "feasible"
    assert apply_update(p, earlier) is p
    v = verification("v-1", "rec-1", 100.0, 70.0)
    q = apply_plan_verification(p, v)
    assert q.verified == ["rec-1"]
    assert apply_plan_verification(q, v) is q


def test_totals_count_each_event_and_plan_once() -> None:
    known = verification_event(verification("v-1", "rec-1", 100.0, 70.0), prediction("rec-1"))
    unknown = verification_event(verification("v-2", "rec-9", 100.0, 70.0), None)
    t = apply_totals_verification(None, known)
    t = apply_totals_verification(t, unknown)
    assert apply_totals_verification(t, unknown) is t
    assert (t.verifications, t.unknown_verifications, t.unknown_ids) == (2, 1, ["rec-9"])
    fb = feedback_event(update("u-1", "rec-9", "accepted"), None)
    t = apply_totals_update(t, fb)
    assert apply_totals_update(t, fb) is t
    assert (t.updates, t.unknown_updates) == (1, 1)
    t = apply_plan_issued(t, "plan-1", 3)
    assert apply_plan_issued(t, "plan-1", 3) is t
    assert (t.plans_issued, t.items_issued) == (1, 3)


def test_a_state_differs_in_what_a_task_reads_unless_only_plans_were_counted() -> None:
    known = verification_event(verification("v-1", "rec-1", 100.0, 70.0), prediction("rec-1"))
    before = LearningState(totals=apply_totals_verification(None, known))
    counted = before.copy()
    counted.totals = apply_plan_issued(counted.totals, "plan-1", 3)
    assert before.same_but_plans_counted(counted)
    assert counted.same_but_plans_counted(before)
    verified = before.copy()
    unknown = verification_event(verification("v-2", "rec-9", 100.0, 70.0), None)
    verified.totals = apply_totals_verification(verified.totals, unknown)
    assert not before.same_but_plans_counted(verified)
    flagged = before.copy()
    flagged.infeasible["caching|api_response_time"] = "no cache layer"
    assert not before.same_but_plans_counted(flagged)


def test_id_memories_are_bounded() -> None:
    t: Totals | None = None
    for i in range(1_100):
        t = apply_plan_issued(t, f"plan-{i}", 1)
    assert t is not None
    assert len(t.plan_ids) == 1_000
    assert t.plan_ids[-1] == "plan-1099"
    assert t.plans_issued == 1_100


# --- the event log and the fold ------------------------------------------------------


def events() -> list[LearningEvent]:
    """A small history: two plans, verifications (one duplicate, one unknown, one
    undefined), updates out of order, an infeasible report later cleared."""
    p1 = prediction("rec-1")
    p2 = prediction(
        "rec-2", metric="redis_cache_hit", approach_key="cache_ttl_tuning", expected=25.0
    )
    p3 = prediction("rec-3", plan_id="plan-2", approach_key="connection_pooling", expected=40.0)
    return [
        feedback_event(update("u-1", "rec-1", "accepted", hours=1), p1),
        feedback_event(update("u-2", "rec-1", "implemented", hours=3), p1),
        verification_event(verification("v-1", "rec-1", 100.0, 70.0), p1),
        verification_event(verification("v-1", "rec-1", 100.0, 70.0), p1),  # duplicate
        feedback_event(
            update("u-3", "rec-2", "rejected", hours=2, feasibility="infeasible", reason="no RAM"),
            p2,
        ),
        verification_event(verification("v-2", "rec-9", 100.0, 70.0), None),  # unknown
        verification_event(verification("v-3", "rec-2", 78.0, 95.0), p2),
        verification_event(verification("v-4", "rec-1", 0.0, 70.0), p1),  # undefined
        feedback_event(update("u-4", "rec-3", "in_progress", plan_id="plan-2", hours=4), p3),
        feedback_event(update("u-1", "rec-1", "accepted", hours=1), p1),  # duplicate, stale
        verification_event(
            verification("v-5", "rec-3", 200.0, 220.0, plan_id="plan-2", hours=9), p3
        ),
    ]


def test_events_round_trip_through_their_encoding() -> None:
    for event in events():
        assert decode_event(encode_event(event)) == event
    raw = msgspec.json.decode(encode_event(events()[2]))
    assert (raw["kind"], raw["event_id"]) == ("verification", "v:v-1")
    assert msgspec.json.decode(encode_event(events()[0]))["kind"] == "feedback"
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"kind": "gossip", "event_id": "x"}')


class KV:
    """A dict standing in for the KV bucket: values are bytes, writes skipped when unchanged."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.writes = 0

    def cas(self, key: str, type_: type[T], apply: Callable[[T | None], T]) -> bool:
        raw = self.data.get(key)
        current = msgspec.json.decode(raw, type=type_) if raw is not None else None
        updated = apply(current)
        if updated is current:
            return False
        self.data[key] = msgspec.json.encode(updated)
        self.writes += 1
        return True

    def state(self) -> LearningState:
        state = LearningState()
        for key, raw in self.data.items():
            if key == TOTALS_KEY:
                state.totals = msgspec.json.decode(raw, type=Totals)
            elif key == INFEASIBLE_KEY:
                state.infeasible = msgspec.json.decode(raw, type=dict[str, str])
            elif key.startswith("outcome."):
                s = msgspec.json.decode(raw, type=OutcomeSummary)
                state.summaries[(s.approach_key, s.metric)] = s
            else:
                p = msgspec.json.decode(raw, type=PlanProgress)
                state.plans[p.plan_id] = p
        return state


def live(kv: KV, event: LearningEvent) -> None:
    """The runtime's live path, one compare-and-set per key (agent/runtime/learning.py)."""
    if isinstance(event, VerificationEvent):
        kv.cas(TOTALS_KEY, Totals, lambda t: apply_totals_verification(t, event))
        if event.prediction is None:
            return
        outcome = outcome_of(event.verification, event.prediction)
        if outcome is None:
            return
        kv.cas(
            summary_key(outcome.approach_key, outcome.metric),
            OutcomeSummary,
            lambda s: apply_outcome(s, outcome),
        )
        kv.cas(
            plan_key(outcome.plan_id),
            PlanProgress,
            lambda p: apply_plan_verification(p, outcome),
        )
        return
    assert isinstance(event, FeedbackEvent)
    u = event.update
    kv.cas(TOTALS_KEY, Totals, lambda t: apply_totals_update(t, event))
    kv.cas(plan_key(u.plan_id), PlanProgress, lambda p: apply_update(p, u))
    if event.approach_key and event.metric and u.feasibility is not None:
        approach, metric = event.approach_key, event.metric
        kv.cas(INFEASIBLE_KEY, dict[str, str], lambda c: apply_infeasible(c, u, approach, metric))


def test_the_rebuild_equals_the_live_state() -> None:
    history = events()
    plans = [("plan-1", 2), ("plan-2", 1)]
    kv = KV()
    for plan_id, items in plans:
        kv.cas(
            TOTALS_KEY, Totals, functools.partial(apply_plan_issued, plan_id=plan_id, items=items)
        )
    for event in history:
        live(kv, decode_event(encode_event(event)))
    rebuilt = fold([decode_event(encode_event(e)) for e in history], plans)
    assert kv.state() == rebuilt
    # Replaying everything again changes nothing and writes nothing.
    writes = kv.writes
    for event in history:
        live(kv, event)
    assert kv.writes == writes
    assert fold([*history, *history], plans) == rebuilt

    t = rebuilt.totals
    assert (t.verifications, t.unknown_verifications, t.undefined_verifications) == (5, 1, 1)
    assert (t.updates, t.unknown_updates, t.plans_issued, t.items_issued) == (4, 0, 2, 3)
    assert set(rebuilt.summaries) == {
        ("query_optimization", "api_response_time"),
        ("cache_ttl_tuning", "redis_cache_hit"),
        ("connection_pooling", "api_response_time"),
    }
    assert rebuilt.plans["plan-1"].statuses == {"rec-1": "implemented", "rec-2": "rejected"}
    assert rebuilt.plans["plan-1"].verified == ["rec-1", "rec-2"]
    assert rebuilt.infeasible == {"cache_ttl_tuning|redis_cache_hit": "no RAM"}


# --- infeasible pairs ------------------------------------------------------------------


def test_infeasible_is_set_and_a_later_feasible_clears_it() -> None:
    bad = update("u-1", "rec-1", "rejected", feasibility="infeasible", reason="no memory budget")
    good = update("u-2", "rec-1", "accepted", hours=2, feasibility="feasible")
    silent = update("u-3", "rec-1", "in_progress", hours=3)
    m = apply_infeasible(None, bad, "multi_level_caching", "redis_cache_hit")
    assert m == {"multi_level_caching|redis_cache_hit": "no memory budget"}
    assert apply_infeasible(m, bad, "multi_level_caching", "redis_cache_hit") is m
    assert apply_infeasible(m, silent, "multi_level_caching", "redis_cache_hit") is m
    assert apply_infeasible(m, good, "multi_level_caching", "api_response_time") is m
    assert sinking(m) == {("multi_level_caching", "redis_cache_hit"): "no memory budget"}
    cleared = apply_infeasible(m, good, "multi_level_caching", "redis_cache_hit")
    assert cleared == {}
    assert m  # the input stays as it was
    unexplained = apply_infeasible(
        None, update("u-9", "rec-1", "rejected", feasibility="infeasible"), "a", "b"
    )
    assert unexplained == {"a|b": "reported infeasible by the implementer (update u-9)"}


def test_kv_keys_are_valid_and_distinct() -> None:
    valid = r"^[-/_=.a-zA-Z0-9]+$"
    assert summary_key("query_optimization", "api_response_time") == (
        "outcome.query_optimization.api_response_time"
    )
    assert plan_key("plan-0123abcd") == "plan.plan-0123abcd"
    odd = [
        summary_key("Database query optimisation", "m"),
        summary_key("a.b", "c"),
        summary_key("a_b", "c"),
        summary_key("", "c"),
        plan_key("p:1.2"),
        plan_key("p_1_2"),
    ]
    assert all(re.fullmatch(valid, k) for k in odd)
    assert all(k.count(".") == (2 if k.startswith("outcome.") else 1) for k in odd)
    assert len(set(odd)) == len(odd)
    assert summary_key("a.b", "c") == summary_key("a.b", "c")  # deterministic


# --- calibration ---------------------------------------------------------------------

EXPECTED = PLAYBOOK["query_optimization"].impact_expected


def gain_of(summary: OutcomeSummary | None, metric: str = "api_response_time") -> Gain:
    summaries = {} if summary is None else {(summary.approach_key, summary.metric): summary}
    return gain(pool_of(summaries), "query_optimization", metric, NO_CONTEXT)


def test_no_evidence_is_exactly_the_prior() -> None:
    assert gain_of(None) == gain_of(OutcomeSummary(approach_key="query_optimization", metric="m"))
    g = gain_of(None)
    assert g.expected == pytest.approx(EXPECTED)
    assert not g.calibrated
    assert g.prior_weight == 1.0
    assert g.low < PLAYBOOK["query_optimization"].impact_low  # one outcome varies more
    calibrate = calibration_from({})
    (finding,) = findings()
    for key in PLAYBOOK:
        assert calibrate(key, finding) == prior(key, finding)


def test_two_verifications_move_the_figure_only_part_way() -> None:
    g = gain_of(summary_of([0.5, 0.5]))
    assert g.verifications == 2
    assert EXPECTED * 0.5 + 5.0 < g.expected < EXPECTED - 5.0  # moved, but far from half
    assert g.low < g.expected < g.high
    assert 0.0 < g.prior_weight < 1.0


def test_many_verifications_bring_the_figure_to_the_evidence_and_narrow_its_mean() -> None:
    rng = random.Random(7)
    ratios = [0.5 + rng.gauss(0.0, 0.02) for _ in range(50)]
    g = gain_of(summary_of(ratios))
    assert g.verifications == 50
    assert g.expected == pytest.approx(EXPECTED * 0.5, rel=0.05)
    assert g.low < g.expected < g.high
    assert g.mean_low is not None
    assert g.mean_high is not None
    few = gain_of(summary_of(ratios[:10]))
    assert few.mean_low is not None
    assert few.mean_high is not None
    assert g.mean_high - g.mean_low < few.mean_high - few.mean_low
    assert g.prior_weight < few.prior_weight


def test_the_prior_spread_is_read_from_the_range() -> None:
    a = PLAYBOOK["query_optimization"]
    spread = a.impact_high - a.impact_low
    assert prior_tau(a) == max(spread / (2 * 1.96 * a.impact_expected), TAU_MIN)
    assert prior_tau(None) > 0


def findings() -> list[Finding]:
    """api_response_time at ≈ 150 ms against 100 (as tests/test_planning_prioritize.py)."""
    v = np.full(24, 150.0)
    s = Series(ts=np.arange(24, dtype=np.float64) * 3600.0, values=v)
    spec = CATALOG["api_response_time"]
    return find_bottlenecks([judge(spec, s, target=spec.target)])


def test_a_badly_verified_approach_sinks_below_an_alternative() -> None:
    metric = "api_response_time"
    before = prioritize("t-1", findings())
    assert [i.approach.key for i in before] == ["query_optimization"]
    rng = random.Random(3)
    bad = summary_of([-0.2 + rng.gauss(0.0, 0.05) for _ in range(10)])
    calibrate = calibration_from({("query_optimization", metric): bad})
    (finding,) = findings()
    g = calibrate("query_optimization", finding)
    assert g.expected <= 0.0
    assert g.low <= g.expected <= g.high
    assert g.verifications == 10
    after = prioritize("t-1", findings(), calibrate=calibrate)
    (item,) = after
    assert item.approach.key != "query_optimization"
    assert item.primary.gain.verifications == 0
    weeks = PLAYBOOK["query_optimization"].effort_weeks
    sunk = score_candidate(finding.urgency, g.expected, 1.0, weeks)
    assert item.score > sunk


# --- effectiveness -------------------------------------------------------------------


def test_effectiveness_is_computed_from_the_state() -> None:
    state = fold(events(), [("plan-1", 2), ("plan-2", 1), ("plan-3", 1)])
    e = effectiveness(state)
    # Outcomes: rec-1 30 % vs 55 (success), rec-2 77.27 % vs 25 (success),
    # rec-3 −10 % vs 40 (failure).
    assert e.recommendation_accuracy.value == pytest.approx(2 / 3)
    errors = [25 / 30 * 100, (1700 / 22 - 25) / (1700 / 22) * 100, 50 / 10 * 100]
    assert e.prediction_error_mape.value == pytest.approx(sum(errors) / 3)
    assert e.implemented_share.value == pytest.approx(1 / 4)
    assert e.rejected_share.value == pytest.approx(1 / 4)
    assert e.plans_verified_share.value == pytest.approx(2 / 3)
    assert (e.verifications, e.unknown_verifications, e.verified_outcomes) == (5, 1, 3)
    pooling = e.by_approach["connection_pooling"]
    assert pooling.recommendation_accuracy.value == 0.0
    assert pooling.metrics["api_response_time"].mean_ratio == pytest.approx(-0.25)
    assert e.implemented_share.basis
    assert e.prediction_error_mape.basis


def test_effectiveness_of_nothing_says_why() -> None:
    e = effectiveness(LearningState())
    for key in (
        "recommendation_accuracy",
        "prediction_error_mape",
        "implemented_share",
        "rejected_share",
        "plans_verified_share",
    ):
        figure = getattr(e, key)
        assert figure.value is None
        assert figure.reason
    assert e.by_approach == {}
    msgspec.json.encode(e)  # JSON-ready


# --- properties ------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
wire = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)


@given(
    st.sampled_from(list(CATALOG)),
    st.sampled_from(["lower_is_better", "higher_is_better"]),
    wire,
    wire,
    finite,
)
def test_outcome_of_never_raises_nor_goes_non_finite(
    metric: str, direction: Direction, baseline: float, measured: float, predicted: float
) -> None:
    p = msgspec.structs.replace(
        prediction("rec-1", metric=metric, direction=direction),
        expected_improvement_pct=ImprovementRange(
            low=predicted, expected=predicted, high=predicted
        ),
    )
    o = outcome_of(verification("v-1", "rec-1", baseline, measured), p)
    if o is None:
        return
    values: list[Any] = [o.actual_pct, o.abs_pct_error, o.ratio or 0.0]
    assert all(math.isfinite(x) for x in values)
    assert o.abs_pct_error >= 0.0
    s = apply_outcome(None, o)
    assert all(math.isfinite(x) for x in (s.ratio_sum, s.ratio_sq_sum, s.abs_pct_error_sum))


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), max_size=30))
def test_calibrated_is_finite_and_ordered(ratios: list[float]) -> None:
    s: OutcomeSummary | None = None
    for i, r in enumerate(ratios):
        s = apply_outcome(
            s,
            outcome_of(
                verification(f"v-{i}", "rec-x", 100.0, 100.0 - r),
                prediction("rec-x", expected=1.0),
            )
            or pytest.fail("defined"),
        )
    g = gain_of(s)
    assert all(math.isfinite(x) for x in (g.low, g.expected, g.high))
    assert g.low <= g.expected <= g.high
    assert g.verifications == len(ratios)
