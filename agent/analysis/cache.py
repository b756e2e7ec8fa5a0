"""Cache findings: hit rate by key class, memory against its limit, evictions and expirations.

Reads the cache's own series (names in ``catalog.AUXILIARY``) and says what limits the
hit rate: a working set that does not fit (evictions with memory near its limit), TTLs
shorter than the re-use interval (expirations outpacing evictions while hits miss their
target), or a key class that drags the rate down. Each finding carries its numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from agent.analysis.series import Series, counter_increase
from protocols.reports import CacheFinding, CacheMemory, CacheState, KeyClassHitRate

Labels = tuple[tuple[str, str], ...]

MEMORY_BOUND_PCT = 90.0
"""Memory use (of its limit) at which evictions mean the working set does not fit."""
WEAK_CLASS_SHARE_PCT = 10.0
"""A key class below target matters when it carries at least this share of lookups."""


def _label(labels: Labels, key: str) -> str | None:
    return next((v for k, v in labels if k == key), None)


def _span(series: Series) -> float:
    return float(series.ts[-1] - series.ts[0]) if len(series) > 1 and not series.scalar else 0.0


def _rate(series: Series | None) -> float | None:
    """Per-second rate of a counter over its window (None without two samples)."""
    if series is None or _span(series) <= 0:
        return None
    return counter_increase(series) / _span(series)


def _r(x: float | None, digits: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def key_class_hit_rates(
    hits: Mapping[Labels, Series],
    misses: Mapping[Labels, Series],
    rates: Mapping[Labels, Series],
    *,
    target: float,
) -> list[KeyClassHitRate]:
    """Hit rate per ``key_class`` label: from hit/miss counters, else from hit-rate gauges."""
    classes: dict[str, KeyClassHitRate] = {}
    totals: dict[str, tuple[float, float]] = {}
    for labels, series in hits.items():
        name = _label(labels, "key_class")
        if name is not None and len(series) > 1:
            h, m = totals.get(name, (0.0, 0.0))
            totals[name] = (h + counter_increase(series), m)
    for labels, series in misses.items():
        name = _label(labels, "key_class")
        if name is not None and len(series) > 1:
            h, m = totals.get(name, (0.0, 0.0))
            totals[name] = (h, m + counter_increase(series))
    lookups_all = sum(h + m for h, m in totals.values())
    for name, (h, m) in totals.items():
        if h + m > 0:
            rate = 100.0 * h / (h + m)
            classes[name] = KeyClassHitRate(
                key_class=name,
                hit_rate_pct=_r(rate),
                lookups=_r(h + m, 0),
                share_pct=_r(100.0 * (h + m) / lookups_all) if lookups_all else None,
                meeting_target=rate >= target,
                basis="hit/miss counters",
            )
    for labels, series in rates.items():
        name = _label(labels, "key_class")
        if name is None or name in classes or len(series) == 0:
            continue
        rate = float(np.mean(series.values))
        classes[name] = KeyClassHitRate(
            key_class=name,
            hit_rate_pct=_r(rate),
            lookups=None,
            share_pct=None,
            meeting_target=rate >= target,
            basis="hit-rate samples",
        )
    return sorted(
        classes.values(),
        key=lambda c: (math.inf if c.hit_rate_pct is None else c.hit_rate_pct, c.key_class),
    )


def cache_findings(
    *,
    hit_rate: float | None,
    target: float,
    key_classes: list[KeyClassHitRate],
    memory_used: Series | None,
    memory_limit: Series | None,
    memory_utilization: Series | None,
    evictions: Series | None,
    expirations: Series | None,
) -> CacheState:
    """The cache's state and what limits its hit rate, each finding with its numbers."""
    memory: CacheMemory | None = None
    utilization: float | None = None
    if (
        memory_used is not None
        and memory_limit is not None
        and len(memory_used)
        and len(memory_limit)
    ):
        used, limit = float(memory_used.values[-1]), float(memory_limit.values[-1])
        if limit > 0:
            utilization = 100.0 * used / limit
            memory = CacheMemory(
                used_bytes=_r(used, 0),
                limit_bytes=_r(limit, 0),
                utilization_pct=_r(utilization),
                basis="cache_memory_used_bytes / cache_memory_limit_bytes (latest)",
            )
    if utilization is None and memory_utilization is not None and len(memory_utilization):
        utilization = float(memory_utilization.values[-1])
        memory = CacheMemory(utilization_pct=_r(utilization), basis="memory_utilization (latest)")
    eviction_rate, expiry_rate = _rate(evictions), _rate(expirations)

    findings: list[CacheFinding] = []
    missing = hit_rate is not None and hit_rate < target
    if eviction_rate and utilization is not None and utilization >= MEMORY_BOUND_PCT:
        findings.append(
            CacheFinding(
                kind="memory_bound_evictions",
                detail=f"evicting {eviction_rate:.3g} keys/s with memory at {utilization:.1f} % "
                "of its limit: the working set does not fit; add memory or evict by LFU",
            )
        )
    if missing and expiry_rate and expiry_rate > (eviction_rate or 0.0):
        findings.append(
            CacheFinding(
                kind="short_ttl",
                detail=f"keys expire at {expiry_rate:.3g}/s, faster than they are evicted "
                f"({eviction_rate or 0:.3g}/s), while the hit rate {hit_rate:.2f} % misses "
                f"{target:g} %: TTLs are shorter than the re-use interval",
            )
        )
    if missing and utilization is not None and utilization < 50.0 and not eviction_rate:
        findings.append(
            CacheFinding(
                kind="memory_not_the_limit",
                detail=f"memory at {utilization:.1f} % and no evictions: misses come from "
                "TTLs or key design, not from cache size",
            )
        )
    for cls in key_classes:
        share = cls.share_pct
        if not cls.meeting_target and (share is None or share >= WEAK_CLASS_SHARE_PCT):
            on = f" on {share:.1f} % of lookups" if share is not None else ""
            findings.append(
                CacheFinding(
                    kind="weak_key_class",
                    detail=f"key class {cls.key_class}: hit rate {cls.hit_rate_pct:.2f} %"
                    f"{on} against {target:g} %",
                )
            )
    return CacheState(
        key_classes=key_classes,
        evictions_per_s=_r(eviction_rate, 4),
        expirations_per_s=_r(expiry_rate, 4),
        findings=findings,
        memory=memory,
    )
