"""Availability and error rate judged as SLOs: error budget left and multi-window burn rates.

The burn-rate rules are the SRE workbook's (chapter 5, "Alerting on SLOs", table 5-8):
a rule fires when the budget burns at ``threshold``× the sustainable rate over both
its long and its short window, both ending at the newest sample.

Bad fractions are time-weighted: a sample stands for the interval back to the one
before it (a scraped ratio describes the scrape interval it closes), capped at the
series' median interval, so a gap in scraping is a gap in coverage rather than one
sample stretched over hours. Samples at the same instant are averaged first. Values
outside 0–100 % are clipped: a ratio beyond its bounds is a data error, not a burn.
Figures are rounded to six significant digits (as trends are) and ratios are capped
at ``RATIO_CAP``, so a 100 % objective (no budget at all) never divides by zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agent.analysis.series import FloatArray, Series, parse_window, sig
from agent.errors import InvalidParams
from protocols.messages import BurnRate, SloStatus

SloKind = Literal["availability", "error_rate"]

RATIO_CAP = 1e6
"""Largest burn rate (and most negative budget) reported."""
MIN_COVERAGE = 0.9
"""Share of a rule's long window the data must cover before the rule may fire."""
_EPOCH_MIN = -62_135_596_800.0  # 0001-01-01: times beyond datetime's range are clamped
_EPOCH_MAX = 253_402_300_799.0  # 9999-12-31T23:59:59


@dataclass(frozen=True, slots=True)
class BurnRule:
    """One multi-window rule: fire at ``threshold``× burn over both windows."""

    long_window: str
    short_window: str
    threshold: float
    severity: Literal["page", "ticket"]


BURN_RULES: tuple[BurnRule, ...] = (
    BurnRule("1h", "5m", 14.4, "page"),  # 2 % of a 30-day budget in an hour
    BurnRule("6h", "30m", 6.0, "page"),  # 5 % in six hours
    BurnRule("1d", "2h", 3.0, "ticket"),  # 10 % in a day
    BurnRule("3d", "6h", 1.0, "ticket"),  # 10 % in three days
)
"""The SRE workbook's recommended rules for a 99.9 % / 30-day SLO, in the order reported."""


def _ratio(bad: float, allowed: float) -> float:
    """``bad / allowed`` capped at ``RATIO_CAP``; no budget at all burns at the cap."""
    if bad <= 0.0:
        return 0.0
    if allowed <= 0.0:
        return RATIO_CAP
    return min(bad / allowed, RATIO_CAP)


@dataclass(frozen=True, slots=True)
class _Timeline:
    """Unique times relative to the newest, the bad fraction at each, the span each covers."""

    rel: FloatArray
    bad: FloatArray
    width: FloatArray

    def over(self, span_s: float) -> tuple[float | None, float]:
        """(time-weighted bad fraction, covered share) of the last ``span_s`` seconds."""
        overlap = np.clip(self.rel - np.maximum(self.rel - self.width, -span_s), 0.0, None)
        covered = float(np.sum(overlap))
        if covered <= 0.0:
            return None, 0.0
        return float(np.dot(overlap, self.bad)) / covered, min(1.0, covered / span_s)


def _timeline(ts: FloatArray, bad: FloatArray) -> _Timeline:
    times, inverse = np.unique(np.clip(ts, _EPOCH_MIN, _EPOCH_MAX), return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    mean_bad = np.bincount(inverse, weights=bad) / counts
    gaps = np.diff(times)
    cadence = float(np.median(gaps)) if gaps.size else 0.0
    width = np.minimum(np.r_[cadence, gaps], cadence)
    return _Timeline(rel=times - times[-1], bad=mean_bad, width=width)


def slo_status(
    series: Series, *, kind: SloKind, target: float, window_s: float
) -> SloStatus | None:
    """The SLO over the last ``window_s`` seconds and the four burn-rate rules; None if empty.

    ``target`` is the metric's own target: 99.9 (% good) for availability, 1.0 (%
    bad) for error rate. A bare number (no time) still gives the bad fraction and the
    budget, but every rule has no burn, coverage 0 and does not fire. A rule's burns
    are measured over what data exists (``coverage`` says how much of the long window
    that is), yet it fires only with ≥ 90 % coverage: a pager would not trust a
    three-day rule read off one hour. Burn windows look back from the newest sample
    over all of ``series``, not only the SLO window.
    """
    if not (math.isfinite(target) and 0.0 <= target <= 100.0):
        raise InvalidParams(f"SLO target {target!r} is not a percentage")
    if not (math.isfinite(window_s) and window_s > 0.0):
        raise InvalidParams(f"SLO window {window_s!r} s is not a positive duration")
    if len(series) == 0:
        return None
    if kind == "availability":
        objective, allowed = target, (100.0 - target) / 100.0
        bad = (100.0 - series.values) / 100.0
    else:
        objective, allowed = 100.0 - target, target / 100.0
        bad = series.values / 100.0
    bad = np.clip(bad, 0.0, 1.0)  # also tames ±1e308: (100 − v) saturates, never overflows

    if series.scalar:
        bad_fraction = float(bad[0])
        rates = [_burn(rule, None, None, 0.0, allowed) for rule in BURN_RULES]
    else:
        line = _timeline(series.ts, bad)
        in_window, _ = line.over(window_s)
        # One instant covers no time: the plain mean of its samples is all there is.
        bad_fraction = float(np.mean(line.bad)) if in_window is None else in_window
        rates = []
        for rule in BURN_RULES:
            long_bad, coverage = line.over(parse_window(rule.long_window))
            short_bad, _ = line.over(parse_window(rule.short_window))
            rates.append(_burn(rule, long_bad, short_bad, coverage, allowed))

    bad_fraction = min(max(bad_fraction, 0.0), 1.0)
    return SloStatus(
        objective_pct=objective,
        bad_fraction=sig(bad_fraction),
        error_budget_remaining=sig(1.0 - _ratio(bad_fraction, allowed)),
        burn_rates=rates,
    )


def _burn(
    rule: BurnRule,
    long_bad: float | None,
    short_bad: float | None,
    coverage: float,
    allowed: float,
) -> BurnRate:
    long_burn = None if long_bad is None else sig(_ratio(long_bad, allowed))
    short_burn = None if short_bad is None else sig(_ratio(short_bad, allowed))
    firing = (
        coverage >= MIN_COVERAGE
        and long_burn is not None
        and short_burn is not None
        and long_burn >= rule.threshold
        and short_burn >= rule.threshold
    )
    return BurnRate(
        long_window=rule.long_window,
        short_window=rule.short_window,
        threshold=rule.threshold,
        severity=rule.severity,
        long_burn=long_burn,
        short_burn=short_burn,
        firing=firing,
        coverage=sig(coverage),
    )
