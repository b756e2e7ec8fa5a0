"""What a verification says about a prediction: the actual improvement and how far off we were.

The actual improvement is measured in the same sense as the playbook's percentages
(``agent.planning.playbook``): positive is better, whatever the metric's direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agent.analysis.catalog import CATALOG
from agent.learning.model import Context, miss_of
from agent.learning.records import PredictionRecord
from agent.planning.playbook import PLAYBOOK
from protocols.messages import Direction, VerificationResult

ERROR_FLOOR_PCT = 1.0
"""``abs_pct_error`` divides by ``max(|actual|, 1)`` points: an actual change near 0 %
would otherwise turn any prediction into an error of thousands of per cent."""
MAX_ERROR_PCT = 1e6
"""Errors are capped here so that absurd inputs stay finite in sums."""


def actual_improvement_pct(
    direction: Direction, bounded: bool, baseline: float, measured: float
) -> float | None:
    """How much better ``measured`` is than ``baseline``, in %; None when undefined.

    - lower is better: ``(baseline − measured) / baseline × 100`` (30 % less latency is +30);
    - bounded higher is better (a percentage capped at 100): the share of the shortfall to
      100 removed, ``(measured − baseline) / (100 − baseline) × 100`` (a hit rate from 78 to
      95 removes 17 of 22 points: +77.3); undefined at or above a baseline of 100;
    - other higher is better: ``(measured − baseline) / baseline × 100``.

    The denominator is taken by magnitude, so the sign always says whether the metric moved
    the right way. Undefined (None) when the denominator is 0 or anything is not finite.
    """
    if not (math.isfinite(baseline) and math.isfinite(measured)):
        return None
    if direction == "lower_is_better":
        gain, base = baseline - measured, abs(baseline)
    elif bounded:
        gain, base = measured - baseline, 100.0 - baseline
        if base <= 0.0:
            return None
    else:
        gain, base = measured - baseline, abs(baseline)
    if base == 0.0:
        return None
    pct = gain / base * 100.0
    return pct if math.isfinite(pct) else None


def approach_key_of(prediction: PredictionRecord) -> str:
    """The playbook key, or the display name for an approach outside the playbook."""
    return prediction.approach_key or prediction.approach


@dataclass(frozen=True, slots=True)
class Outcome:
    """One verified prediction: predicted against actual improvement, in %."""

    verification_id: str
    recommendation_id: str
    plan_id: str
    approach_key: str
    metric: str
    predicted_pct: float
    """The prediction's ``expected_improvement_pct.expected``."""
    actual_pct: float
    success: bool
    """The metric moved the predicted way (for a prediction of 0: it improved)."""
    ratio: float | None
    """``actual / prior``, the prior being the playbook's expected impact (the prediction
    itself for an approach outside the playbook); None when the prior is 0. Against the
    *prior*, not the (possibly calibrated) prediction: calibration multiplies the prior by
    the mean ratio, so every ratio must share that base or later ones drift towards 1."""
    abs_pct_error: float
    """``|predicted − actual| / max(|actual|, 1) × 100``, in % (``ERROR_FLOOR_PCT``, capped)."""
    verified_at: float
    """Epoch seconds."""
    context: Context
    """The state the prediction was made for (the model's features)."""
    covered: bool | None = None
    """The actual fell inside the predicted ``low``–``high``; None when the prediction had
    no stated level (a record from before predictive intervals)."""
    width_pct: float | None = None
    """``high − low`` of the predicted interval, in points."""
    level: float | None = None
    """The level the interval was stated at."""
    service: str = ""
    """The backend it was applied on (empty: not named)."""


def outcome_of(verification: VerificationResult, prediction: PredictionRecord) -> Outcome | None:
    """Score ``verification`` against ``prediction``; None when the improvement is undefined.

    Direction comes from the prediction (what we judged), boundedness from the catalog
    (unknown metrics are unbounded), and the two values from Athena's measurement.
    """
    spec = CATALOG.get(prediction.metric)
    actual = actual_improvement_pct(
        prediction.direction,
        spec.bounded if spec is not None else False,
        verification.baseline_value,
        verification.measured_value,
    )
    predicted = prediction.expected_improvement_pct.expected
    if actual is None or not math.isfinite(predicted):
        return None
    playbook = PLAYBOOK.get(prediction.approach_key)
    base = playbook.impact_expected if playbook is not None else predicted
    ratio = actual / base if base != 0.0 else None
    if ratio is not None and not math.isfinite(ratio):
        ratio = None
    error = abs(predicted - actual) / max(abs(actual), ERROR_FLOOR_PCT) * 100.0
    interval = prediction.expected_improvement_pct
    stated = interval.level is not None
    return Outcome(
        verification_id=verification.verification_id,
        recommendation_id=verification.recommendation_id,
        plan_id=verification.plan_id,
        approach_key=approach_key_of(prediction),
        metric=prediction.metric,
        predicted_pct=predicted,
        actual_pct=actual,
        success=actual < 0.0 if predicted < 0.0 else actual > 0.0,
        ratio=ratio,
        abs_pct_error=min(error, MAX_ERROR_PCT),
        verified_at=verification.verified_at.timestamp(),
        context=context_of_record(prediction, spec.bounded if spec is not None else False),
        covered=interval.low <= actual <= interval.high if stated else None,
        width_pct=interval.high - interval.low if stated else None,
        level=interval.level,
        service=prediction.service,
    )


def context_of_record(prediction: PredictionRecord, bounded: bool) -> Context:
    """The recorded context; for a record without one, the miss its own values give."""
    miss = prediction.context.get("miss")
    if miss is None or not math.isfinite(miss):
        miss = miss_of(
            prediction.direction, bounded, prediction.baseline_value, prediction.target_value
        )
    load = prediction.context.get("load")
    return Context(miss=miss, load=load if load is not None and math.isfinite(load) else None)
