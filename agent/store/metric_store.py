"""The metric store: bounded windows of time series, keyed by metric name and label set.

A pure data structure (no I/O, no clock): what sources feed and analyses read.
Everything in it is bounded, and what a bound throws away is counted:

- per series, a float64 buffer of (ts, value) sorted by time that grows by doubling up
  to ``max_samples_per_series``; past it the oldest samples are dropped (``dropped_full``);
- at most ``max_series`` series; a new one beyond that evicts the series written least
  recently (``evicted_series``, its samples in ``evicted_samples``);
- samples older than ``max_age_s`` before the newest sample the store has seen are
  pruned (``pruned_old``): age is measured on the data's own clock, so the same
  samples always give the same store.

Invariant: ``accepted == samples + dropped_full + pruned_old + evicted_samples``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from agent.analysis.series import FloatArray, Series, epoch_seconds
from protocols.messages import TaskParams

LabelSet: TypeAlias = tuple[tuple[str, str], ...]
"""Labels as a sorted tuple of (key, value) pairs: hashable, one spelling per set."""
SeriesKey: TypeAlias = tuple[str, LabelSet]
LabelsLike: TypeAlias = Mapping[str, str] | LabelSet | None

DEFAULT_MAX_SAMPLES_PER_SERIES = 20_000
DEFAULT_MAX_SERIES = 10_000
DEFAULT_MAX_AGE_S = 7 * 86_400.0
_INITIAL_CAPACITY = 64
_SWEEPS_PER_AGE = 16
"""A full prune pass runs each time the horizon moves by 1/16 of ``max_age_s``."""


def label_set(labels: LabelsLike = None) -> LabelSet:
    """The canonical ``LabelSet`` of a mapping, a pair tuple or None (no labels)."""
    if labels is None:
        return ()
    items = labels.items() if isinstance(labels, Mapping) else labels
    return tuple(sorted((str(k), str(v)) for k, v in items))


def _empty() -> Series:
    return Series(ts=np.empty(0), values=np.empty(0))


class _Buffer:
    """One series: samples sorted by time in ``[start, end)`` of two growable arrays.

    Appends in time order are amortised O(1): the arrays grow by half (doubling would
    leave up to half of a growing series' memory empty: 32 bytes a sample instead of 16)
    up to the limit plus a quarter of slack, and once at that size the live samples are
    moved back to the front only after the slack is used up. A sample older than the newest one is
    merged in by sorting just the tail it lands in.
    """

    __slots__ = ("_end", "_start", "_ts", "_values", "source")

    def __init__(self, source: str) -> None:
        self._ts: FloatArray = np.empty(_INITIAL_CAPACITY)
        self._values: FloatArray = np.empty(_INITIAL_CAPACITY)
        self._start = 0
        self._end = 0
        self.source = source

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def ts(self) -> FloatArray:
        return self._ts[self._start : self._end]

    @property
    def values(self) -> FloatArray:
        return self._values[self._start : self._end]

    @property
    def newest(self) -> float:
        return float(self._ts[self._end - 1])

    def insert(self, ts: FloatArray, values: FloatArray, limit: int) -> int:
        """Insert samples sorted by time; returns how many of the oldest were dropped."""
        at = self._end
        if self._end > self._start and ts[0] < self._ts[self._end - 1]:
            # Out of order: merge with the part of the series the new samples reach into.
            at = self._start + int(np.searchsorted(self.ts, ts[0], side="right"))
            merged_ts = np.concatenate((self._ts[at : self._end], ts))
            order = np.argsort(merged_ts, kind="stable")
            ts = merged_ts[order]
            values = np.concatenate((self._values[at : self._end], values))[order]
        head = at - self._start
        dropped = max(0, head + ts.size - limit)
        from_head = min(dropped, head)
        self._start += from_head
        head -= from_head
        ts, values = ts[dropped - from_head :], values[dropped - from_head :]
        self._reserve(at, head + ts.size, limit)
        at = self._start + head
        self._ts[at : at + ts.size] = ts
        self._values[at : at + ts.size] = values
        self._end = at + ts.size
        return dropped

    def _reserve(self, at: int, size: int, limit: int) -> None:
        """Room for ``size`` samples from ``start``, keeping ``[start, at)``."""
        capacity = self._ts.size
        if self._start + size <= capacity:
            return
        head = at - self._start
        ceiling = limit + max(limit // 4, 1)
        if size > capacity or capacity < ceiling:
            grown = min(max(capacity + capacity // 2, size), ceiling)
            ts, values = np.empty(max(grown, size)), np.empty(max(grown, size))
            ts[:head] = self._ts[self._start : at]
            values[:head] = self._values[self._start : at]
            self._ts, self._values = ts, values
        else:  # at full size: slide the live samples back to the front (numpy copes with overlap)
            self._ts[:head] = self._ts[self._start : at]
            self._values[:head] = self._values[self._start : at]
        self._start = 0

    def prune_before(self, cutoff: float) -> int:
        """Drop samples older than ``cutoff``; returns how many."""
        k = int(np.searchsorted(self.ts, cutoff, side="left"))
        self._start += k
        return k

    def span(self, lo: float, hi: float) -> Series:
        """A copy of the samples with ``lo <= ts <= hi``."""
        ts = self.ts
        i = int(np.searchsorted(ts, lo, side="left"))
        j = int(np.searchsorted(ts, hi, side="right"))
        return Series(ts=ts[i:j].copy(), values=self.values[i:j].copy())


class MetricStore:
    """Time series by (metric, labels), plus bare numbers given without a time (kept apart).

    Queries return copies (``Series``), so a later write never changes a result.
    """

    def __init__(
        self,
        *,
        max_samples_per_series: int = DEFAULT_MAX_SAMPLES_PER_SERIES,
        max_series: int = DEFAULT_MAX_SERIES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
    ) -> None:
        if max_samples_per_series < 1 or max_series < 1:
            raise ValueError("max_samples_per_series and max_series must be at least 1")
        if not max_age_s > 0.0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self.max_samples_per_series = max_samples_per_series
        self.max_series = max_series
        self.max_age_s = float(max_age_s)
        self._buffers: OrderedDict[SeriesKey, _Buffer] = OrderedDict()  # least recent first
        self._by_metric: dict[str, dict[LabelSet, _Buffer]] = {}
        self._scalars: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._newest: float | None = None
        self._swept_to = -math.inf
        self._statistics: dict[str, tuple[str, str]] = {}
        self._counts = dict.fromkeys(
            (
                "accepted",
                "rejected",
                "dropped_full",
                "evicted_series",
                "evicted_samples",
                "pruned_old",
            ),
            0,
        )

    # --- writing ----------------------------------------------------------------

    def add(
        self,
        metric: str,
        ts: float,
        value: float,
        labels: LabelsLike = None,
        source: str = "inline",
    ) -> bool:
        """Add one sample; False when it is not kept (non-finite, or older than the horizon)."""
        return (
            self.add_many(
                metric, np.array([ts], dtype=np.float64), np.array([value]), labels, source
            )
            == 1
        )

    def add_many(
        self,
        metric: str,
        ts: npt.ArrayLike,
        values: npt.ArrayLike,
        labels: LabelsLike = None,
        source: str = "inline",
    ) -> int:
        """Add samples of one series in any order; returns how many were taken in.

        Non-finite times or values are rejected (``rejected``); samples already older
        than the age horizon are counted as ``pruned_old``. Taken-in samples may still
        push the oldest ones out of a full series (``dropped_full``).
        """
        t = np.asarray(ts, dtype=np.float64).ravel()
        v = np.asarray(values, dtype=np.float64).ravel()
        if t.shape != v.shape:
            raise ValueError(f"{t.size} times for {v.size} values")
        finite = np.isfinite(t) & np.isfinite(v)
        if not bool(finite.all()):
            self._counts["rejected"] += int(t.size - np.count_nonzero(finite))
            t, v = t[finite], v[finite]
        if t.size == 0:
            return 0
        self._counts["accepted"] += int(t.size)
        if t.size > 1 and not bool(np.all(t[1:] >= t[:-1])):
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
        newest = float(t[-1])
        if self._newest is None or newest > self._newest:
            self._newest = newest
        cutoff = self._cutoff()
        if t[0] < cutoff:
            fresh = int(np.searchsorted(t, cutoff, side="left"))
            self._counts["pruned_old"] += fresh
            t, v = t[fresh:], v[fresh:]
            if t.size == 0:
                return 0
        buffer = self._buffer(metric, label_set(labels), source)
        self._counts["dropped_full"] += buffer.insert(t, v, self.max_samples_per_series)
        self._counts["pruned_old"] += buffer.prune_before(cutoff)
        if cutoff - self._swept_to >= self.max_age_s / _SWEEPS_PER_AGE:
            self.prune()
        return int(t.size)

    def set_scalar(self, metric: str, value: float, source: str = "inline") -> bool:
        """Keep a bare number given without a time (apart from the series); False if not finite."""
        if not math.isfinite(value):
            self._counts["rejected"] += 1
            return False
        self._scalars[metric] = (float(value), source)
        self._scalars.move_to_end(metric)
        if len(self._scalars) > self.max_series:
            self._scalars.popitem(last=False)
            self._counts["evicted_series"] += 1
        return True

    def prune(self, now: float | None = None) -> int:
        """Drop every sample older than ``max_age_s`` before ``now`` (default: the newest seen).

        Returns how many; a series left empty is forgotten (not counted as evicted).
        """
        reference = self._newest if now is None else now
        if reference is None:
            return 0
        cutoff = reference - self.max_age_s
        pruned = 0
        for key in list(self._buffers):
            buffer = self._buffers[key]
            pruned += buffer.prune_before(cutoff)
            if len(buffer) == 0:
                self._forget(key)
        self._counts["pruned_old"] += pruned
        if now is None:
            self._swept_to = cutoff
        return pruned

    def _cutoff(self) -> float:
        return -math.inf if self._newest is None else self._newest - self.max_age_s

    def _buffer(self, metric: str, labels: LabelSet, source: str) -> _Buffer:
        key = (metric, labels)
        buffer = self._buffers.get(key)
        if buffer is None:
            if len(self._buffers) >= self.max_series:
                old_key, old = next(iter(self._buffers.items()))
                self._counts["evicted_series"] += 1
                self._counts["evicted_samples"] += len(old)
                self._forget(old_key)
            buffer = _Buffer(source)
            self._buffers[key] = buffer
            self._by_metric.setdefault(metric, {})[labels] = buffer
        else:
            self._buffers.move_to_end(key)
            buffer.source = source
        return buffer

    def _forget(self, key: SeriesKey) -> None:
        del self._buffers[key]
        metric, labels = key
        by_labels = self._by_metric[metric]
        del by_labels[labels]
        if not by_labels:
            del self._by_metric[metric]

    # --- reading ----------------------------------------------------------------

    def metrics(self) -> set[str]:
        """Names with at least one time series (bare numbers: ``scalar_metrics``)."""
        cutoff = self._cutoff()
        return {
            m for m, by in self._by_metric.items() if any(b.newest >= cutoff for b in by.values())
        }

    def scalar_metrics(self) -> set[str]:
        """Names with a bare number."""
        return set(self._scalars)

    def label_sets(self, metric: str) -> list[LabelSet]:
        """The label sets ``metric`` has series for, sorted: not one whose samples all fell
        past the age horizon since the last prune (``series`` would return it empty)."""
        cutoff = self._cutoff()
        return sorted(ls for ls, b in self._by_metric.get(metric, {}).items() if b.newest >= cutoff)

    def scalar(self, metric: str) -> float | None:
        entry = self._scalars.get(metric)
        return None if entry is None else entry[0]

    def newest_ts(self) -> float | None:
        """The newest sample time the store has seen: the reference of its age horizon."""
        return self._newest

    def snapshot(self, *, window_s: float, end: float | None = None) -> MetricStore:
        """A copy of the last ``window_s`` seconds (before ``end``, default the newest sample).

        A task analyses the copy in a worker thread while ingestion goes on writing here.
        """
        copy = MetricStore(
            max_samples_per_series=self.max_samples_per_series,
            max_series=self.max_series,
            max_age_s=max(self.max_age_s, window_s),
        )
        for metric, buffers in self._by_metric.items():
            for labels, buffer in buffers.items():
                hi = end if end is not None else (self._newest or math.inf)
                part = buffer.span(max(hi - window_s, self._cutoff()), hi)
                if len(part):
                    copy.add_many(metric, part.ts, part.values, labels, source=buffer.source)
        for metric, (value, source) in self._scalars.items():
            copy.set_scalar(metric, value, source=source)
        copy._statistics = dict(self._statistics)
        return copy

    def set_statistic(self, metric: str, statistic: str, reason: str) -> None:
        """Say which statistic ``metric``'s samples already are, when it is not the catalog's.

        A source that could not measure a p95 (a histogram whose observations all fell in
        one bucket) stores the mean instead and says so here, so the judge names the
        statistic actually used and the report says why.
        """
        self._statistics[metric] = (statistic, reason)

    def statistic_of(self, metric: str) -> tuple[str, str] | None:
        """(statistic, reason) a source set for ``metric``, or None: the catalog's holds."""
        return self._statistics.get(metric)

    def sources(self) -> dict[str, list[str]]:
        """Metric → the sources its series came from (inline, kpi, prometheus…)."""
        out: dict[str, set[str]] = {}
        for metric, buffers in self._by_metric.items():
            out.setdefault(metric, set()).update(b.source for b in buffers.values())
        for metric, (_, source) in self._scalars.items():
            out.setdefault(metric, set()).add(source)
        return {metric: sorted(found) for metric, found in sorted(out.items())}

    def source(self, metric: str, labels: LabelsLike = None) -> str:
        """Who last wrote the series (or, failing one, the bare number); KeyError if neither."""
        buffer = self._by_metric.get(metric, {}).get(label_set(labels))
        if buffer is not None:
            return buffer.source
        if labels is None and metric in self._scalars:
            return self._scalars[metric][1]
        raise KeyError(f"no data for {metric} {label_set(labels)}")

    def series(
        self,
        metric: str,
        labels: LabelsLike = None,
        *,
        window_s: float | None = None,
        end: float | None = None,
    ) -> Series:
        """The series of exactly ``labels`` within the window (empty if there is none).

        The window runs back ``window_s`` seconds (inclusive) from ``end``, or from the
        newest sample of ``metric`` in any label set, so label sets line up. Bare
        numbers are never returned here: ``scalar`` asks for them, so a number without
        a time cannot pass for a point on a time axis.
        """
        bounds = self._bounds(metric, window_s, end)
        buffer = self._by_metric.get(metric, {}).get(label_set(labels))
        return _empty() if buffer is None else buffer.span(*bounds)

    def select(
        self,
        metric: str,
        *,
        window_s: float | None = None,
        end: float | None = None,
        **label_filters: str,
    ) -> dict[LabelSet, Series]:
        """Every label set carrying all of ``label_filters`` with samples in the window.

        A label named like a keyword here (``window_s``, ``end``, ``metric``) cannot be
        filtered on this way; filter the result of ``select(metric)`` instead.
        """
        lo, hi = self._bounds(metric, window_s, end)
        found: dict[LabelSet, Series] = {}
        for labels, buffer in sorted(self._by_metric.get(metric, {}).items()):
            present = dict(labels)
            if all(present.get(k) == v for k, v in label_filters.items()):
                part = buffer.span(lo, hi)
                if len(part):
                    found[labels] = part
        return found

    def merged(
        self, metric: str, *, window_s: float | None = None, end: float | None = None
    ) -> Series:
        """All label sets of ``metric`` in one series sorted by time (empty if none)."""
        parts = self.select(metric, window_s=window_s, end=end)
        if not parts:
            return _empty()
        ts = np.concatenate([s.ts for s in parts.values()])
        values = np.concatenate([s.values for s in parts.values()])
        order = np.argsort(ts, kind="stable")
        return Series(ts=ts[order], values=values[order])

    def _bounds(
        self, metric: str, window_s: float | None, end: float | None
    ) -> tuple[float, float]:
        """``[lo, hi]`` of a window, never reaching past the age horizon."""
        if window_s is not None and not window_s >= 0.0:
            raise ValueError(f"window_s must be non-negative, got {window_s}")
        buffers = self._by_metric.get(metric, {}).values()
        hi = end if end is not None else max((b.newest for b in buffers), default=math.inf)
        lo = -math.inf if window_s is None else hi - window_s
        return max(lo, self._cutoff()), hi

    def stats(self) -> dict[str, int]:
        """What was taken in, refused and thrown away, and what is held now."""
        return {
            **self._counts,
            "series": len(self._buffers),
            "scalars": len(self._scalars),
            "samples": sum(len(b) for b in self._buffers.values()),
        }


def store_from_params(
    params: TaskParams,
    *,
    max_samples_per_series: int = DEFAULT_MAX_SAMPLES_PER_SERIES,
    max_series: int = DEFAULT_MAX_SERIES,
    max_age_s: float = DEFAULT_MAX_AGE_S,
) -> MetricStore:
    """A store holding a task's inline data: ``params.metrics`` and labelled ``params.samples``.

    Numbers become bare numbers, ``[ts, value]`` pairs an unlabelled series; samples are
    grouped by (metric, labels) so each series is written once, vectorised. The source
    is ``params.source`` or ``inline``. A naive datetime raises ``InvalidParams``.

    The store holds at least every sample the task sent for a series: the message's own
    limits bound it already, and a task whose 5.8 days were cut to the newest 20 000
    samples would be judged on 2.3 days while asking about a week.
    """
    longest = max(
        (len(v) for v in params.metrics.values() if not isinstance(v, int | float)), default=0
    )
    store = MetricStore(
        max_samples_per_series=max(max_samples_per_series, longest, len(params.samples)),
        max_series=max_series,
        max_age_s=max_age_s,
    )
    source = params.source or "inline"
    for name, value in params.metrics.items():
        if isinstance(value, int | float):
            store.set_scalar(name, float(value), source)
        else:
            ts = np.array([epoch_seconds(t) for t, _ in value], dtype=np.float64)
            values = np.array([v for _, v in value], dtype=np.float64)
            store.add_many(name, ts, values, source=source)
    # Grouped by labels as written (no sort per sample); add_many merges spellings that
    # name one label set in a different order.
    groups: dict[tuple[str, LabelSet], tuple[list[float], list[float]]] = {}
    for sample in params.samples:
        key = (sample.metric, tuple(sample.labels.items()))
        ts_list, value_list = groups.setdefault(key, ([], []))
        ts_list.append(epoch_seconds(sample.ts))
        value_list.append(sample.value)
    for (metric, labels), (ts_list, value_list) in groups.items():
        store.add_many(metric, np.array(ts_list), np.array(value_list), labels, source)
    return store
