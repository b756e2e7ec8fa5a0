"""Learning that predicts outcomes in context, with honest intervals (the learning issue's list).

The outcomes learned from come from ``scripts/sim_truth.py``, the world's own mechanisms
(independent of ``agent/``: checked in tests/test_swarm_sim.py), never from the model
being tested. The agent's side is its public path: a prediction record with the context
the planner would record, Athena's verification, the fold, the model's gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agent.analysis.bottlenecks import find_bottlenecks
from agent.analysis.catalog import CATALOG
from agent.analysis.judge import judge
from agent.analysis.series import Series
from agent.cli.learning import _print_model
from agent.config import Settings
from agent.learning.calibration import calibration_from, pool_of
from agent.learning.effectiveness import learned_model
from agent.learning.model import LEVEL, Gain, context_of, gain
from agent.learning.outcomes import outcome_of
from agent.learning.records import PredictionRecord
from agent.learning.state import LearningState, OutcomeSummary, apply_outcome
from agent.planning.playbook import PLAYBOOK
from agent.planning.prioritize import prioritize
from protocols.messages import ImprovementRange, VerificationResult
from scripts import sim_truth
from scripts.sim_truth import BackendState

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def _between(rng: np.random.Generator) -> BackendState:
    """A state somewhere between the world's calm and stressed references."""
    calm, stressed = sim_truth.REFERENCE_STATES["calm"], sim_truth.REFERENCE_STATES["stressed"]
    w = float(rng.random())
    return BackendState(
        **{
            k: (1 - w) * float(getattr(calm, k)) + w * float(getattr(stressed, k))
            for k in ("cpu", "app_ms", "query_ms", "pool", "hit", "broker", "ws_capacity")
        }
    )


def _learn(
    approach: str,
    metric: str,
    n: int,
    *,
    seed: int = 5,
    states: Callable[[np.random.Generator], BackendState] = _between,
    service: str = "",
) -> OutcomeSummary:
    """``n`` roll-outs of ``approach`` in the world, verified and folded as the agent does."""
    rng = np.random.default_rng(seed)
    spec = CATALOG[metric]
    approach_load = PLAYBOOK[approach].load
    summary: OutcomeSummary | None = None
    for i in range(n):
        state = states(rng)
        before = sim_truth.levels(state)
        after = sim_truth.levels(sim_truth.realise(approach, state, rng))
        load = {approach_load: float(before[approach_load])} if approach_load else {}
        target = spec.target if spec.target is not None else 1.0
        context = context_of(approach, metric, spec.direction, float(before[metric]), target, load)
        prior = gain(pool_of({}), approach, metric, context)
        record = PredictionRecord(
            recommendation_id=f"rec-{i}",
            task_id=f"t-{i}",
            plan_id=f"plan-{i}",
            baseline_id=f"b-{i}",
            metric=metric,
            approach=PLAYBOOK[approach].name,
            approach_key=approach,
            direction=spec.direction,
            baseline_value=float(before[metric]),
            target_value=target,
            expected_improvement_pct=ImprovementRange(
                low=prior.low, expected=prior.expected, high=prior.high, level=LEVEL
            ),
            expected_value=float(before[metric]),
            created_at=T0,
            context=context.as_dict(),
            service=service,
        )
        verification = VerificationResult(
            verification_id=f"v-{i}",
            plan_id=f"plan-{i}",
            recommendation_id=f"rec-{i}",
            metric=metric,
            baseline_value=float(before[metric]),
            measured_value=float(after[metric]),
            verified_at=T0 + timedelta(hours=i + 1),
        )
        outcome = outcome_of(verification, record)
        assert outcome is not None
        summary = apply_outcome(summary, outcome)
    assert summary is not None
    return summary


def _predict(summary: OutcomeSummary, state: BackendState) -> Gain:
    """The agent's prediction for the summary's pair in ``state`` (the planner's path)."""
    levels = sim_truth.levels(state)
    metric = summary.metric
    spec = CATALOG[metric]
    series = Series(
        ts=np.arange(30, dtype=np.float64) * 60.0, values=np.full(30, float(levels[metric]))
    )
    findings = find_bottlenecks([judge(spec, series, target=spec.target)])
    (finding,) = findings
    load = {m: float(levels[m]) for m in ("cpu_utilization", "db_pool_utilization")}
    calibrate = calibration_from({(summary.approach_key, metric): summary}, load)
    return calibrate(summary.approach_key, finding)


