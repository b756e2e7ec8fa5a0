"""Time series as numpy arrays, windows and the statistics ``current`` is computed with.

Pure: a window is measured back from the latest sample, never from the clock, so
the same data always gives the same answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from agent.errors import InvalidParams

FloatArray = npt.NDArray[np.float64]
_FLOAT_MAX = float(np.finfo(np.float64).max)

_WINDOW = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNIT_SECONDS: Mapping[str, float] = MappingProxyType(
    {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
)


def parse_window(window: str) -> float:
    """Seconds in a duration such as ``30s``, ``15m``, ``1h``, ``7d``, ``2w`` (wire ``Window``).

    Raises ``InvalidParams`` for anything else, so a bad window is the caller's error.
    """
    match = _WINDOW.match(window)
    if match is None:
        raise InvalidParams(f"window {window!r} is not a duration like 15m, 1h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """Samples sorted by time: ``ts`` in epoch seconds, ``values`` in the metric's unit.

    A bare number given inline is one sample without a time: ``scalar`` is True and
    its ``ts`` is NaN, so nothing mistakes it for a point on a time axis.
    """

    ts: FloatArray
    values: FloatArray
    scalar: bool = False

    def __len__(self) -> int:
        return int(self.values.size)


InlineValue = float | Sequence[tuple[datetime | float, float]]


def _epoch(ts: datetime | float) -> float:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            # A naive time would be read in the host's zone: environment-dependent.
            raise InvalidParams(f"timestamp {ts.isoformat()} has no UTC offset")
        return ts.timestamp()
    return float(ts)


def from_inline(value: InlineValue) -> Series:
    """A ``Series`` from one entry of ``params.metrics``: a number or ``[ts, value]`` pairs.

    Non-finite values or times raise ``InvalidParams``: the wire rejects them, and a
    caller passing them directly is told rather than handed a NaN report.
    """
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidParams(f"value {number!r} is not finite")
        return Series(ts=np.array([math.nan]), values=np.array([number]), scalar=True)
    ts = np.array([_epoch(t) for t, _ in value], dtype=np.float64)
    values = np.array([float(v) for _, v in value], dtype=np.float64)
    if not (np.isfinite(ts).all() and np.isfinite(values).all()):
        raise InvalidParams("a sample's time or value is not finite")
    order = np.argsort(ts, kind="stable")
    return Series(ts=ts[order], values=values[order])


def window(series: Series, seconds: float) -> Series:
    """The samples no older than ``seconds`` before the latest one (a scalar is kept as is)."""
    if series.scalar or len(series) == 0:
        return series
    keep = series.ts >= series.ts[-1] - seconds
    return Series(ts=series.ts[keep], values=series.values[keep])


def p95(values: FloatArray) -> float:
    """The 95th percentile with linear interpolation (numpy's default, Hyndman–Fan type 7).

    Interpolating between values near ±1.8e308 overflows; halving first cannot, and the
    percentile of the halves, doubled, is the same number.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        result = float(np.percentile(values, 95.0))
        if not math.isfinite(result):
            result = float(np.percentile(values * 0.5, 95.0)) * 2.0
    return result


def mean(values: FloatArray) -> float:
    """The arithmetic mean; a sum that would overflow is taken over values divided by n first."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = float(np.mean(values))
        if not math.isfinite(result):
            # The sum of the parts can still round past the largest float: clamp to it.
            result = float(np.clip(np.sum(values / values.size), -_FLOAT_MAX, _FLOAT_MAX))
    return result


def last(values: FloatArray) -> float:
    """The latest sample (values are sorted by time)."""
    return float(values[-1])


STATISTICS: Mapping[str, Callable[[FloatArray], float]] = MappingProxyType(
    {"p95": p95, "mean": mean, "last": last}
)
"""Statistic name (as reported in ``MetricPerformance.statistic``) → its function."""
