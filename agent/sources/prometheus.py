"""The Prometheus HTTP API as a metric source: range queries per metric into the store.

``DEFAULT_QUERIES`` is the one table from a metric (the 20 of the catalog and the
auxiliary series the analyses read) to its **alternatives**, tried in order: each a named
PromQL query (``otel_http_stable``, ``otel_http_old_ms``, ``postgres_exporter_…``) giving
the metric in the catalog's unit, the statistic it gives (p95, mean, ratio, rate…) and
what supplies it. The first alternative that returns samples is stored, so stock
instrumentation of either OpenTelemetry convention works without configuration: the
stable HTTP names (``http_server_request_duration_seconds`` with ``http_route`` and
``http_response_status_code``) before the old ones (``http_server_duration_milliseconds``
with ``http_target`` and ``http_status_code``); OTel's database histogram restricted to
PostgreSQL/MySQL before postgres_exporter's and mysqld_exporter's statement counters;
node_exporter, redis_exporter and dcgm-exporter for the rest. docs/instrumentation.md
says what to install for each metric. ``Settings.prometheus_queries`` replaces a metric's
whole chain with one query of the operator's (``OVERRIDE``); ``""`` switches it off.

A query may use ``$__rate_interval`` (Grafana's name for the same idea): the range of
``rate()`` windows, ``max(step + scrape interval, 4 × scrape interval)``, so each window
holds enough scrapes at any step.

``PrometheusSource.fetch`` runs ``/api/v1/query_range`` over a task's window for each
metric's alternatives in turn, metrics concurrently (bounded), with retries on connection
errors, timeouts and 5xx answers, and writes the first alternative's series that has
samples into a ``MetricStore`` with ``source="prometheus"``. The returned ``FetchReport``
says, per metric, which alternative measured it and which were tried and empty or failed
(``MetricFetch.alternative``, ``tried``; ``summary()["measured_by"]``), the series and
samples kept, the NaN/±Inf values dropped, the series cut off by the bound, the API's
warnings, and every error (its ``errorType`` and message, or the HTTP status). A metric
whose every default alternative came back empty is ``not_measured``, with what would
supply it (``needs``, and what a probe found: an exporter scraped without the setting that
gives latency): that is how the backend is instrumented, not a fault, so it is listed
apart (``summary()["not_measured"]``), never among the problems. An operator's query that
comes back empty is a problem (``empty``). A connection error or client timeout ends a
metric's chain (the next alternative would meet the same server). Only when no query
could be answered at all does ``fetch`` raise ``PrometheusUnavailable`` (a
``SourceUnavailable``: code ``source_unavailable``). ``survey`` adds, for the
``sources`` command, how many raw series each measured metric reads and their scrape
interval.

A p95 read from a histogram is only as good as its buckets: OTel's SDK records
``db.client.operation.duration`` in seconds into its default boundaries (0, 5, 10, 25 …),
so every database call lands in the [0, 5] s bucket and ``histogram_quantile`` answers
4 750 ms whatever the database does. So for each default p95 alternative (one with a
``histogram``; an operator's query is theirs and is not checked) the source also asks, in
one instant query, how the window's observations spread over the buckets. When at least
99 % of them share one bucket (``bucket_spread``) the quantile is a function of that
bucket's bounds, not of the data: the metric gets the mean from ``_sum``/``_count``
instead, the store is told (``MetricStore.set_statistic``) and the report says why
(``MetricFetch.fallback``, ``FetchReport.summary()["fallbacks"]``). An exporter that only
counts totals (pg_stat_statements, performance_schema) gives a mean per call, named the
same way. A check that cannot decide leaves the quantile and says so (``check_error``,
among the problems).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Literal

import httpx
import msgspec
import numpy as np
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from agent.analysis.series import FloatArray
from agent.config import Settings
from agent.errors import SourceUnavailable
from agent.store.metric_store import MetricStore

SOURCE = "prometheus"
"""The ``source`` every series written by this module carries in the store."""
RATE_INTERVAL = "$__rate_interval"
"""Placeholder in a query for the range of its ``rate()`` windows (see the module doc)."""
MAX_POINTS = 240
"""A task's range query asks for at most this many steps per series (plus the end point)."""
PROMETHEUS_MAX_POINTS = 11_000
"""Prometheus refuses a range query of more steps than this per series."""
DEFAULT_SCRAPE_INTERVAL_S = 15.0
"""Prometheus's default scrape interval: also the smallest step a range query uses."""
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_SERIES_PER_QUERY = 500
"""Series of one query beyond this are not stored (counted as ``truncated_series``)."""
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 2.0
SATURATION_SHARE = 0.99
"""A histogram with at least this share of a window's observations in one bucket is
saturated: its quantiles come from that bucket's bounds, not from the data."""
_ERROR_TEXT_LIMIT = 500

_W = RATE_INTERVAL

Statistic = Literal["p95", "mean", "ratio", "rate", "gauge", "counter"]
"""What an alternative's samples are: a quantile of a histogram, a mean per observation,
a percentage of two quantities, a per-second rate, a level as exported, a raw counter."""

OVERRIDE = "prometheus_queries"
"""The name of the one alternative an operator's query (``Settings.prometheus_queries``)
becomes: it replaces the metric's whole chain."""


def _selector(name: str, matchers: str) -> str:
    return f"{name}{{{matchers}}}" if matchers else name


@dataclass(frozen=True, slots=True)
class Histogram:
    """A latency histogram an alternative reads: base name, the label matchers that restrict
    it (to relational databases, say) and the unit it records in."""

    name: str
    matchers: str = ""
    unit: Literal["s", "ms"] = "s"

    def series(self, suffix: str) -> str:
        """One of its series (``bucket``, ``sum``, ``count``), matchers included."""
        return _selector(f"{self.name}_{suffix}", self.matchers)

    @property
    def to_ms(self) -> str:
        """The PromQL prefix that turns its unit into ms."""
        return "1000 * " if self.unit == "s" else ""


@dataclass(frozen=True, slots=True)
class Alternative:
    """One way to measure a metric. A metric's alternatives are tried in order and the
    first that returns samples is stored, so stock instrumentation of any vintage works."""

    name: str
    """Short and stable (``otel_http_stable``): the reports and docs name it."""
    query: str
    """PromQL giving the metric in the catalog's unit (``$__rate_interval`` allowed)."""
    statistic: Statistic | None
    """What its samples are; None for an operator's query (unknown to us)."""
    needs: str
    """What supplies it (instrumentation, exporter, setting): said when nothing measured."""
    series: str = ""
    """A selector of the raw series it reads: ``sources`` counts them and their scrapes."""
    histogram: Histogram | None = None
    """Set for a p95 read from these buckets: they are checked, a saturated one gives its
    mean instead (see the module doc)."""
    note: str | None = None
    """Why this alternative's mean stands in for the catalog's p95 (given to
    ``MetricStore.set_statistic``, so the report never calls it a p95)."""
    probe: str | None = None
    """PromQL that finds this alternative's supplier even when the alternative is empty…"""
    probe_note: str | None = None
    """…and what to say then: the supplier is scraped but lacks a setting."""


Chain = tuple[Alternative, ...]
"""A metric's alternatives, in the order they are tried."""


def p95_ms(histogram: Histogram) -> str:
    """p95 in ms of a histogram, all its series pooled (``sum by (le)``)."""
    bucket = histogram.series("bucket")
    return f"{histogram.to_ms}histogram_quantile(0.95, sum by (le) (rate({bucket}[{_W}])))"