def test_two_far_apart_states_get_different_predictions_once_verified() -> None:
    """Pooling pays under pool pressure and not on an idle pool (the world's mechanism)."""
    calm = BackendState(cpu=40, app_ms=40, query_ms=55, pool=35, hit=96, broker=30, ws_capacity=1e3)
    stressed = BackendState(
        cpu=90, app_ms=60, query_ms=55, pool=96, hit=70, broker=90, ws_capacity=600
    )
    truth = {
        name: sim_truth.true_mean_pct("connection_pooling", "database_query_time", s)
        for name, s in (("calm", calm), ("stressed", stressed))
    }
    assert truth["stressed"] > truth["calm"] + 20.0  # the world: far apart

    prior_calm = _predict(
        OutcomeSummary(approach_key="connection_pooling", metric="database_query_time"), calm
    )
    prior_stressed = _predict(
        OutcomeSummary(approach_key="connection_pooling", metric="database_query_time"), stressed
    )
    assert prior_calm.expected == pytest.approx(prior_stressed.expected)  # the prior is blind

    learnt = _learn("connection_pooling", "database_query_time", 40)
    g_calm, g_stressed = _predict(learnt, calm), _predict(learnt, stressed)
    assert g_calm.verifications == g_stressed.verifications == 40
    assert g_stressed.expected > g_calm.expected + 15.0, (g_calm, g_stressed, truth)
    learnt_error = abs(g_calm.expected - truth["calm"]) + abs(
        g_stressed.expected - truth["stressed"]
    )
    prior_error = abs(prior_calm.expected - truth["calm"]) + abs(
        prior_stressed.expected - truth["stressed"]
    )
    assert learnt_error < prior_error, (g_calm, g_stressed, truth)


def test_an_approach_that_hurts_is_predicted_to_hurt_and_drops_out_of_plans() -> None:
    """Replicas on an idle database only add routing time: it gets slower (the world)."""

    def idle(rng: np.random.Generator) -> BackendState:
        return BackendState(
            cpu=45,
            app_ms=40,
            query_ms=float(rng.uniform(70, 110)),
            pool=float(rng.uniform(15, 35)),
            hit=95,
            broker=30,
            ws_capacity=1000,
        )

    learnt = _learn("read_replicas", "database_query_time", 25, states=idle)
    state = idle(np.random.default_rng(99))
    g = _predict(learnt, state)
    assert g.expected < 0.0, g
    assert g.low < g.expected < g.high

    levels = sim_truth.levels(state)
    spec = CATALOG["database_query_time"]
    series = Series(
        ts=np.arange(30, dtype=np.float64) * 60.0,
        values=np.full(30, float(levels["database_query_time"])),
    )
    findings = find_bottlenecks([judge(spec, series, target=spec.target)])
    load = {m: float(levels[m]) for m in ("cpu_utilization", "db_pool_utilization")}
    calibrate = calibration_from({("read_replicas", "database_query_time"): learnt}, load)
    items = prioritize("t-harm", findings, calibrate=calibrate)
    assert items, "the database still gets a fix"
    assert all(i.approach.key != "read_replicas" for i in items)
    rationale = " ".join(i.rationale for i in items)
    assert "read_replicas not chosen for database_query_time: verified to do no good" in rationale


def test_a_bimodal_approach_gets_a_wide_interval_that_holds_its_outcomes() -> None:
    """Indexing works 60 % of the time (the world): one outcome is near 0 or large."""

    def slow(rng: np.random.Generator) -> BackendState:
        return BackendState(
            cpu=50, app_ms=40, query_ms=float(rng.uniform(90, 110)), pool=50, hit=95,
            broker=30, ws_capacity=1000,
        )  # fmt: skip

    learnt = _learn("query_optimization", "database_query_time", 60, states=slow)
    state = slow(np.random.default_rng(123))
    g = _predict(learnt, state)
    draws = sim_truth.effects_pct(
        "query_optimization", "database_query_time", state, 4000, np.random.default_rng(1)
    )
    inside = float(np.mean((draws >= g.low) & (draws <= g.high)))
    assert 0.7 <= inside <= 0.99, (g, inside)
    assert g.low < 10.0  # the misses
    assert g.high > 55.0  # the hits
    assert g.mean_low is not None
    assert g.mean_high is not None
    assert g.mean_high - g.mean_low < (g.high - g.low) / 2  # the mean is known far better


