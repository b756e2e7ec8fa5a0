"""The metric catalog: the one table of every metric the strategist judges (docs/methods.md §1).

Two columns are decisions of ours, not the swarm's defaults (docs/design.md):

- ``bounded``: a higher-is-better percentage whose ceiling is 100 %, judged in
  error-budget space (99.5 % against 99.9 % misses 5×). These are the SLO-like
  ratios: availability, connection stability, both cache hit rates and data
  freshness. ``ai_processing_efficiency`` is *not* bounded: its target (80 %)
  is far from the ceiling and the headroom above it is no error budget, so
  target / current judges it.
- ``target`` None: a throughput (``api_throughput``, ``websocket_throughput``). How many
  requests a backend serves is set by its users, not by its code: 30 req/s is a healthy
  small backend, not a third of a failure. A throughput is judged only against a
  target somebody configured (task, directive or settings); without one it is
  measured, reported under ``measured`` with its trend, and read by capacity planning,
  where demand the backend fails to serve shows as saturation (the USL ceiling,
  utilisation, scaling triggers) rather than as a missed constant.
- ``statistic``: what ``current`` is over a window of raw samples. Latencies in
  ms use the p95 (a tail, not a mean of means); percentages, rates and
  throughputs use the mean, because their samples are already ratios over a
  scrape interval and a percentile of ratios has no clear meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Direction = Literal["lower_is_better", "higher_is_better"]
Statistic = Literal["p95", "mean", "last"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: how it is measured, which way is better and what it should reach."""

    name: str
    domain: str
    unit: str
    direction: Direction
    target: float | None
    """None: judged only against a configured target (see the module doc)."""
    bottleneck_type: str
    bounded: bool = False
    """Higher-is-better percentage capped at 100: judged in error-budget space."""
    statistic: Statistic = "mean"
    """The statistic ``current`` is over a window of samples."""


_LOWER: Direction = "lower_is_better"
_HIGHER: Direction = "higher_is_better"

_SPECS: tuple[MetricSpec, ...] = (
    # api
    MetricSpec(
        name="api_response_time",
        domain="api",
        unit="ms",
        direction=_LOWER,
        target=100.0,
        bottleneck_type="processing_latency",
        statistic="p95",
    ),
    MetricSpec(
        name="api_availability",
        domain="api",
        unit="%",
        direction=_HIGHER,
        target=99.9,
        bottleneck_type="availability",
        bounded=True,
    ),
    MetricSpec(
        name="api_throughput",
        domain="api",
        unit="req/s",
        direction=_HIGHER,
        target=None,
        bottleneck_type="throughput_capacity",
    ),
    MetricSpec(
        name="error_rate",
        domain="api",
        unit="%",
        direction=_LOWER,
        target=1.0,
        bottleneck_type="reliability",
    ),
    # chat
    MetricSpec(
        name="websocket_throughput",
        domain="chat",
        unit="msg/s",
        direction=_HIGHER,
        target=None,
        bottleneck_type="connection_scaling",
    ),
    MetricSpec(
        name="message_processing_time",
        domain="chat",
        unit="ms",
        direction=_LOWER,
        target=100.0,
        bottleneck_type="processing_latency",
        statistic="p95",
    ),
    MetricSpec(
        name="connection_stability",
        domain="chat",
        unit="%",
        direction=_HIGHER,
        target=99.0,
        bottleneck_type="connection_scaling",
        bounded=True,
    ),
    MetricSpec(
        name="real_time_delivery",
        domain="chat",
        unit="ms",
        direction=_LOWER,
        target=50.0,
        bottleneck_type="delivery_latency",
        statistic="p95",
    ),
    # feed
    MetricSpec(
        name="content_retrieval_time",
        domain="feed",
        unit="ms",
        direction=_LOWER,
        target=200.0,
        bottleneck_type="data_access",
        statistic="p95",
    ),
    MetricSpec(
        name="feed_generation_time",
        domain="feed",
        unit="ms",
        direction=_LOWER,
        target=500.0,
        bottleneck_type="processing_latency",
        statistic="p95",
    ),
    MetricSpec(
        name="cache_hit_rate",
        domain="feed",
        unit="%",
        direction=_HIGHER,
        target=90.0,
        bottleneck_type="cache_efficiency",
        bounded=True,
    ),
    MetricSpec(
        name="data_freshness",
        domain="feed",
        unit="%",
        direction=_HIGHER,
        target=95.0,
        bottleneck_type="data_staleness",
        bounded=True,
    ),
    # ai
    MetricSpec(
        name="report_generation",
        domain="ai",
        unit="ms",
        direction=_LOWER,
        target=500.0,
        bottleneck_type="ai_processing_speed",
        statistic="p95",
    ),
    MetricSpec(
        name="sentiment_analysis",
        domain="ai",
        unit="ms",
        direction=_LOWER,
        target=200.0,
        bottleneck_type="nlp_computation",
        statistic="p95",
    ),
    MetricSpec(
        name="ai_processing_efficiency",
        domain="ai",
        unit="%",
        direction=_HIGHER,
        target=80.0,
        bottleneck_type="ai_processing_speed",
    ),
    MetricSpec(
        name="data_processing_time",
        domain="ai",
        unit="ms",
        direction=_LOWER,
        target=300.0,
        bottleneck_type="data_pipeline",
        statistic="p95",
    ),
    # infra
    MetricSpec(
        name="redis_cache_hit",
        domain="infra",
        unit="%",
        direction=_HIGHER,
        target=95.0,
        bottleneck_type="cache_efficiency",
        bounded=True,
    ),
    MetricSpec(
        name="database_query_time",
        domain="infra",
        unit="ms",
        direction=_LOWER,
        target=50.0,
        bottleneck_type="database_latency",
        statistic="p95",
    ),
    MetricSpec(
        name="memory_utilization",
        domain="infra",
        unit="%",
        direction=_LOWER,
        target=80.0,
        bottleneck_type="resource_saturation",
    ),
    MetricSpec(
        name="cpu_utilization",
        domain="infra",
        unit="%",
        direction=_LOWER,
        target=70.0,
        bottleneck_type="resource_saturation",
    ),
)

