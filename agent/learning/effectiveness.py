"""Analysis effectiveness (the swarm's term, docs/design.md): how right the strategist has been.

Every figure says what it was computed from (``basis``, with numerator and
denominator), and is None with a ``reason`` when there is nothing to compute it over,
never a made-up 0.
"""

from __future__ import annotations

from typing import Any

import msgspec

from agent.learning.calibration import pool_of
from agent.learning.model import FEATURES, LEVEL, coefficients, fit_pair
from agent.learning.state import LearningState, OutcomeSummary
from protocols.reports import ApproachEffect, LearningReport, MetricEffect, Ratio


def _figure(numerator: float, denominator: float, basis: str, empty: str) -> Ratio:
    """A share or mean ``numerator / denominator``, or None with ``empty`` as the reason."""
    if denominator <= 0:
        return Ratio(
            value=None, numerator=numerator, denominator=denominator, basis=basis, reason=empty
        )
    return Ratio(
        value=numerator / denominator, numerator=numerator, denominator=denominator, basis=basis
    )


def _accuracy(successes: int, count: int) -> Ratio:
    return _figure(
        successes,
        count,
        "verified outcomes that moved the metric the predicted way, over all verified outcomes",
        "no verified outcome yet",
    )


def _mape(error_sum: float, count: int) -> Ratio:
    return _figure(
        error_sum,
        count,
        "mean of |predicted − actual| / max(|actual|, 1 point) × 100 over verified outcomes, %",
        "no verified outcome yet",
    )


def _by_approach(summaries: list[OutcomeSummary]) -> dict[str, ApproachEffect]:
    groups: dict[str, list[OutcomeSummary]] = {}
    for s in summaries:
        groups.setdefault(s.approach_key, []).append(s)
    out: dict[str, ApproachEffect] = {}
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda s: s.metric)
        count = sum(s.count for s in group)
        out[key] = ApproachEffect(
            verifications=count,
            recommendation_accuracy=_accuracy(sum(s.successes for s in group), count),
            prediction_error_mape=_mape(sum(s.abs_pct_error_sum for s in group), count),
            metrics={
                s.metric: MetricEffect(
                    verifications=s.count,
                    success_rate=s.success_rate,
                    mean_ratio=s.mean_ratio,
                    ratio_quantiles=s.ratio_quantiles(),
                    mape=s.mape,
                )
                for s in group
            },
        )
    return out


def fitted_model(state: LearningState) -> list[dict[str, Any]]:
    """Per (approach, metric) with outcomes: the fitted dependence on the state and how
    often the predicted interval held the outcome (``learning show``).

    ``coefficients`` are in ratio units (actual ÷ the playbook's expected figure):
    ``intercept`` at a metric on target and a resource at 70 %, ``miss`` per unit of
    log distance from target, ``load`` per unit of the queueing factor
    (``learning.model``); each with its posterior sd.
    """
    fitted = pool_of(state.summaries)
    out = []
    for (approach, metric), s in sorted(state.summaries.items()):
        if s.count == 0:
            continue
        f = fit_pair(fitted, approach, metric)
        out.append(
            {
                "approach": approach,
                "metric": metric,
                "verifications": s.fitted,
                "services": sorted(s.by_service),
                "coefficients": {
                    name: {"mean": round(m, 4), "sd": round(sd, 4)}
                    for name, (m, sd) in coefficients(f).items()
                },
                "noise_sd": round(f.s2**0.5, 4),
                "coverage": msgspec.to_builtins(
                    _figure(
                        s.covered,
                        s.intervals,
                        f"verified outcomes inside the {round((s.level or LEVEL) * 100)} % "
                        "interval predicted for them, over outcomes whose prediction "
                        "stated a level",
                        "no outcome of a prediction with a stated level yet",
                    )
                ),
                "mean_width_pp": s.mean_width,
            }
        )
    return out


def learned_model(state: LearningState) -> dict[str, Any]:
    """What ``learning show`` adds to the effectiveness figures: the model's features, its
    interval level and every pair's fit. Not part of ``effectiveness``, which every plan
    carries: refitting each pair on every planning task would buy the plan nothing."""
    return {"features": list(FEATURES), "level": LEVEL, "pairs": fitted_model(state)}


def effectiveness(state: LearningState) -> LearningReport:
    """The effectiveness figures of ``state`` (module doc): a plan's ``learning_report``."""
    summaries = list(state.summaries.values())
    outcomes = sum(s.count for s in summaries)
    totals = state.totals
    statuses = [status for p in state.plans.values() for status in p.statuses.values()]
    verified_plans = sum(1 for p in state.plans.values() if p.verified)
    no_plans = "no plan issued yet"
    return LearningReport(
        recommendation_accuracy=_accuracy(sum(s.successes for s in summaries), outcomes),
        prediction_error_mape=_mape(sum(s.abs_pct_error_sum for s in summaries), outcomes),
        by_approach=_by_approach(summaries),
        implemented_share=_figure(
            statuses.count("implemented"),
            totals.items_issued,
            "plan items whose latest reported status is implemented, over plan items issued",
            no_plans,
        ),
        rejected_share=_figure(
            statuses.count("rejected"),
            totals.items_issued,
            "plan items whose latest reported status is rejected, over plan items issued",
            no_plans,
        ),
        plans_verified_share=_figure(
            verified_plans,
            totals.plans_issued,
            "plans with at least one verified outcome, over plans issued",
            no_plans,
        ),
        verified_outcomes=outcomes,
        verifications=totals.verifications,
        unknown_verifications=totals.unknown_verifications,
        undefined_verifications=totals.undefined_verifications,
        updates=totals.updates,
        unknown_updates=totals.unknown_updates,
        plans_issued=totals.plans_issued,
        items_issued=totals.items_issued,
    )
