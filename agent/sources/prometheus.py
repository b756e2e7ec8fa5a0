"""The Prometheus HTTP API as a metric source: one range query per metric into the store.

``DEFAULT_QUERIES`` is the one table from a metric (the 20 of the catalog and the
auxiliary series the analyses read) to the PromQL that measures it, in the catalog's
unit. The defaults follow the RED/USE conventions and the names OpenTelemetry's
semantic conventions get once exported to Prometheus (``http.server.request.duration``
in seconds becomes ``http_server_request_duration_seconds_{bucket,count,sum}`` with
``http_route`` and ``http_response_status_code`` labels), node_exporter for CPU and
memory, redis_exporter for Redis. ``Settings.prometheus_queries`` overrides any entry;
an empty string there switches a default off.

A query may use ``$__rate_interval`` (Grafana's name for the same idea): the range of
``rate()`` windows, ``max(step + scrape interval, 4 × scrape interval)``, so each window
holds enough scrapes at any step.

``PrometheusSource.fetch`` runs ``/api/v1/query_range`` for each metric over a task's
window, concurrently (bounded), with retries on connection errors, timeouts and 5xx
answers, and writes every series into a ``MetricStore`` with ``source="prometheus"``.
What happened to each query is in the returned ``FetchReport``: ok, empty, or the error
Prometheus gave (its ``errorType`` and message, or the HTTP status), the series and
samples kept, the NaN/±Inf values dropped, the series cut off by the bound, and the
API's warnings. Only when no query could be answered at all does it raise
``PrometheusUnavailable`` (a ``SourceUnavailable``: code ``source_unavailable``).

A p95 read from a histogram is only as good as its buckets: OTel's SDK records
``db.client.operation.duration`` in seconds into its default boundaries (0, 5, 10, 25 …),
so every database call lands in the [0, 5] s bucket and ``histogram_quantile`` answers
4 750 ms whatever the database does. So for each default p95 metric (``P95_HISTOGRAMS``,
derived from the table; an overridden query is the operator's and is not checked) the
source also asks, in one instant query, how the window's observations spread over the
buckets. When at least 99 % of them share one bucket (``bucket_spread``) the quantile is a
function of that bucket's bounds, not of the data: the metric gets the mean from
``_sum``/``_count`` instead, the store is told (``MetricStore.set_statistic``) and the report
says why (``MetricFetch.fallback``, ``FetchReport.summary()["fallbacks"]``). A check that
cannot decide leaves the quantile and says so (``check_error``, among the problems).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
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
_HTTP = "http_server_request_duration_seconds"
_5XX = 'http_response_status_code=~"5.."'


def _p95_ms(histogram: str) -> str:
    """p95 in ms of a seconds histogram, all its series pooled (``sum by (le)``)."""
    return f"1000 * histogram_quantile(0.95, sum by (le) (rate({histogram}_bucket[{_W}])))"


def _p95_histogram(query: str) -> str | None:
    """The histogram a ``_p95_ms`` query reads, else None: inverted from ``_p95_ms`` itself,
    so only its exact output (not a look-alike) is recognised."""
    head, _, tail = _p95_ms("\0").partition("\0")
    name = query.removeprefix(head).removesuffix(tail)
    if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", name) and _p95_ms(name) == query:
        return name
    return None


def mean_ms(histogram: str) -> str:
    """Mean in ms of a seconds histogram from ``_sum``/``_count``: what a saturated p95
    falls back to (it needs no bucket bounds)."""
    return f"1000 * sum(rate({histogram}_sum[{_W}])) / sum(rate({histogram}_count[{_W}]))"


def bucket_spread_query(histogram: str, window_s: int) -> str:
    """Observations per cumulative bucket over the last ``window_s`` seconds, all series
    pooled as the p95 query pools them."""
    return f"sum by (le) (increase({histogram}_bucket[{window_s}s]))"


def _share_pct(part: str, whole: str) -> str:
    """100 × rate(part) / rate(whole); a part with no series at all counts as 0."""
    return f"100 * (sum(rate({part}[{_W}])) or vector(0)) / sum(rate({whole}[{_W}]))"


def _hit_pct(hits: str, misses: str) -> str:
    """100 × hits / (hits + misses) from two counters; no misses series at all counts as 0."""
    return (
        f"100 * sum(rate({hits}[{_W}])) / "
        f"(sum(rate({hits}[{_W}])) + (sum(rate({misses}[{_W}])) or vector(0)))"
    )


DEFAULT_QUERIES: Mapping[str, str] = MappingProxyType(
    {
        # --- api (RED over OTel's http.server.request.duration) -----------------------
        # p95 request latency, ms, over every route
        "api_response_time": _p95_ms(_HTTP),
        # % of requests not answered 5xx
        "api_availability": f"100 - {_share_pct(f'{_HTTP}_count{{{_5XX}}}', f'{_HTTP}_count')}",
        # requests per second
        "api_throughput": f"sum(rate({_HTTP}_count[{_W}]))",
        # % of requests answered 5xx
        "error_rate": _share_pct(f"{_HTTP}_count{{{_5XX}}}", f"{_HTTP}_count"),
        # --- chat ---------------------------------------------------------------------
        # WebSocket messages per second (both directions)
        "websocket_throughput": f"sum(rate(websocket_messages_total[{_W}]))",
        # p95 ms of OTel's messaging.process.duration
        "message_processing_time": _p95_ms("messaging_process_duration_seconds"),
        # % of WebSocket connections that did not drop abnormally
        "connection_stability": "100 - "
        + _share_pct("websocket_connections_dropped_total", "websocket_connections_opened_total"),
        # p95 ms from a message's publication to its delivery to the client
        "real_time_delivery": _p95_ms("websocket_message_delivery_duration_seconds"),
        # --- feed ---------------------------------------------------------------------
        # p95 ms to fetch a feed's content from its stores
        "content_retrieval_time": _p95_ms("feed_content_retrieval_duration_seconds"),
        # p95 ms to build a feed
        "feed_generation_time": _p95_ms("feed_generation_duration_seconds"),
        # % of application cache lookups that hit (all key classes)
        "cache_hit_rate": _hit_pct("cache_hits_total", "cache_misses_total"),
        # % of feed items served within their freshness objective (label fresh="true")
        "data_freshness": _share_pct(
            'feed_items_served_total{fresh="true"}', "feed_items_served_total"
        ),
        # --- ai -----------------------------------------------------------------------
        # p95 ms to generate a report
        "report_generation": _p95_ms("report_generation_duration_seconds"),
        # p95 ms of one sentiment-analysis call
        "sentiment_analysis": _p95_ms("sentiment_analysis_duration_seconds"),
        # mean accelerator utilisation, %: NVIDIA dcgm-exporter's 0–100 gauge
        "ai_processing_efficiency": "avg(DCGM_FI_DEV_GPU_UTIL)",
        # p95 ms of one data-pipeline run
        "data_processing_time": _p95_ms("data_pipeline_duration_seconds"),
        # --- infra (USE) ----------------------------------------------------------------
        # % of Redis keyspace lookups that hit (redis_exporter)
        "redis_cache_hit": _hit_pct("redis_keyspace_hits_total", "redis_keyspace_misses_total"),
        # p95 ms of OTel's db.client.operation.duration
        "database_query_time": _p95_ms("db_client_operation_duration_seconds"),
        # % of memory in use over all nodes (node_exporter)
        "memory_utilization": (
            "100 * (1 - sum(node_memory_MemAvailable_bytes) / sum(node_memory_MemTotal_bytes))"
        ),
        # % of CPU time not idle, mean over all CPUs of all nodes (node_exporter)
        "cpu_utilization": f'100 * (1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[{_W}])))',
        # --- auxiliary series (catalog.AUXILIARY) ---------------------------------------
        # request counter by endpoint (the route) and region (a target label, when set)
        "http_requests_total": (
            "sum by (endpoint, region) "
            f'(label_replace({_HTTP}_count, "endpoint", "$1", "http_route", "(.*)"))'
        ),
        # p95 ms by endpoint: latency per endpoint for the request patterns
        "api_response_time_by_endpoint": (
            "1000 * histogram_quantile(0.95, sum by (le, endpoint) (label_replace("
            f'rate({_HTTP}_bucket[{_W}]), "endpoint", "$1", "http_route", "(.*)")))'
        ),
        "websocket_connections": "sum by (instance) (websocket_connections)",
        "websocket_messages_total": "sum(websocket_messages_total)",
        "cache_hits_total": "sum by (key_class) (cache_hits_total)",
        "cache_misses_total": "sum by (key_class) (cache_misses_total)",
        "cache_memory_used_bytes": "sum(redis_memory_used_bytes)",
        "cache_memory_limit_bytes": "sum(redis_memory_max_bytes)",
        "cache_evictions_total": "sum(redis_evicted_keys_total)",
        "cache_expired_total": "sum(redis_expired_keys_total)",
        # % of the client connection pool in use (OTel db.client.connection.count/.max)
        "db_pool_utilization": (
            '100 * sum(db_client_connection_count{db_client_connection_state="used"}) '
            "/ sum(db_client_connection_max)"
        ),
    }
)
"""Metric → PromQL giving it in the catalog's unit (ms, %, req/s, msg/s) or, for the
auxiliary series, in the shape ``catalog.AUXILIARY`` describes."""

P95_HISTOGRAMS: Mapping[str, str] = MappingProxyType(
    {m: h for m, q in DEFAULT_QUERIES.items() if (h := _p95_histogram(q)) is not None}
)
"""Default metric that is a ``_p95_ms`` quantile → its histogram's base name (e.g.
``database_query_time`` → ``db_client_operation_duration_seconds``): the metrics whose
buckets are checked for saturation. Derived from ``DEFAULT_QUERIES``, so a new default
p95 metric is checked too."""


def merged_queries(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The defaults with ``overrides`` over them; an override of ``""`` removes a metric."""
    queries = dict(DEFAULT_QUERIES)
    for metric, query in (overrides or {}).items():
        if query.strip():
            queries[metric] = query
        else:
            queries.pop(metric, None)
    return queries


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