def mean_ms(histogram: Histogram) -> str:
    """Mean in ms of a histogram from ``_sum``/``_count``: what a saturated p95 falls back
    to (it needs no bucket bounds)."""
    total, count = histogram.series("sum"), histogram.series("count")
    return f"{histogram.to_ms}sum(rate({total}[{_W}])) / sum(rate({count}[{_W}]))"


def bucket_spread_query(histogram: Histogram, window_s: int) -> str:
    """Observations per cumulative bucket over the last ``window_s`` seconds, all series
    pooled as the p95 query pools them."""
    return f"sum by (le) (increase({histogram.series('bucket')}[{window_s}s]))"


def _share_pct(part: str, whole: str) -> str:
    """100 × rate(part) / rate(whole); a part with no series at all counts as 0."""
    return f"100 * (sum(rate({part}[{_W}])) or vector(0)) / sum(rate({whole}[{_W}]))"


def _hit_pct(hits: str, misses: str) -> str:
    """100 × hits / (hits + misses) from two counters; no misses series at all counts as 0."""
    return (
        f"100 * sum(rate({hits}[{_W}])) / "
        f"(sum(rate({hits}[{_W}])) + (sum(rate({misses}[{_W}])) or vector(0)))"
    )


def _per_call_ms(seconds_total: str, calls_total: str) -> str:
    """Mean ms per call from a counter of seconds and a counter of calls."""
    return f"1000 * sum(rate({seconds_total}[{_W}])) / sum(rate({calls_total}[{_W}]))"


def _latency(name: str, histogram: Histogram, needs: str, **extra: Any) -> Alternative:
    """A p95 alternative over ``histogram``: checked for saturation."""
    return Alternative(
        name, p95_ms(histogram), "p95", needs, histogram.series("count"), histogram, **extra
    )


# --- HTTP: OpenTelemetry's two conventions ------------------------------------------


@dataclass(frozen=True, slots=True)
class _Http:
    """The HTTP server histogram as one OpenTelemetry convention exports it."""

    alternative: str
    histogram: Histogram
    route: str
    """Label of the route template (an endpoint)."""
    status: str
    """Label of the response status code."""
    needs: str

    def count(self, matchers: str = "") -> str:
        return _selector(f"{self.histogram.name}_count", matchers)

    def by_endpoint(self, vector: str) -> str:
        return f'label_replace({vector}, "endpoint", "$1", "{self.route}", "(.*)")'


_HTTP_STABLE = _Http(
    "otel_http_stable",
    Histogram("http_server_request_duration_seconds"),
    route="http_route",
    status="http_response_status_code",
    needs="OpenTelemetry HTTP server instrumentation with the stable conventions "
    "(OTEL_SEMCONV_STABILITY_OPT_IN=http) exported to Prometheus: "
    "http_server_request_duration_seconds",
)
_HTTP_OLD = _Http(
    "otel_http_old_ms",
    Histogram("http_server_duration_milliseconds", unit="ms"),
    route="http_target",
    status="http_status_code",
    needs="OpenTelemetry HTTP server instrumentation with the old conventions (the default "
    "without OTEL_SEMCONV_STABILITY_OPT_IN): http_server_duration_milliseconds",
)
_HTTP = (_HTTP_STABLE, _HTTP_OLD)
_OTEL_EXPORTED = "target_info"
"""The series OpenTelemetry's Prometheus exporter (and the Collector's) always writes."""


def _http_chain(kind: str) -> Chain:
    """One HTTP metric (``kind``) from each convention, the stable one first."""
    chain: list[Alternative] = []
    for h in _HTTP:
        count, errors = h.count(), h.count(f'{h.status}=~"5.."')
        rate_buckets = f"rate({h.histogram.series('bucket')}[{_W}])"
        shapes: dict[str, tuple[str, Statistic]] = {
            "availability": (f"100 - {_share_pct(errors, count)}", "ratio"),
            "throughput": (f"sum(rate({count}[{_W}]))", "rate"),
            "errors": (_share_pct(errors, count), "ratio"),
            "requests": (f"sum by (endpoint, region) ({h.by_endpoint(count)})", "counter"),
            "latency_by_endpoint": (
                f"{h.histogram.to_ms}histogram_quantile(0.95, sum by (le, endpoint) "
                f"({h.by_endpoint(rate_buckets)}))",
                "p95",
            ),
        }
        if kind == "latency":
            chain.append(_latency(h.alternative, h.histogram, h.needs))
        else:
            query, statistic = shapes[kind]
            chain.append(Alternative(h.alternative, query, statistic, h.needs, count))
    return tuple(chain)


# --- databases ------------------------------------------------------------------------

_RELATIONAL = "postgresql|mysql|mariadb"
"""The database systems ``database_query_time`` is about (a Redis call is not a query)."""
_DB_OPERATION = "db_client_operation_duration_seconds"
_PER_CALL_NOTE = (
    "{who} counts each statement's total time and calls, not their distribution: "
    "the mean time per call is judged"
)
_PG_PROBE_NOTE = (
    "postgres_exporter is scraped (pg_up) but exports no statement latency: it needs the "
    "pg_stat_statements extension (shared_preload_libraries, CREATE EXTENSION) and, from "
    "0.13 on, --collector.stat_statements (before: a pg_stat_statements query in "
    "--extend.query-path); its other series give no query latency"
)
_MYSQL_PROBE_NOTE = (
    "mysqld_exporter is scraped (mysql_up) but exports no statement latency: it needs "
    "--collect.perf_schema.eventsstatements (and performance_schema on)"
)

_DATABASE_QUERY_TIME: Chain = (
    _latency(
        "otel_db_stable",
        Histogram(_DB_OPERATION, f'db_system_name=~"{_RELATIONAL}"'),
        "an OpenTelemetry DB-API driver instrumentation (psycopg, psycopg2, pymysql, "
        "mysqlclient…) with OTEL_SEMCONV_STABILITY_OPT_IN=database: "
        f"{_DB_OPERATION}{{db_system_name}}",
        probe=f"count({_OTEL_EXPORTED})",
        probe_note="OpenTelemetry metrics are exported (target_info) but no PostgreSQL or "
        f"MySQL {_DB_OPERATION}: instrument the database driver (asyncpg's instrumentation "
        "records no metrics) and set OTEL_SEMCONV_STABILITY_OPT_IN=database",
    ),
    _latency(
        "otel_db_old_label",
        Histogram(_DB_OPERATION, f'db_system=~"{_RELATIONAL}"'),
        f"the same histogram labelled with the older db.system attribute: "
        f"{_DB_OPERATION}{{db_system}}",
    ),
    Alternative(
        "postgres_exporter_stat_statements",
        _per_call_ms("pg_stat_statements_seconds_total", "pg_stat_statements_calls_total"),
        "mean",
        "postgres_exporter 0.13 or later with --collector.stat_statements and the "
        "pg_stat_statements extension",
        "pg_stat_statements_calls_total",
        note=_PER_CALL_NOTE.format(who="postgres_exporter's pg_stat_statements"),
        probe="count(pg_up)",
        probe_note=_PG_PROBE_NOTE,
    ),
    Alternative(
        "postgres_exporter_queries_yaml",
        _per_call_ms("pg_stat_statements_total_time_seconds", "pg_stat_statements_calls"),
        "mean",
        "postgres_exporter 0.11/0.12 with a pg_stat_statements query in --extend.query-path "
        "(docs/instrumentation.md) and the extension",
        "pg_stat_statements_calls",
        note=_PER_CALL_NOTE.format(who="postgres_exporter's pg_stat_statements"),
        probe="count(pg_up)",
        probe_note=_PG_PROBE_NOTE,
    ),
    Alternative(
        "mysqld_exporter_perf_schema",
        _per_call_ms(
            "mysql_perf_schema_events_statements_seconds_total",
            "mysql_perf_schema_events_statements_total",
        ),
        "mean",
        "mysqld_exporter (MySQL, MariaDB) with --collect.perf_schema.eventsstatements",
        "mysql_perf_schema_events_statements_total",
        note=_PER_CALL_NOTE.format(who="mysqld_exporter's performance_schema digest table"),
        probe="count(mysql_up)",
        probe_note=_MYSQL_PROBE_NOTE,
    ),
)

