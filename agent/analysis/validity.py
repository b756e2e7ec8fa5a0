"""What a sample can physically be, and units that look wrong: checked before anything is judged.

A percentage outside [0, 100], a negative duration, a negative rate: no backend produces
them, so they are bugs upstream (a double-counted numerator, a clock step, a counter read
as a gauge). Averaged in, one 150 % availability sample turns a miss into 100.108 %. They
are rejected here, counted per metric, and every report says how many and why.

A unit mistake cannot be seen in one sample, only against the target: a latency whose
typical value is a thousandth of its target or less was almost certainly sent in
seconds (0.18 for 180 ms); a higher-is-better percentage whose samples all lie in
[0.5, 1] while its target is above 1 was sent as a ratio (0.999 for 99.9 %). Such a
metric is still shown as sent, flagged, and kept out of the bottlenecks: a fix planned
on a misread unit is worse than none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from agent.analysis.bottlenecks import fmt
from agent.analysis.catalog import MetricSpec
from agent.analysis.series import Series

BOUNDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "%": (0.0, 100.0),
        "ms": (0.0, math.inf),
        "req/s": (0.0, math.inf),
        "msg/s": (0.0, math.inf),
    }
)
"""Unit → the closed interval a sample of it can physically lie in."""
UNIT_GAP = 1_000.0
"""A latency whose median is this many times below its target looks like seconds."""
RATIO_FLOOR = 0.5
"""A higher-is-better percentage (availability, hit rate) whose samples all lie in
[0.5, 1] is a ratio: half a percent of availability for a whole window is no outage
anyone runs, 99.5 % sent as 0.995 is a common slip. Lower-is-better percentages (error
rate, CPU) are left alone: 0.3 % is a healthy error rate."""


@dataclass(frozen=True, slots=True)
class Screened:
    """A metric's samples with the impossible ones taken out, and what was taken out."""

    series: Series
    rejected: int = 0
    reason: str | None = None
    """``"outside [0, 100] %: 3 above, 0 below"``-style, None when nothing was rejected."""


def screen(spec: MetricSpec, series: Series) -> Screened:
    """``series`` without the samples ``spec``'s unit makes impossible (a scalar included)."""
    low, high = BOUNDS.get(spec.unit, (-math.inf, math.inf))
    values = series.values
    below = values < low
    above = values > high
    bad = below | above
    count = int(np.count_nonzero(bad))
    if count == 0:
        return Screened(series)
    keep = ~bad
    kept = Series(ts=series.ts[keep], values=values[keep], scalar=series.scalar and bool(keep[0]))
    span = f"[{fmt(low)}, {fmt(high)}]" if math.isfinite(high) else f"≥ {fmt(low)}"
    parts = [
        f"{n} {side}" for n, side in ((int(below.sum()), "below"), (int(above.sum()), "above")) if n
    ]
    return Screened(kept, count, f"outside {span} {spec.unit}: {', '.join(parts)}")


def unit_suspicion(spec: MetricSpec, series: Series, target: float) -> str | None:
    """A sentence when the values look like they were sent in another unit, else None."""
    if len(series) == 0 or not math.isfinite(target):
        return None
    typical = float(np.median(series.values))
    if spec.unit == "ms" and target > 0.0 and 0.0 < typical <= target / UNIT_GAP:
        return (
            f"{spec.name} looks like seconds, not ms: its median {fmt(typical)} ms is "
            f"1/{fmt(target / typical)} of the {fmt(target)} ms target (send milliseconds)"
        )
    ratio_like = bool(np.all(series.values <= 1.0)) and typical >= RATIO_FLOOR
    if spec.unit == "%" and spec.direction == "higher_is_better" and target > 1.0 and ratio_like:
        return (
            f"{spec.name} looks like a ratio, not a percentage: every sample is at most 1 "
            f"against a {fmt(target)} % target (send 0–100)"
        )
    return None