def _bucket_text(lower: float, upper: float) -> str:
    if math.isinf(upper):
        return f"above {_num(lower)} s"
    if math.isinf(lower):
        return f"at most {_num(upper)} s"
    return f"{_num(lower)}–{_num(upper)} s"


def saturation_reason(histogram: str, spread: BucketSpread) -> str:
    """Why a saturated histogram's mean is judged instead of its p95, in plain words."""
    who = (
        "every observation"
        if spread.share >= 0.9995
        else f"{_num(100 * spread.share)} % of the observations"
    )
    would_be = f" ({_num(1000 * spread.p95)} ms)" if math.isfinite(spread.p95) else ""
    return (
        f"{who} of {histogram} in the window fell in one bucket "
        f"({_bucket_text(spread.lower, spread.upper)}): its p95 would follow from that "
        f"bucket's bounds{would_be}, not from the data, so the mean from _sum/_count is judged"
    )


# --- the report -------------------------------------------------------------------

Status = Literal["ok", "empty", "error", "unconfigured"]


@dataclass(frozen=True, slots=True)
class MetricFetch:
    """What one metric's query gave."""

    metric: str
    status: Status
    """``ok``: samples stored; ``empty``: Prometheus answered with no samples; ``error``:
    no answer (see ``error_type``); ``unconfigured``: no query for this metric."""
    query: str = ""
    """The PromQL as sent (``$__rate_interval`` filled in)."""
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
    """What the stored samples are, when the source checked: ``p95`` (a default histogram
    quantile whose buckets spread) or ``mean`` (they did not: see ``fallback``). None for
    queries not checked (not a default p95, or overridden)."""
    fallback: str | None = None
    """Why the mean replaced the p95 (also given to ``MetricStore.set_statistic``); ``query``
    is then the mean's query."""
    checked_query: str | None = None
    """The instant query that read the buckets' spread, as sent."""
    check_error: str | None = None
    """Why that check could not decide while the quantile's samples were stored (they
    were kept as they are)."""