CATALOG: Mapping[str, MetricSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
"""Metric name → its spec: the one place a target, direction or unit is written."""


def resolve_target(
    spec: MetricSpec, task_targets: Mapping[str, float], config_targets: Mapping[str, float]
) -> tuple[float | None, str]:
    """The target for ``spec`` and where it came from: task > config > catalog.

    ``(None, "none")`` for a metric the catalog sets no target for and nobody configured.
    """
    if spec.name in task_targets:
        return float(task_targets[spec.name]), "task"
    if spec.name in config_targets:
        return float(config_targets[spec.name]), "config"
    if spec.target is None:
        return None, "none"
    return spec.target, "catalog"


def _by_domain() -> dict[str, tuple[str, ...]]:
    domains: dict[str, list[str]] = {}
    for spec in _SPECS:
        domains.setdefault(spec.domain, []).append(spec.name)
    return {domain: tuple(names) for domain, names in domains.items()}


DOMAINS: Mapping[str, tuple[str, ...]] = MappingProxyType(_by_domain())
"""Domain (api, chat, feed, ai, infra) → its metric names, in catalog order."""

AUXILIARY: Mapping[str, str] = MappingProxyType(
    {
        "http_requests_total": "counter of requests, labelled endpoint/region/status: "
        "api_throughput when it has no samples of its own, and request patterns",
        "http_request_rate": "requests per second (gauge) by endpoint/region: request patterns",
        "api_response_time_by_endpoint": "p95 latency (ms) per endpoint, as Prometheus "
        "gives it: request patterns (kept apart so it does not skew the overall p95)",
        "websocket_connections": "open connections (gauge) per node (label instance)",
        "websocket_messages_total": "counter of messages: websocket_throughput when absent",
        "cache_hits_total": "counter of cache hits, labelled key_class",
        "cache_misses_total": "counter of cache misses, labelled key_class",
        "cache_memory_used_bytes": "cache memory in use (gauge)",
        "cache_memory_limit_bytes": "cache memory limit, e.g. Redis maxmemory (gauge)",
        "cache_evictions_total": "counter of keys evicted for memory",
        "cache_expired_total": "counter of keys expired by TTL",
        "db_pool_utilization": "% of the database connection pool in use (gauge): whether "
        "connection pooling or read replicas can pay off (playbook condition db_pool_pressure)",
    }
)
"""Series the analyses read besides the 20 metrics (name → what it is and what reads it)."""

DERIVED_RATES: Mapping[str, str] = MappingProxyType(
    {"api_throughput": "http_requests_total", "websocket_throughput": "websocket_messages_total"}
)
"""Metric → the counter its rate is derived from when the metric itself has no samples."""