_DB_POOL_UTILIZATION: Chain = (
    # Only a pool's own count: the server's connections against max_connections
    # (postgres_exporter, mysqld_exporter) stayed at 6 % in the real stack while a
    # 4-connection pool queued every request, and "pools healthy" would then skip the
    # very fix that was needed. Unmeasured, pooling still ranks, after the other fixes.
    Alternative(
        "otel_db_pool_stable",
        '100 * sum(db_client_connection_count{db_client_connection_state="used"}) '
        "/ sum(db_client_connection_max)",
        "ratio",
        "a connection-pool instrumentation with OpenTelemetry's stable names "
        "(db.client.connection.count and db.client.connection.max; Python's stock "
        "SQLAlchemy instrumentation exports no maximum)",
        "db_client_connection_max",
    ),
)


# --- everything else: one source each ----------------------------------------------------


_NO_STANDARD = ": no standard instrumentation records it"


def _app_latency(histogram: str, what: str) -> Chain:
    """A latency no standard instrumentation records: the application's own histogram."""
    needs = f"the application's histogram {histogram} (seconds) of {what}" + _NO_STANDARD
    return (_latency("app_histogram", Histogram(histogram), needs),)


def _one(
    name: str, query: str, statistic: Statistic, needs: str, series: str, **extra: Any
) -> Chain:
    return (Alternative(name, query, statistic, needs, series, **extra),)


_REDIS = "redis_exporter"
_NODE = "node_exporter on every host"

DEFAULT_QUERIES: Mapping[str, Chain] = MappingProxyType(
    {
        # --- api (RED over OTel's HTTP server histogram) --------------------------------
        # p95 request latency, ms, over every route
        "api_response_time": _http_chain("latency"),
        # % of requests not answered 5xx
        "api_availability": _http_chain("availability"),
        # requests per second
        "api_throughput": _http_chain("throughput"),
        # % of requests answered 5xx
        "error_rate": _http_chain("errors"),
        # --- chat ---------------------------------------------------------------------
        # WebSocket messages per second (both directions)
        "websocket_throughput": _one(
            "app_counter",
            f"sum(rate(websocket_messages_total[{_W}]))",
            "rate",
            "the application's counter websocket_messages_total" + _NO_STANDARD,
            "websocket_messages_total",
        ),
        # p95 ms of OTel's messaging.process.duration
        "message_processing_time": (
            _latency(
                "otel_messaging",
                Histogram("messaging_process_duration_seconds"),
                "a messaging instrumentation recording OpenTelemetry's "
                "messaging.process.duration (or the application's own histogram of that name)",
            ),
        ),
        # % of WebSocket connections that did not drop abnormally
        "connection_stability": _one(
            "app_counter",
            "100 - "
            + _share_pct(
                "websocket_connections_dropped_total", "websocket_connections_opened_total"
            ),
            "ratio",
            "the application's counters websocket_connections_opened_total "
            "and websocket_connections_dropped_total" + _NO_STANDARD,
            "websocket_connections_opened_total",
        ),
        # p95 ms from a message's publication to its delivery to the client
        "real_time_delivery": _app_latency(
            "websocket_message_delivery_duration_seconds", "publication to delivery"
        ),
        # --- feed ---------------------------------------------------------------------
        "content_retrieval_time": _app_latency(
            "feed_content_retrieval_duration_seconds", "fetching a feed's content"
        ),
        "feed_generation_time": _app_latency("feed_generation_duration_seconds", "building a feed"),
        # % of application cache lookups that hit (all key classes)
        "cache_hit_rate": _one(
            "app_counter",
            _hit_pct("cache_hits_total", "cache_misses_total"),
            "ratio",
            "the application's counters cache_hits_total and "
            "cache_misses_total (label key_class) around its cache lookups" + _NO_STANDARD,
            "cache_hits_total",
        ),
        # % of feed items served within their freshness objective (label fresh="true")
        "data_freshness": _one(
            "app_counter",
            _share_pct('feed_items_served_total{fresh="true"}', "feed_items_served_total"),
            "ratio",
            "the application's counter feed_items_served_total with a label "
            'fresh="true"|"false"' + _NO_STANDARD,
            "feed_items_served_total",
        ),
        # --- ai -----------------------------------------------------------------------
        "report_generation": _app_latency(
            "report_generation_duration_seconds", "generating a report"
        ),
        "sentiment_analysis": _app_latency(
            "sentiment_analysis_duration_seconds", "one sentiment-analysis call"
        ),
        # mean accelerator utilisation, %: NVIDIA dcgm-exporter's 0–100 gauge
        "ai_processing_efficiency": _one(
            "dcgm_exporter",
            "avg(DCGM_FI_DEV_GPU_UTIL)",
            "gauge",
            "NVIDIA dcgm-exporter on the GPU hosts (DCGM_FI_DEV_GPU_UTIL)",
            "DCGM_FI_DEV_GPU_UTIL",
        ),
        "data_processing_time": _app_latency(
            "data_pipeline_duration_seconds", "one data-pipeline run"
        ),
        # --- infra (USE) ----------------------------------------------------------------
        # % of Redis keyspace lookups that hit
        "redis_cache_hit": _one(
            _REDIS,
            _hit_pct("redis_keyspace_hits_total", "redis_keyspace_misses_total"),
            "ratio",
            _REDIS,
            "redis_keyspace_hits_total",
        ),
        # p95 (or mean) ms of a relational database's operations
        "database_query_time": _DATABASE_QUERY_TIME,
        # % of memory in use over all nodes
        "memory_utilization": _one(
            "node_exporter",
            "100 * (1 - sum(node_memory_MemAvailable_bytes) / sum(node_memory_MemTotal_bytes))",
            "ratio",
            _NODE,
            "node_memory_MemTotal_bytes",
        ),
        # % of CPU time not idle, mean over all CPUs of all nodes
        "cpu_utilization": _one(
            "node_exporter",
            f'100 * (1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[{_W}])))',
            "ratio",
            _NODE,
            'node_cpu_seconds_total{mode="idle"}',
        ),
        # --- auxiliary series (catalog.AUXILIARY) ---------------------------------------
        # request counter by endpoint (the route) and region (a target label, when set)
        "http_requests_total": _http_chain("requests"),
        # p95 ms by endpoint: latency per endpoint for the request patterns
        "api_response_time_by_endpoint": _http_chain("latency_by_endpoint"),
        "websocket_connections": _one(
            "app_gauge",
            "sum by (instance) (websocket_connections)",
            "gauge",
            "the application's gauge websocket_connections" + _NO_STANDARD,
            "websocket_connections",
        ),
        "websocket_messages_total": _one(
            "app_counter",
            "sum(websocket_messages_total)",
            "counter",
            "the application's counter websocket_messages_total" + _NO_STANDARD,
            "websocket_messages_total",
        ),
        "cache_hits_total": _one(
            "app_counter",
            "sum by (key_class) (cache_hits_total)",
            "counter",
            "the application's counter cache_hits_total (label key_class)" + _NO_STANDARD,
            "cache_hits_total",
        ),
        "cache_misses_total": _one(
            "app_counter",
            "sum by (key_class) (cache_misses_total)",
            "counter",
            "the application's counter cache_misses_total (label key_class)" + _NO_STANDARD,
            "cache_misses_total",
        ),
        "cache_memory_used_bytes": _one(
            _REDIS, "sum(redis_memory_used_bytes)", "gauge", _REDIS, "redis_memory_used_bytes"
        ),
        "cache_memory_limit_bytes": _one(
            _REDIS,
            "sum(redis_memory_max_bytes)",
            "gauge",
            f"{_REDIS} (0 while Redis has no maxmemory)",
            "redis_memory_max_bytes",
        ),
        "cache_evictions_total": _one(
            _REDIS, "sum(redis_evicted_keys_total)", "counter", _REDIS, "redis_evicted_keys_total"
        ),
        "cache_expired_total": _one(
            _REDIS, "sum(redis_expired_keys_total)", "counter", _REDIS, "redis_expired_keys_total"
        ),
        # % of the database connection pool (or the server's connections) in use
        "db_pool_utilization": _DB_POOL_UTILIZATION,
    }
)
"""Metric → its alternatives, tried in order: the one table of what the agent reads from
Prometheus (the 20 of the catalog in its units, and the auxiliary series in the shapes
``catalog.AUXILIARY`` describes). docs/instrumentation.md explains every entry."""