@dataclass(frozen=True, slots=True)
class FetchReport:
    """Every query of one ``fetch``: nothing that went wrong is left out."""

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
    def samples(self) -> int:
        return sum(f.samples for f in self.metrics.values())

    @property
    def warnings(self) -> list[str]:
        return [f"{m}: {w}" for m, f in sorted(self.metrics.items()) for w in f.warnings]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: counts and every problem (errors, empties, drops, warnings)."""
        problems = {
            m: {k: v for k, v in _problem(f).items() if v}
            for m, f in sorted(self.metrics.items())
            if f.status != "ok"
            or f.dropped_non_finite
            or f.truncated_series
            or f.warnings
            or f.check_error
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
            "problems": problems,
            "fallbacks": {m: f.fallback for m, f in sorted(self.metrics.items()) if f.fallback},
        }


def _problem(f: MetricFetch) -> dict[str, Any]:
    return {
        "status": f.status,
        "error_type": f.error_type,
        "error": f.error,
        "http_status": f.http_status,
        "dropped_non_finite": f.dropped_non_finite,
        "truncated_series": f.truncated_series,
        "warnings": list(f.warnings),
        "check_error": f.check_error,
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


class PrometheusSource:
    """A Prometheus HTTP API to range-query: ``async with PrometheusSource(url, …) as src``."""

    def __init__(
        self,
        base_url: str,
        *,
        queries: Mapping[str, str],
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
        self.queries: Mapping[str, str] = MappingProxyType(dict(queries))
        self.timeout_s = float(timeout_s)
        self.attempts = 1 + int(retries)
        """Each query is tried this often (``retries`` after the first) before it fails."""
        self.scrape_interval_s = float(scrape_interval_s)
        self.max_concurrency = max_concurrency
        self.max_series_per_query = max_series_per_query
        self.checked: Mapping[str, str] = MappingProxyType(
            {m: h for m, h in P95_HISTOGRAMS.items() if self.queries.get(m) == DEFAULT_QUERIES[m]}
        )
        """Metric → histogram whose buckets are checked for saturation: the default p95
        metrics whose query is still the default (an override is the operator's call)."""
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
        (epoch seconds) into ``store``, at most ``max_points`` steps per series; see the
        module doc for what is reported and raised."""
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            raise ValueError(f"need finite start < end, got [{start}, {end}]")
        wanted = list(dict.fromkeys(self.queries if metrics is None else metrics))
        step, rate_interval = self.step_for(start, end, max_points)
        gate = asyncio.Semaphore(self.max_concurrency)

        window = _Window(start, end, step, rate_interval)

        async def one(metric: str) -> MetricFetch:
            query = self.queries.get(metric)
            if query is None:
                return MetricFetch(metric, "unconfigured", error="no query configured")
            query = query.replace(RATE_INTERVAL, f"{rate_interval:.0f}s")
            histogram = self.checked.get(metric)
            if histogram is not None:
                return await self._fetch_checked(store, gate, metric, histogram, query, window)
            return self._stored(store, metric, query, await self._range(gate, query, window))

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

    async def _fetch_checked(
        self,
        store: MetricStore,
        gate: asyncio.Semaphore,
        metric: str,
        histogram: str,
        query: str,
        window: _Window,
    ) -> MetricFetch:
        """A default p95 metric: its range query and, alongside, its buckets' spread over
        the window; a saturated histogram's mean is stored instead (the quantile never is,
        store writes being additive)."""
        checked = bucket_spread_query(histogram, max(1, round(window.end - window.start)))
        quantile, check = await asyncio.gather(
            self._range(gate, query, window), self._instant(gate, checked, window.end)
        )
        spread, check_error = _read_check(check)
        if spread is not None and spread.saturated:
            reason = saturation_reason(histogram, spread)
            mean = mean_ms(histogram).replace(RATE_INTERVAL, f"{window.rate_interval:.0f}s")
            fetched = self._stored(store, metric, mean, await self._range(gate, mean, window))
            if fetched.stored:
                store.set_statistic(metric, "mean", reason)
            return dataclasses.replace(
                fetched, statistic="mean", fallback=reason, checked_query=checked
            )
        fetched = self._stored(store, metric, query, quantile)
        return dataclasses.replace(
            fetched,
            statistic="p95",
            checked_query=checked,
            # a check finding nothing matters only when the quantile found something
            check_error=check_error if fetched.status == "ok" else None,
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

    async def _post(self, gate: asyncio.Semaphore, path: str, form: Mapping[str, str]) -> _Reply:
        """One API call with its retries, in a slot of ``gate`` (the concurrency bound)."""
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
                        response = await self._client.post(f"{self.base_url}{path}", data=form)
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
