"""Calibrating a playbook range by what was verified: a normal–normal Bayesian update.

The unknown is ``r``, the ratio of actual to predicted improvement for one approach on
one metric (1 = the playbook was right, 0.5 = it delivered half, < 0 = it made things
worse).

- **Prior**: ``r ~ N(1, τ²)``. The playbook range is read as a 95 % interval around its
  expected figure, so ``τ = (high − low) / (2 · 1.96 · expected)``, kept within
  [``TAU_MIN``, ``RATIO_CLIP``] (query optimisation's 40–70 % gives τ ≈ 0.14).
- **Observations**: each verified ratio ``r_i ~ N(r, s²)``. ``s²`` pools the sample
  variance with the prior's, ``((ν₀ τ² + (n − 1) sd²) / (ν₀ + n − 1)``, ``ν₀`` =
  ``NU0``), floored at ``S_MIN``²: one verification is as noisy as the prior is wide,
  and a few identical ratios cannot claim a certainty nobody measured (taken alone,
  two equal ratios would have sd 0 and swamp the prior).
- **Posterior**: precision ``1/τ² + n/s²``, mean ``m = (1/τ² + n·mean/s²) / precision``,
  sd ``v = precision^−½``.

The calibrated figures are the prior's expected scaled by the posterior: ``expected =
E·m`` and ``low, high = E·(m ∓ 1.96 v)`` — a 95 % interval of the *mean* effect, which
narrows as evidence grows (``OutcomeSummary.ratio_quantiles`` gives the spread of single
outcomes). Few verifications move the figure little, many move it to the evidence. The
result is clamped to [``FLOOR_PCT``, ``CEIL_PCT``] and ordered, so a badly verified
approach can go to or below 0 but never to nonsense.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from agent.learning.state import RATIO_CLIP, OutcomeSummary
from agent.planning.prioritize import prior

Z95 = 1.96
TAU_MIN = 0.1
"""The prior never claims the playbook's figure to better than ±10 % (1 sd) of itself."""
NU0 = 4.0
"""The prior's spread counts as four observations' worth of variance evidence."""
S_MIN = 0.05
"""Observation noise floor on the ratio: verifications are measurements, not oracles."""
FLOOR_PCT = -100.0
CEIL_PCT = 10_000.0


def _clamp(x: float) -> float:
    return min(max(x, FLOOR_PCT), CEIL_PCT) if not math.isnan(x) else 0.0


def prior_tau(low: float, expected: float, high: float) -> float:
    """The prior sd of the ratio, from the range read as a 95 % interval."""
    if expected == 0.0 or not math.isfinite(expected):
        return RATIO_CLIP
    tau = abs(high - low) / (2.0 * Z95 * abs(expected))
    if not math.isfinite(tau):
        return RATIO_CLIP
    return min(max(tau, TAU_MIN), RATIO_CLIP)


def posterior(tau: float, n: int, mean: float, sd: float | None) -> tuple[float, float]:
    """(mean, sd) of ``r`` after ``n`` ratios with this mean and sample sd (see module doc)."""
    if n <= 0:
        return 1.0, tau
    sample_var = sd * sd if sd is not None and n >= 2 else 0.0
    s2 = (NU0 * tau * tau + (n - 1) * sample_var) / (NU0 + n - 1)
    s2 = max(s2, S_MIN * S_MIN)
    prior_precision = 1.0 / (tau * tau)
    precision = prior_precision + n / s2
    m = (prior_precision * 1.0 + n * mean / s2) / precision
    return m, math.sqrt(1.0 / precision)


def calibrated(
    prior: tuple[float, float, float], summary: OutcomeSummary | None
) -> tuple[float, float, float, int]:
    """(low, expected, high, verifications): the prior range moved by the verified ratios.

    No summary or no ratio returns the prior exactly, with 0 verifications.
    """
    low, expected, high = prior
    if summary is None or summary.ratio_count <= 0 or summary.mean_ratio is None:
        return low, expected, high, 0
    mean = min(max(summary.mean_ratio, -RATIO_CLIP), RATIO_CLIP)
    if not math.isfinite(mean) or not math.isfinite(expected):
        return low, expected, high, 0
    m, v = posterior(prior_tau(low, expected, high), summary.ratio_count, mean, summary.ratio_sd)
    mid = _clamp(expected * m)
    a, b = _clamp(expected * (m - Z95 * v)), _clamp(expected * (m + Z95 * v))
    return min(a, b, mid), mid, max(a, b, mid), summary.ratio_count


def calibration_from(
    summaries: Mapping[tuple[str, str], OutcomeSummary],
) -> Callable[[str, str], tuple[float, float, float, int]]:
    """``prioritize``'s ``calibrate`` hook: the playbook prior moved by ``summaries``."""

    def calibrate(approach_key: str, metric: str) -> tuple[float, float, float, int]:
        low, expected, high, _ = prior(approach_key, metric)
        return calibrated((low, expected, high), summaries.get((approach_key, metric)))

    return calibrate