def override(query: str) -> Alternative:
    """An operator's query: the one alternative of its metric, unchecked, statistic unknown."""
    return Alternative(OVERRIDE, query, None, f"the query set in {OVERRIDE}")


def merged_queries(overrides: Mapping[str, str] | None = None) -> dict[str, Chain]:
    """The default chains with ``overrides`` over them: a query replaces a metric's whole
    chain with itself, ``""`` removes the metric."""
    queries = dict(DEFAULT_QUERIES)
    for metric, query in (overrides or {}).items():
        if query.strip():
            queries[metric] = (override(query),)
        else:
            queries.pop(metric, None)
    return queries


def as_chains(queries: Mapping[str, str | Sequence[Alternative]]) -> dict[str, Chain]:
    """Each metric's chain: a bare query string is an operator's (``override``)."""
    return {
        metric: (override(q),) if isinstance(q, str) else tuple(q) for metric, q in queries.items()
    }


# --- a histogram's buckets ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketSpread:
    """How a window's observations of one histogram spread over its buckets."""

    observations: float
    """All of them (the ``+Inf`` bucket's cumulative count)."""
    lower: float
    """Lower bound of the fullest bucket (0 for a lowest bucket of positive bound, as
    ``histogram_quantile`` takes it; -Inf below a bound ≤ 0)."""
    upper: float
    """Its upper bound, ``le`` (+Inf for the overflow bucket)."""
    share: float
    """Share of the observations in that bucket, 0–1."""
    p95: float
    """What ``histogram_quantile(0.95, …)`` gives on these buckets (NaN if nothing)."""

    @property
    def saturated(self) -> bool:
        """The quantile reflects the fullest bucket's bounds, not the data."""
        return self.share >= SATURATION_SHARE


def bucket_spread(buckets: Iterable[tuple[float, float]]) -> BucketSpread | None:
    """(le, cumulative count) pairs, in any order → their spread; None when they hold no
    observation. Buckets are coalesced and made monotonic as ``histogram_quantile`` does
    (``increase`` extrapolates each series on its own). Raises ``ValueError`` without a
    ``+Inf`` bucket: the count of all observations is unknown then."""
    merged: dict[float, float] = {}
    for le, count in buckets:
        if not math.isnan(le) and math.isfinite(count):
            merged[float(le)] = merged.get(float(le), 0.0) + count
    if not merged or max(merged) != math.inf:
        raise ValueError('no le="+Inf" bucket')
    les = sorted(merged)
    cumulative = np.maximum.accumulate(np.array([merged[le] for le in les]))
    total = float(cumulative[-1])
    if not total > 0:
        return None
    per_bucket = np.diff(cumulative, prepend=0.0)
    top = int(np.argmax(per_bucket))
    upper = les[top]
    # histogram_quantile's lower bound of the lowest bucket: 0, unless its bound is not above
    lower = les[top - 1] if top else (0.0 if upper > 0 else -math.inf)
    return BucketSpread(
        observations=total,
        lower=lower,
        upper=upper,
        share=float(per_bucket[top]) / total,
        p95=_bucket_quantile(0.95, les, cumulative.tolist()),
    )


def _bucket_quantile(q: float, les: list[float], cumulative: list[float]) -> float:
    """Prometheus's ``bucketQuantile`` (linear within the bucket the rank falls in, the
    highest finite bound for the ``+Inf`` bucket), on sorted, monotonic buckets."""
    if len(les) < 2 or not cumulative[-1] > 0:
        return math.nan
    rank = q * cumulative[-1]
    b = next((i for i in range(len(les) - 1) if cumulative[i] >= rank), len(les) - 1)
    if b == len(les) - 1:
        return les[-2]
    if b == 0 and les[0] <= 0:
        return les[0]
    start, below = (les[b - 1], cumulative[b - 1]) if b else (0.0, 0.0)
    return start + (les[b] - start) * (rank - below) / (cumulative[b] - below)


def _num(value: float) -> str:
    """A number for people: 3 significant digits, thousands grouped (``4 750``)."""
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.3g}"


def _bucket_text(lower: float, upper: float, unit: str = "s") -> str:
    if math.isinf(upper):
        return f"above {_num(lower)} {unit}"
    if math.isinf(lower):
        return f"at most {_num(upper)} {unit}"
    return f"{_num(lower)}–{_num(upper)} {unit}"


def saturation_reason(histogram: str, spread: BucketSpread, unit: str = "s") -> str:
    """Why a saturated histogram's mean is judged instead of its p95, in plain words
    (``unit``: what the histogram records, s or ms)."""
    who = (
        "every observation"
        if spread.share >= 0.9995
        else f"{_num(100 * spread.share)} % of the observations"
    )
    p95_ms = spread.p95 * (1000.0 if unit == "s" else 1.0)
    would_be = f" ({_num(p95_ms)} ms)" if math.isfinite(p95_ms) else ""
    return (
        f"{who} of {histogram} in the window fell in one bucket "
        f"({_bucket_text(spread.lower, spread.upper, unit)}): its p95 would follow from that "
        f"bucket's bounds{would_be}, not from the data, so the mean from _sum/_count is judged"
    )


# --- the report -------------------------------------------------------------------

Status = Literal["ok", "empty", "not_measured", "error", "unconfigured"]


