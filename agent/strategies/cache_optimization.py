"""``cache_optimization``: hit rates (by key class), memory against its limit, evictions, TTLs."""

from __future__ import annotations

from agent.analysis.cache import cache_findings, key_class_hit_rates
from agent.analysis.catalog import CATALOG
from agent.analysis.series import Series
from agent.strategies.base import TaskContext
from agent.strategies.domain import DomainInput, DomainScope, analyze_domain
from protocols.reports import AnalysisReport, Findings

HIT_RATE_METRICS = ("cache_hit_rate", "redis_cache_hit")


def cache(data: DomainInput) -> Findings:
    """Key classes, memory, evictions and expirations, and what limits the hit rate."""
    store, w, end = data.store, data.window_s, data.end
    judged = next((data.judged[m] for m in HIT_RATE_METRICS if m in data.judged), None)
    fallback = CATALOG["cache_hit_rate"].target
    assert fallback is not None, "the catalog sets cache_hit_rate a target"
    target = judged.target if judged is not None else fallback
    rates: dict[tuple[tuple[str, str], ...], Series] = {}
    for metric in HIT_RATE_METRICS:
        rates |= {k: s for k, s in store.select(metric, window_s=w, end=end).items() if k}

    def one(metric: str) -> Series | None:
        series = store.merged(metric, window_s=w, end=end)
        return series if len(series) else None

    state = cache_findings(
        hit_rate=judged.current if judged is not None else None,
        target=target,
        key_classes=key_class_hit_rates(
            store.select("cache_hits_total", window_s=w, end=end),
            store.select("cache_misses_total", window_s=w, end=end),
            rates,
            target=target,
        ),
        memory_used=one("cache_memory_used_bytes"),
        memory_limit=one("cache_memory_limit_bytes"),
        memory_utilization=one("memory_utilization"),
        evictions=one("cache_evictions_total"),
        expirations=one("cache_expired_total"),
    )
    return Findings(cache=state)


DOMAIN = DomainScope(
    task_type="cache_optimization",
    primary=HIT_RATE_METRICS,
    supporting=(
        "memory_utilization",
        "content_retrieval_time",
        "database_query_time",
        "api_response_time",
    ),
    findings=cache,
)


def analyze(ctx: TaskContext) -> AnalysisReport:
    return analyze_domain(ctx, DOMAIN)