def test_the_prior_weight_falls_as_evidence_grows() -> None:
    state = sim_truth.REFERENCE_STATES["stressed"]
    empty = OutcomeSummary(approach_key="cache_ttl_tuning", metric="redis_cache_hit")
    weights = [_predict(empty, state).prior_weight] + [
        _predict(_learn("cache_ttl_tuning", "redis_cache_hit", n), state).prior_weight
        for n in (5, 20, 80)
    ]
    assert weights[0] == 1.0
    assert weights == sorted(weights, reverse=True)
    assert weights[-1] < 0.2


def test_a_service_learns_apart_from_the_others() -> None:
    """Two backends where what no feature measures differs: each gets its own figure."""

    def far(rng: np.random.Generator) -> BackendState:  # slow delivery from a far region
        return BackendState(
            cpu=50, app_ms=40, query_ms=40, pool=50, hit=95, broker=float(rng.uniform(35, 45)),
            ws_capacity=1000, transport_ms=60.0,
        )  # fmt: skip

    def queued(rng: np.random.Generator) -> BackendState:  # slow delivery from a busy broker
        return BackendState(
            cpu=50, app_ms=40, query_ms=40, pool=50, hit=95, broker=float(rng.uniform(86, 90)),
            ws_capacity=1000, transport_ms=12.0,
        )  # fmt: skip

    metric = "real_time_delivery"
    a = _learn("batched_async_processing", metric, 20, states=far, service="catalog", seed=1)
    b = _learn("batched_async_processing", metric, 20, states=queued, service="chat", seed=2)
    both = OutcomeSummary(
        approach_key=a.approach_key,
        metric=metric,
        fitted=a.fitted + b.fitted,
        xtx=[x + y for x, y in zip(a.xtx, b.xtx, strict=True)],
        xty=[x + y for x, y in zip(a.xty, b.xty, strict=True)],
        yty=a.yty + b.yty,
        by_service={**a.by_service, **b.by_service},
    )
    fitted = pool_of({(a.approach_key, metric): both})
    ctx = context_of(a.approach_key, metric, "lower_is_better", 65.0, 50.0, {})
    far_gain = gain(fitted, a.approach_key, metric, ctx, "catalog")
    queued_gain = gain(fitted, a.approach_key, metric, ctx, "chat")
    assert queued_gain.expected > far_gain.expected + 20.0, (far_gain, queued_gain)


def test_learning_show_prints_the_fitted_dependence_and_coverage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    learnt = _learn("connection_pooling", "database_query_time", 30)
    state = LearningState(summaries={("connection_pooling", "database_query_time"): learnt})
    model = learned_model(state)
    (pair,) = model["pairs"]
    assert pair["verifications"] == 30
    assert set(pair["coefficients"]) == {"intercept", "miss", "load"}
    assert pair["coefficients"]["load"]["mean"] > 0  # more pool pressure, more to gain
    coverage = pair["coverage"]
    assert coverage["denominator"] == 30
    assert 0.0 <= coverage["value"] <= 1.0
    assert all(math.isfinite(c["sd"]) for c in pair["coefficients"].values())
    _print_model(model)
    out = capsys.readouterr().out
    assert "connection_pooling" in out
    assert "coverage" in out
    assert f"{round(100 * coverage['value'])}% /30" in out


# --- the closed loop ----------------------------------------------------------------------


@pytest.mark.nats
@pytest.mark.slow
async def test_in_the_simulator_the_agent_nears_the_oracle_with_honest_intervals(
    make_settings: Callable[..., Settings],
) -> None:
    """Rounds 16–20 of 20: 70–95 % of single outcomes inside the 80 % intervals, narrower
    intervals than in rounds 1–5 without losing coverage, and an error far below the
    prior's and the context-blind pair mean's, near the oracle's.

    The issue's goal, ≤ 1.2× the oracle's error: seeds 1–10 give 1.07–1.18× (README).
    """
    from scripts.swarm_sim import score
    from tests.test_swarm_sim import _run

    stats = await _run(make_settings, 20, seed=1)
    late = score([o for s in stats[15:] for o in s.outcomes])
    early = score([o for s in stats[:5] for o in s.outcomes])
    assert late.n >= 40
    assert late.agent_mae_pp <= 1.2 * late.oracle_mae_pp, late
    assert late.agent_mae_pp < 0.75 * late.prior_mae_pp, late
    assert 70.0 <= late.coverage_pct <= 95.0, late
    assert late.width_pp < early.width_pp, (early, late)