@dataclass(frozen=True, slots=True)
class Tried:
    """An alternative that gave no samples: tried before the one used, or every one of a
    metric nothing measured."""

    alternative: str
    status: Literal["empty", "error"]
    query: str
    """As sent."""
    error: str | None = None
    """``errorType: message`` of a failed query."""
    note: str | None = None
    """What else is known: its series exist but gave no finite value, or its supplier is
    scraped but lacks a setting (``Alternative.probe_note``)."""

    def describe(self) -> str:
        """``name: status`` and the error or note, for one line of a report."""
        detail = self.error or self.note
        return f"{self.alternative}: {self.status}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True, slots=True)
class MetricFetch:
    """What one metric's alternatives gave."""

    metric: str
    status: Status
    """``ok``: samples stored; ``not_measured``: every default alternative came back empty
    (nothing here supplies the metric: see ``needs``; not a problem); ``empty``: an
    operator's query came back empty (a problem: it was expected to answer); ``error``:
    no alternative gave samples and one failed (see ``error_type``); ``unconfigured``: no
    query for this metric."""
    query: str = ""
    """The PromQL as sent (``$__rate_interval`` filled in): the one whose samples were
    stored, else the one that failed or the last one tried."""
    series: int = 0
    samples: int = 0
    """Finite samples Prometheus returned for the stored series."""
    stored: int = 0
    """Of those, what the store took in (it may refuse samples past its age horizon)."""
    dropped_non_finite: int = 0
    """NaN and ±Inf values (an empty ratio, a quantile of nothing) left out."""
    truncated_series: int = 0
    """Series beyond ``max_series_per_query``, not stored."""
    error_type: str | None = None
    """Prometheus's ``errorType`` (bad_data, execution, timeout…), else ``http``,
    ``timeout``, ``connection`` or ``bad_response``."""
    error: str | None = None
    http_status: int | None = None
    attempts: int = 0
    warnings: tuple[str, ...] = ()
    """The API's ``warnings`` and ``infos`` for this query."""
    statistic: str | None = None
    """What the stored samples are (``Statistic``): the alternative's, or ``mean`` where
    a saturated histogram's p95 was replaced (see ``fallback``). None for an operator's
    query."""
    fallback: str | None = None
    """Why a mean stands in for the catalog's p95 (a saturated histogram, or an exporter
    that only counts totals); also given to ``MetricStore.set_statistic``."""
    checked_query: str | None = None
    """The instant query that read the buckets' spread, as sent."""
    check_error: str | None = None
    """Why that check could not decide while the quantile's samples were stored (they
    were kept as they are)."""
    alternative: str | None = None
    """The alternative whose samples were stored (``Alternative.name``)."""
    tried: tuple[Tried, ...] = ()
    """The alternatives before it that gave nothing, in order (all of them when none did)."""
    needs: str | None = None
    """For ``not_measured``: what would supply the metric, every alternative's ``needs``."""

    def not_measured_reason(self) -> str:
        """``needs …``, after what the probes found (for ``not_measured``)."""
        notes = list(dict.fromkeys(t.note for t in self.tried if t.note))
        return "; ".join([*notes, f"needs {self.needs}"])


@dataclass(frozen=True, slots=True)
class FetchReport:
    """Every metric of one ``fetch``: nothing that went wrong is left out."""

    source: str
    """``prometheus at <url>``."""
    start: float
    end: float
    step_s: float
    rate_interval_s: float
    metrics: Mapping[str, MetricFetch] = field(default_factory=dict)

    def by_status(self, status: Status) -> list[str]:
        return sorted(m for m, f in self.metrics.items() if f.status == status)

    @property
    def ok(self) -> list[str]:
        return self.by_status("ok")

    @property
    def failed(self) -> list[str]:
        return self.by_status("error")

    @property
    def not_measured(self) -> list[str]:
        return self.by_status("not_measured")

    @property
    def samples(self) -> int:
        return sum(f.samples for f in self.metrics.values())

    @property
    def warnings(self) -> list[str]:
        return [f"{m}: {w}" for m, f in sorted(self.metrics.items()) for w in f.warnings]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: counts, which alternative measured each metric, what is not measured
        and why (not a problem), and every problem (errors, empties, drops, warnings)."""
        metrics = sorted(self.metrics.items())
        problems = {
            m: {k: v for k, v in _problem(f).items() if v}
            for m, f in metrics
            if f.status not in ("ok", "not_measured")
            or f.dropped_non_finite
            or f.truncated_series
            or f.warnings
            or f.check_error
            or any(t.status == "error" for t in f.tried)
        }
        return {
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "step_s": self.step_s,
            "rate_interval_s": self.rate_interval_s,
            "ok": len(self.ok),
            "empty": len(self.by_status("empty")),
            "failed": len(self.failed),
            "series": sum(f.series for f in self.metrics.values()),
            "samples": self.samples,
            "stored": sum(f.stored for f in self.metrics.values()),
            "measured_by": {
                m: {
                    "alternative": f.alternative,
                    "statistic": f.statistic,
                    **({"tried": [t.describe() for t in f.tried]} if f.tried else {}),
                }
                for m, f in metrics
                if f.status == "ok"
            },
            "not_measured": {
                m: f.not_measured_reason() for m, f in metrics if f.status == "not_measured"
            },
            "problems": problems,
            "fallbacks": {m: f.fallback for m, f in metrics if f.fallback},
        }


def _problem(f: MetricFetch) -> dict[str, Any]:
    return {
        "status": f.status,
        "alternative": f.alternative,
        "error_type": f.error_type,
        "error": f.error,
        "http_status": f.http_status,
        "dropped_non_finite": f.dropped_non_finite,
        "truncated_series": f.truncated_series,
        "warnings": list(f.warnings),
        "check_error": f.check_error,
        "tried": [t.describe() for t in f.tried],
    }


class PrometheusUnavailable(SourceUnavailable):
    """No query was answered (Prometheus down, unreachable, or failing every query)."""

    def __init__(self, source: str, message: str, report: FetchReport) -> None:
        super().__init__(source, message)
        self.report = report


# --- the API's JSON ---------------------------------------------------------------


class _Series(msgspec.Struct):
    metric: dict[str, str] = msgspec.field(default_factory=dict)
    values: list[tuple[float, str]] = msgspec.field(default_factory=list)
    value: tuple[float, str] | None = None
    """An instant vector's one sample."""
    histograms: list[Any] = msgspec.field(default_factory=list)


class _Data(msgspec.Struct):
    result_type: str = msgspec.field(name="resultType")
    result: list[_Series] = msgspec.field(default_factory=list)


class _Answer(msgspec.Struct):
    status: str
    data: _Data | None = None
    error_type: str | None = msgspec.field(default=None, name="errorType")
    error: str | None = None
    warnings: list[str] = msgspec.field(default_factory=list)
    infos: list[str] = msgspec.field(default_factory=list)


_DECODER = msgspec.json.Decoder(_Answer)


@dataclass(frozen=True, slots=True)
class ParsedSeries:
    labels: dict[str, str]
    ts: FloatArray
    values: FloatArray
    dropped_non_finite: int


def _success(body: bytes, result_type: str) -> tuple[_Data, list[str]]:
    """A successful answer's data of ``result_type`` and its notes, else ``ValueError``."""
    try:
        answer = _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"not a Prometheus API answer: {exc}") from exc
    if answer.status != "success" or answer.data is None:
        raise ValueError(f"status {answer.status!r}: {answer.error_type}: {answer.error}")
    if answer.data.result_type != result_type:
        raise ValueError(f"expected a {result_type}, got {answer.data.result_type!r}")
    return answer.data, [*answer.warnings, *answer.infos]


