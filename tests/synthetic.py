"""Synthetic backends with known ground truth, as a peer would send them (plain JSON data).

Each generator says what it built (rates, slopes, capacities), so the tests can check the
agent's figures against the numbers the data was made from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

T0 = 1_764_324_000.0  # 2025-11-28T10:00:00Z, epoch seconds
MINUTE = 60.0


def pairs(ts: np.ndarray, values: np.ndarray) -> list[list[float]]:
    return [[float(t), round(float(v), 4)] for t, v in zip(ts, values, strict=True)]


def samples(metric: str, ts: np.ndarray, values: np.ndarray, **labels: str) -> list[dict[str, Any]]:
    return [
        {"metric": metric, "value": round(float(v), 4), "ts": float(t), "labels": labels}
        for t, v in zip(ts, values, strict=True)
    ]


def db_first_incident(seed: int = 1) -> dict[str, Any]:
    """2 h at 1 min: the database slows from minute 40, the API follows from minute 60."""
    rng = np.random.default_rng(seed)
    n = 120
    ts = T0 + np.arange(n) * MINUTE
    minute = np.arange(n)
    db = 30 + np.where(minute >= 40, 45 + 0.3 * (minute - 40), 0) + rng.normal(0, 2, n)
    api = 70 + np.where(minute >= 60, 90 + 0.5 * (minute - 60), 0) + rng.normal(0, 4, n)
    cache = 97 + rng.normal(0, 0.3, n)
    cpu = 45 + rng.normal(0, 3, n)
    return {
        "window": "2h",
        "metrics": {
            "database_query_time": pairs(ts, db),
            "api_response_time": pairs(ts, api),
            "redis_cache_hit": pairs(ts, np.clip(cache, 0, 100)),
            "cpu_utilization": pairs(ts, cpu),
            "api_availability": 99.95,
        },
    }


def websocket_fleet(seed: int = 2) -> tuple[dict[str, Any], dict[str, float]]:
    """3 nodes whose connections ramp 2 000 → 5 000 each; delivery = 10 ms + 0.01 ms/conn.

    Ground truth: delivery reaches its 50 ms target at (50 − 10) / 0.01 = 4 000 per node.
    """
    rng = np.random.default_rng(seed)
    n = 120
    ts = T0 + np.arange(n) * MINUTE
    per_node = np.linspace(2000, 5000, n)
    items: list[dict[str, Any]] = []
    for node in ("ws-1", "ws-2", "ws-3"):
        items += samples(
            "websocket_connections", ts, per_node + rng.normal(0, 20, n), instance=node
        )
    delivery = 10 + 0.01 * per_node + rng.normal(0, 0.5, n)
    throughput = 3 * per_node * 0.4 + rng.normal(0, 10, n)  # 0.4 msg/s per connection
    params = {
        "window": "2h",
        "metrics": {
            "real_time_delivery": pairs(ts, delivery),
            "websocket_throughput": pairs(ts, throughput),
            "connection_stability": pairs(ts, 99.5 + rng.normal(0, 0.1, n)),
            "message_processing_time": pairs(ts, 40 + rng.normal(0, 2, n)),
        },
        "samples": items,
    }
    truth = {"capacity_per_node": 4000.0, "per_node_now": 5000.0, "per_connection": 0.4}
    return params, truth


def cache_under_pressure(seed: int = 3) -> dict[str, Any]:
    """Two key classes (session 99 %, feed 70 %, equal traffic), memory at 95 % of its limit,
    evicting 5 keys/s and expiring 20 keys/s: memory-bound and short TTLs, feed is weak."""
    rng = np.random.default_rng(seed)
    n = 60
    ts = T0 + np.arange(n) * MINUTE
    t = np.arange(n) * MINUTE
    items: list[dict[str, Any]] = []
    items += samples("cache_hits_total", ts, 990 * t, key_class="session")
    items += samples("cache_misses_total", ts, 10 * t, key_class="session")
    items += samples("cache_hits_total", ts, 700 * t, key_class="feed")
    items += samples("cache_misses_total", ts, 300 * t, key_class="feed")
    items += samples("cache_memory_used_bytes", ts, np.full(n, 950e6))
    items += samples("cache_memory_limit_bytes", ts, np.full(n, 1000e6))
    items += samples("cache_evictions_total", ts, 5 * t)
    items += samples("cache_expired_total", ts, 20 * t)
    return {
        "window": "1h",
        "metrics": {
            "cache_hit_rate": pairs(ts, 84.5 + rng.normal(0, 0.5, n)),
            "redis_cache_hit": pairs(ts, 84.5 + rng.normal(0, 0.5, n)),
            "memory_utilization": pairs(ts, 70 + rng.normal(0, 1, n)),
        },
        "samples": items,
    }


def traffic(seed: int = 4) -> dict[str, Any]:
    """Counters for two endpoints (/api/feed 60 req/s, /api/chat 20 req/s) in two regions
    (eu 3/4, us 1/4), one sample a minute for 2 h, with latency by endpoint."""
    rng = np.random.default_rng(seed)
    n = 120
    ts = T0 + np.arange(n) * MINUTE
    t = np.arange(n) * MINUTE
    items: list[dict[str, Any]] = []
    for endpoint, rate, latency in (("/api/feed", 60.0, 80.0), ("/api/chat", 20.0, 40.0)):
        for region, share in (("eu", 0.75), ("us", 0.25)):
            items += samples(
                "http_requests_total", ts, rate * share * t, endpoint=endpoint, region=region
            )
        items += samples("api_response_time", ts, latency + rng.normal(0, 5, n), endpoint=endpoint)
    return {"window": "2h", "metrics": {"api_availability": 99.95}, "samples": items}


def domain_basics(task_type: str, seed: int = 5) -> dict[str, Any]:
    """An hour of healthy-but-one-bad samples for the primary metrics of each domain."""
    rng = np.random.default_rng(seed)
    n = 60
    ts = T0 + np.arange(n) * MINUTE
    by_type: dict[str, dict[str, float]] = {
        "chat_backend_optimization": {
            "websocket_throughput": 1200,
            "message_processing_time": 180,
            "connection_stability": 99.6,
            "real_time_delivery": 35,
        },
        "prompt_feed_backend_optimization": {
            "content_retrieval_time": 150,
            "feed_generation_time": 900,
            "cache_hit_rate": 92,
            "data_freshness": 97,
        },
        "report_generation_optimization": {
            "report_generation": 450,
            "sentiment_analysis": 120,
            "ai_processing_efficiency": 60,
            "data_processing_time": 250,
        },
    }
    levels = by_type[task_type]
    shortfalls = {"connection_stability", "cache_hit_rate", "data_freshness"}

    def noisy(name: str, level: float) -> Any:
        if name in shortfalls:  # a percentage near 100 varies in its shortfall, never past 100
            return 100.0 - (100.0 - level) * np.exp(rng.normal(0, 0.1, n))
        return level * (1 + rng.normal(0, 0.02, n))

    return {
        "window": "1h",
        "metrics": {name: pairs(ts, noisy(name, level)) for name, level in levels.items()},
    }


def backend_day(seed: int = 6, days: float = 1.0, step_s: float = 60.0) -> dict[str, Any]:
    """A day (by default) of a backend under daily-cycling, slowly growing load.

    Load follows a daily sine around 300 req/s growing 2 %/day; the API's latency rises
    with load the way the Universal Scalability Law says (σ = 0.03, κ = 0.0004 in units
    of 10 concurrent users), CPU tracks load, the Redis hit rate sits at 78 % against
    95 %, and three WebSocket nodes hold connections proportional to load.
    """
    rng = np.random.default_rng(seed)
    n = int(days * 86_400 / step_s)
    ts = T0 + np.arange(n) * step_s
    t_days = np.arange(n) * step_s / 86_400
    daily = 1 + 0.5 * np.sin(2 * np.pi * (t_days - 0.3))
    rate = 300 * daily * np.exp(np.log(1.02) * t_days) * (1 + rng.normal(0, 0.02, n))
    users = rate * 0.12  # concurrent users implied (Little): rate × 120 ms
    conc = users / 10
    usl = 1 + 0.03 * (conc - 1) + 0.0004 * conc * (conc - 1)
    latency = 60 * usl * (1 + rng.normal(0, 0.03, n))
    cpu = np.clip(20 + 0.12 * rate + rng.normal(0, 2, n), 0, 100)
    counter = np.cumsum(rate * step_s)
    items: list[dict[str, Any]] = []
    items += samples("http_requests_total", ts, counter, endpoint="/api/feed", region="eu")
    for node in ("ws-1", "ws-2", "ws-3"):
        items += samples("websocket_connections", ts, rate * 2 + rng.normal(0, 5, n), instance=node)
    return {
        "window": f"{max(1, round(days))}d",
        "metrics": {
            "api_response_time": pairs(ts, latency),
            "cpu_utilization": pairs(ts, cpu),
            "memory_utilization": pairs(ts, 62 + 3 * t_days + rng.normal(0, 0.5, n)),
            "redis_cache_hit": pairs(ts, np.clip(78 + rng.normal(0, 0.5, n), 0, 100)),
            "database_query_time": pairs(ts, 35 + rng.normal(0, 2, n)),
            "api_availability": pairs(ts, np.clip(99.95 + rng.normal(0, 0.01, n), 0, 100)),
            "error_rate": pairs(ts, np.clip(0.3 + rng.normal(0, 0.05, n), 0, 100)),
        },
        "samples": items,
    }


INCIDENTS = (
    # (name, start hour, end hour)
    ("db_slowdown", 6.0, 8.0),
    ("error_spike", 15.0, 15.75),
)


def monitored_day(start: float, seed: int = 8) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A day of 1-minute samples of a healthy backend with two injected incidents.

    06:00–08:00 the database slows (50 → 95 ms from 06:00); the API (70 → 170 ms) and feed
    generation (300 → 800 ms) follow from 06:06. 15:00–15:45 a fifth of requests fail
    (error rate 0.03 → 20 %, availability 99.97 → 80 %). Quiet otherwise: noise only.
    """
    rng = np.random.default_rng(seed)
    n = 1440
    ts = start + np.arange(n) * 60.0
    hour = np.arange(n) / 60.0
    db_bad = (hour >= 6.0) & (hour < 8.0)
    follow = (hour >= 6.1) & (hour < 8.0)
    errors = (hour >= 15.0) & (hour < 15.75)

    def noisy(level: float, rel: float = 0.03) -> np.ndarray:
        return level * (1 + rng.normal(0, rel, n))

    error_rate = np.where(errors, noisy(20.0, 0.02), np.abs(noisy(0.03, 0.1)))
    return {
        "database_query_time": (ts, np.where(db_bad, noisy(95.0), noisy(30.0))),
        "api_response_time": (ts, np.where(follow, noisy(170.0), noisy(70.0))),
        "feed_generation_time": (ts, np.where(follow, noisy(800.0), noisy(300.0))),
        "error_rate": (ts, error_rate),
        "api_availability": (ts, np.clip(100.0 - error_rate, 0, 100)),
        "cpu_utilization": (ts, noisy(50.0, 0.02)),
        "memory_utilization": (ts, noisy(60.0, 0.01)),
        "redis_cache_hit": (ts, np.clip(noisy(97.0, 0.002), 0, 100)),
    }