def parse_buckets(body: bytes) -> list[tuple[float, float]]:
    """A successful instant ``sum by (le) (…_bucket…)`` body → (le, count) pairs, series
    without a numeric ``le`` or value left out. Raises ``ValueError`` on anything else."""
    data, _ = _success(body, "vector")
    pairs: list[tuple[float, float]] = []
    for series in data.result:
        le = _number(series.metric.get("le", ""))
        if series.value is not None and not math.isnan(le):
            pairs.append((le, _number(series.value[1])))
    return pairs


def parse_matrix(body: bytes) -> tuple[list[ParsedSeries], list[str]]:
    """A successful ``query_range`` body → its series (``__name__`` dropped, NaN/±Inf
    left out and counted) and its warnings. Raises ``ValueError`` on anything else."""
    data, notes = _success(body, "matrix")
    parsed: list[ParsedSeries] = []
    native = 0
    for series in data.result:
        native += len(series.histograms)
        labels = {k: v for k, v in series.metric.items() if k != "__name__"}
        ts = np.fromiter((t for t, _ in series.values), np.float64, len(series.values))
        values = np.fromiter((_number(v) for _, v in series.values), np.float64, ts.size)
        finite = np.isfinite(values) & np.isfinite(ts)
        kept = int(np.count_nonzero(finite))
        parsed.append(ParsedSeries(labels, ts[finite], values[finite], ts.size - kept))
    if native:
        notes.append(f"{native} native-histogram samples ignored (use histogram_quantile)")
    return parsed, notes


def _number(text: str) -> float:
    try:
        return float(text)  # Prometheus writes "NaN", "+Inf", "-Inf" as Python reads them
    except ValueError:
        return math.nan


# --- the source ---------------------------------------------------------------------


class _Retryable(Exception):
    """A 5xx answer: worth another attempt."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TransportError)


def _public_url(url: str) -> str:
    """The URL without credentials, for messages."""
    return re.sub(r"//[^/]*@", "//", url.rstrip("/"))


def _api_error(response: httpx.Response) -> tuple[str, str]:
    """(errorType, message) of an error answer, from its JSON or, failing that, its text."""
    try:
        answer = _DECODER.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = response.text.strip()[:_ERROR_TEXT_LIMIT]
        return (
            "http",
            f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}",
        )
    return answer.error_type or "http", answer.error or f"HTTP {response.status_code}"


@dataclass(frozen=True, slots=True)
class _Window:
    """A fetch's range: epoch seconds, and the step and ``rate()`` range in seconds."""

    start: float
    end: float
    step: float
    rate_interval: float


@dataclass(frozen=True, slots=True)
class _Reply:
    """One API call after its retries: a 200 answer's body, or what went wrong (the
    ``MetricFetch`` fields of the same names)."""

    attempts: int
    body: bytes | None = None
    error_type: str | None = None
    error: str | None = None
    http_status: int | None = None


def _failed(attempts: int, response: httpx.Response) -> _Reply:
    error_type, message = _api_error(response)
    return _Reply(
        attempts,
        error_type=error_type,
        error=message[:_ERROR_TEXT_LIMIT],
        http_status=response.status_code,
    )


def _read_check(reply: _Reply) -> tuple[BucketSpread | None, str | None]:
    """(spread, None), or (None, why the buckets could not be read); (None, None) when
    they hold no observation (nothing to decide)."""
    if reply.body is None:
        return None, f"{reply.error_type}: {reply.error}"
    try:
        buckets = parse_buckets(reply.body)
        if not buckets:
            return None, "no bucket series in the window"
        return bucket_spread(buckets), None
    except ValueError as exc:
        return None, str(exc)[:_ERROR_TEXT_LIMIT]


_CHAIN_ENDING = ("connection", "timeout")
"""Errors that end a metric's chain: the server did not answer, and the next alternative
would meet the same server (a query Prometheus refused does not end it)."""


def _tried(alternative: Alternative, fetched: MetricFetch) -> Tried:
    """What an alternative that gave no samples was (``fetched`` is not ``ok``)."""
    if fetched.status == "error":
        return Tried(
            alternative.name, "error", fetched.query, f"{fetched.error_type}: {fetched.error}"
        )
    note = (
        f"its series gave only non-finite values ({fetched.dropped_non_finite}): "
        "no observations in the window?"
        if fetched.dropped_non_finite
        else None
    )
    return Tried(alternative.name, "empty", fetched.query, note=note)


def _instant_value(reply: _Reply) -> float | None:
    """The one number an instant aggregation answered, else None (no series, an error)."""
    if reply.body is None:
        return None
    try:
        data, _ = _success(reply.body, "vector")
    except ValueError:
        return None
    for series in data.result:
        if series.value is not None and math.isfinite(value := _number(series.value[1])):
            return value
    return None


def _instant_vector(reply: _Reply) -> dict[tuple[str, str], float]:
    """(job, instance) → value of a ``count by (job, instance)`` answer ({} on an error)."""
    if reply.body is None:
        return {}
    try:
        data, _ = _success(reply.body, "vector")
    except ValueError:
        return {}
    return {
        (s.metric.get("job", ""), s.metric.get("instance", "")): _number(s.value[1])
        for s in data.result
        if s.value is not None
    }


class _Target(msgspec.Struct):
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    scrape_interval: str = msgspec.field(default="", name="scrapeInterval")


class _Targets(msgspec.Struct):
    active_targets: list[_Target] = msgspec.field(default_factory=list, name="activeTargets")


class _TargetsAnswer(msgspec.Struct):
    status: str
    data: _Targets | None = None


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}


def _target_intervals(reply: _Reply) -> dict[tuple[str, str], float]:
    """(job, instance) → configured scrape interval in seconds, from ``/api/v1/targets``
    ({} when it cannot be read: the interval is then estimated from the samples)."""
    if reply.body is None:
        return {}
    try:
        answer = msgspec.json.decode(reply.body, type=_TargetsAnswer)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}
    out: dict[tuple[str, str], float] = {}
    for target in answer.data.active_targets if answer.data else []:
        parts = _DURATION.findall(target.scrape_interval)
        if parts and "".join(n + u for n, u in parts) == target.scrape_interval:
            key = (target.labels.get("job", ""), target.labels.get("instance", ""))
            out[key] = float(sum(int(n) * _DURATION_S[u] for n, u in parts))
    return out


@dataclass(frozen=True, slots=True)
class Resolution:
    """How finely the raw series behind a measured metric are sampled (for ``sources``)."""

    raw_series: int | None
    """How many raw series its alternative reads (``Alternative.series``) now."""
    scrape_interval_s: float | None
    """Their targets' configured scrape interval (the coarsest, from ``/api/v1/targets``),
    else the window over the median number of samples one of them has in it."""
    latest: float | None = None
    """The newest value, when the metric is one series (a figure to check units by)."""


@dataclass(frozen=True, slots=True)
class Survey:
    """What measures each metric on one Prometheus, and how finely (``survey``)."""

    report: FetchReport
    window_s: float
    chains: Mapping[str, Chain]
    """Every metric's alternatives, as configured here."""
    resolution: Mapping[str, Resolution]
    """Measured metric → its raw series and their scrape interval."""


class PrometheusSource:
    """A Prometheus HTTP API to range-query: ``async with PrometheusSource(url, …) as src``."""

    def __init__(
        self,
        base_url: str,
        *,
        queries: Mapping[str, str | Sequence[Alternative]],
        timeout_s: float,
        retries: int,
        client: httpx.AsyncClient | None = None,
        scrape_interval_s: float = DEFAULT_SCRAPE_INTERVAL_S,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_series_per_query: int = DEFAULT_MAX_SERIES_PER_QUERY,
    ) -> None:
        if not timeout_s > 0 or retries < 0 or not scrape_interval_s > 0:
            raise ValueError("timeout_s and scrape_interval_s must be positive, retries >= 0")
        if max_concurrency < 1 or max_series_per_query < 1:
            raise ValueError("max_concurrency and max_series_per_query must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.source = f"{SOURCE} at {_public_url(base_url)}"
        self.queries: Mapping[str, Chain] = MappingProxyType(as_chains(queries))
        """Metric → its alternatives (a bare string given is an operator's query)."""
        self.timeout_s = float(timeout_s)
        self.attempts = 1 + int(retries)
        """Each query is tried this often (``retries`` after the first) before it fails."""
        self.scrape_interval_s = float(scrape_interval_s)
        self.max_concurrency = max_concurrency
        self.max_series_per_query = max_series_per_query
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s))

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> PrometheusSource:
        """From ``Settings``: ``prometheus_url``, the merged queries, timeout and retries."""
        if not settings.prometheus_url:
            raise ValueError("prometheus_url is not configured")
        return cls(
            settings.prometheus_url,
            queries=merged_queries(settings.prometheus_queries),
            timeout_s=settings.prometheus_timeout_s,
            retries=settings.prometheus_retries,
            **{"scrape_interval_s": settings.prometheus_scrape_interval_s, **kwargs},
        )

    def step_for(
        self, start: float, end: float, max_points: int = MAX_POINTS
    ) -> tuple[float, float]:
        """(step, rate interval) in whole seconds for a window: at most ``max_points`` steps,
        none shorter than the scrape interval; ``rate()`` windows per ``$__rate_interval``."""
        points = min(max_points, PROMETHEUS_MAX_POINTS)
        step = float(max(1, math.ceil(max(self.scrape_interval_s, (end - start) / points))))
        scrape = self.scrape_interval_s
        return step, float(math.ceil(max(step + scrape, 4 * scrape)))

    async def fetch(
        self,
        store: MetricStore,
        *,
        start: float,
        end: float,
        metrics: Iterable[str] | None = None,
        max_points: int = MAX_POINTS,
    ) -> FetchReport:
        """Range-query each metric (default: every one with a query) over ``[start, end]``
        (epoch seconds) into ``store``, at most ``max_points`` steps per series, trying its
        alternatives in order; see the module doc for what is reported and raised."""
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            raise ValueError(f"need finite start < end, got [{start}, {end}]")
        wanted = list(dict.fromkeys(self.queries if metrics is None else metrics))
        step, rate_interval = self.step_for(start, end, max_points)
        gate = asyncio.Semaphore(self.max_concurrency)
        window = _Window(start, end, step, rate_interval)

        async def one(metric: str) -> MetricFetch:
            chain = self.queries.get(metric)
            if not chain:
                return MetricFetch(metric, "unconfigured", error="no query configured")
            return await self._fetch_chain(store, gate, metric, chain, window)

        results = await asyncio.gather(*(one(m) for m in wanted))
        report = FetchReport(
            source=self.source,
            start=start,
            end=end,
            step_s=step,
            rate_interval_s=rate_interval,
            metrics=MappingProxyType({r.metric: r for r in results}),
        )
        sent = [r for r in results if r.status != "unconfigured"]
        if sent and all(r.status == "error" for r in sent):
            first = sent[0]
            raise PrometheusUnavailable(
                self.source,
                f"all {len(sent)} queries failed; {first.metric}: "
                f"{first.error_type}: {first.error}",
                report,
            )
        return report

    async def _fetch_chain(
        self,
        store: MetricStore,
        gate: asyncio.Semaphore,
        metric: str,
        chain: Chain,
        window: _Window,
    ) -> MetricFetch:
        """The first alternative with samples, stored; else why none had any."""
        tried: list[Tried] = []
        failed: MetricFetch | None = None
        last: MetricFetch | None = None
        for alternative in chain:
            fetched = await self._fetch_alternative(store, gate, metric, alternative, window)
            if fetched.status == "ok":
                return dataclasses.replace(
                    fetched, alternative=alternative.name, tried=tuple(tried)
                )
            tried.append(_tried(alternative, fetched))
            last = fetched
            if fetched.status == "error":
                failed = failed or fetched
                if fetched.error_type in _CHAIN_ENDING:
                    break
        assert last is not None  # a chain is never empty
        if failed is not None:
            return dataclasses.replace(failed, tried=tuple(tried), statistic=None)
        if all(a.name == OVERRIDE for a in chain):
            return dataclasses.replace(last, tried=tuple(tried), statistic=None)
        probed = await self._probe(gate, chain, tried, window.end)
        return MetricFetch(
            metric,
            "not_measured",
            last.query,
            http_status=last.http_status,
            attempts=last.attempts,
            tried=probed,
            needs=", or ".join(dict.fromkeys(a.needs for a in chain)),
        )

    async def _probe(
        self, gate: asyncio.Semaphore, chain: Chain, tried: list[Tried], at: float
    ) -> tuple[Tried, ...]:
        """``tried`` with each probe that found its alternative's supplier as a note (only
        for a metric nothing measured: a few instant queries, none on the common path)."""
        pairs = list(zip(chain, tried, strict=True))
        probes = list(
            dict.fromkeys(a.probe for a, t in pairs if a.probe and a.probe_note and not t.note)
        )
        replies = await asyncio.gather(*(self._instant(gate, p, at) for p in probes))
        found = {p for p, reply in zip(probes, replies, strict=True) if _instant_value(reply)}
        return tuple(
            dataclasses.replace(t, note=a.probe_note) if a.probe in found else t for a, t in pairs
        )

    async def _fetch_alternative(
        self,
        store: MetricStore,
        gate: asyncio.Semaphore,
        metric: str,
        alternative: Alternative,
        window: _Window,
    ) -> MetricFetch:
        """One alternative's range query into ``store`` (a p95 with its buckets checked);
        a mean standing in for a p95 is named to the store with its reason."""
        query = alternative.query.replace(RATE_INTERVAL, f"{window.rate_interval:.0f}s")
        if alternative.histogram is not None:
            return await self._fetch_checked(
                store, gate, metric, alternative.histogram, query, window
            )
        fetched = self._stored(store, metric, query, await self._range(gate, query, window))
        note = alternative.note if fetched.status == "ok" else None
        if note is not None and alternative.statistic == "mean":
            store.set_statistic(metric, "mean", note)
        return dataclasses.replace(fetched, statistic=alternative.statistic, fallback=note)

    async def _fetch_checked(
        self,
        store: MetricStore,
        gate: asyncio.Semaphore,
        metric: str,
        histogram: Histogram,
        query: str,
        window: _Window,
    ) -> MetricFetch:
        """A p95 alternative: its range query and, alongside, its buckets' spread over the
        window; a saturated histogram's mean is stored instead (the quantile never is,
        store writes being additive)."""
        checked = bucket_spread_query(histogram, max(1, round(window.end - window.start)))
        quantile, check = await asyncio.gather(
            self._range(gate, query, window), self._instant(gate, checked, window.end)
        )
        spread, check_error = _read_check(check)
        if spread is not None and spread.saturated:
            reason = saturation_reason(histogram.name, spread, histogram.unit)
            mean = mean_ms(histogram).replace(RATE_INTERVAL, f"{window.rate_interval:.0f}s")
            fetched = self._stored(store, metric, mean, await self._range(gate, mean, window))
            if fetched.status == "ok":
                store.set_statistic(metric, "mean", reason)
                return dataclasses.replace(
                    fetched, statistic="mean", fallback=reason, checked_query=checked
                )
            return dataclasses.replace(fetched, checked_query=checked)
        fetched = self._stored(store, metric, query, quantile)
        return dataclasses.replace(
            fetched,
            statistic="p95",
            checked_query=checked,
            # a check finding nothing matters only when the quantile found something
            check_error=check_error if fetched.status == "ok" else None,
        )

    async def survey(
        self, *, end: float, window_s: float, metrics: Iterable[str] | None = None
    ) -> Survey:
        """What measures each metric here, and how finely: the last ``window_s`` fetched
        into a scratch store as a task would fetch it, then, for each measured metric, how
        many raw series its alternative reads and how often they are scraped. Raises
        ``PrometheusUnavailable`` as ``fetch`` does."""
        wanted = list(dict.fromkeys(self.queries if metrics is None else metrics))
        store = MetricStore(max_age_s=max(window_s, 1.0))
        report = await self.fetch(store, start=end - window_s, end=end, metrics=wanted)
        gate = asyncio.Semaphore(self.max_concurrency)
        seconds = max(1, round(window_s))

        intervals = _target_intervals(
            await self._post(gate, "/api/v1/targets", {"state": "active"}, get=True)
        )

        async def resolution(fetched: MetricFetch) -> tuple[str, Resolution]:
            parts = list(store.select(fetched.metric).values())
            latest = float(parts[0].values[-1]) if len(parts) == 1 else None
            by_name = {a.name: a for a in self.queries.get(fetched.metric, ())}
            alternative = by_name.get(fetched.alternative or "")
            if alternative is None or not alternative.series:
                return fetched.metric, Resolution(None, None, latest)
            series = alternative.series
            targets, per_series = await asyncio.gather(
                self._instant(gate, f"count by (job, instance) ({series})", end),
                self._instant(gate, f"quantile(0.5, count_over_time({series}[{seconds}s]))", end),
            )
            counts = _instant_vector(targets)
            configured = [intervals[k] for k in counts if k in intervals]
            samples = _instant_value(per_series)
            # the targets' configured interval (the coarsest), else what the samples show
            interval = max(configured) if configured else (seconds / samples if samples else None)
            raw = int(sum(counts.values())) if counts else None
            return fetched.metric, Resolution(raw, interval, latest)

        measured = [f for f in report.metrics.values() if f.status == "ok"]
        found = await asyncio.gather(*(resolution(f) for f in measured))
        return Survey(
            report=report,
            window_s=float(window_s),
            chains=MappingProxyType({m: self.queries.get(m, ()) for m in wanted}),
            resolution=MappingProxyType(dict(found)),
        )

    async def _range(self, gate: asyncio.Semaphore, query: str, window: _Window) -> _Reply:
        form = {
            "query": query,
            "start": f"{window.start:.3f}",
            "end": f"{window.end:.3f}",
            "step": f"{window.step:.0f}",
            "timeout": f"{self.timeout_s:g}s",
        }
        return await self._post(gate, "/api/v1/query_range", form)

    async def _instant(self, gate: asyncio.Semaphore, query: str, at: float) -> _Reply:
        form = {"query": query, "time": f"{at:.3f}", "timeout": f"{self.timeout_s:g}s"}
        return await self._post(gate, "/api/v1/query", form)

    async def _post(
        self, gate: asyncio.Semaphore, path: str, form: Mapping[str, str], *, get: bool = False
    ) -> _Reply:
        """One API call with its retries, in a slot of ``gate`` (the concurrency bound);
        ``get`` for the endpoints that take no POST (``/api/v1/targets``)."""
        attempts = 0
        try:
            async with gate:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.attempts),
                    wait=wait_exponential(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S)
                    + wait_random(0, BACKOFF_INITIAL_S),
                    retry=retry_if_exception(_retryable),
                    reraise=True,
                ):
                    with attempt:
                        attempts += 1
                        url = f"{self.base_url}{path}"
                        response = await (
                            self._client.get(url, params=form)
                            if get
                            else self._client.post(url, data=form)
                        )
                        if response.status_code >= 500:
                            raise _Retryable(response)
        except _Retryable as exc:
            return _failed(attempts, exc.response)
        except httpx.TimeoutException as exc:
            message = f"no answer within {self.timeout_s:g}s ({type(exc).__name__})"
            return _Reply(attempts, error_type="timeout", error=message)
        except httpx.TransportError as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return _Reply(attempts, error_type="connection", error=message)
        if response.status_code != 200:
            return _failed(attempts, response)
        return _Reply(attempts, response.content, http_status=200)

    def _stored(self, store: MetricStore, metric: str, query: str, reply: _Reply) -> MetricFetch:
        """A range query's reply written into ``store``, and what that gave."""
        if reply.body is None:
            return MetricFetch(
                metric,
                "error",
                query,
                error_type=reply.error_type,
                error=reply.error,
                http_status=reply.http_status,
                attempts=reply.attempts,
            )
        try:
            parsed, notes = parse_matrix(reply.body)
        except ValueError as exc:
            return MetricFetch(
                metric,
                "error",
                query,
                error_type="bad_response",
                error=str(exc)[:_ERROR_TEXT_LIMIT],
                http_status=200,
                attempts=reply.attempts,
            )
        kept = parsed[: self.max_series_per_query]
        stored = sum(
            store.add_many(metric, s.ts, s.values, s.labels, source=SOURCE)
            for s in kept
            if s.ts.size
        )
        samples = sum(int(s.ts.size) for s in kept)
        return MetricFetch(
            metric,
            "ok" if samples else "empty",
            query,
            series=sum(1 for s in kept if s.ts.size),
            samples=samples,
            stored=stored,
            dropped_non_finite=sum(s.dropped_non_finite for s in kept),
            truncated_series=len(parsed) - len(kept),
            http_status=200,
            attempts=reply.attempts,
            warnings=tuple(notes),
        )

    async def fetch_window(
        self, settings: Settings, window_s: float, end: float, max_points: int = MAX_POINTS
    ) -> tuple[MetricStore, dict[str, Any]]:
        """A fresh store holding ``[end - window_s, end]``, sized by the settings, and what
        the source said (for the report's ``data_quality``)."""
        store = MetricStore(
            max_samples_per_series=settings.store_max_samples_per_series,
            max_series=settings.store_max_series,
            max_age_s=max(window_s, 1.0),
        )
        fetched = await self.fetch(store, start=end - window_s, end=end, max_points=max_points)
        return store, {"prometheus": fetched.summary()}

    async def aclose(self) -> None:
        """Close the HTTP client if this source made it (a client passed in is the caller's)."""
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> PrometheusSource:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
