"""The simulated world's ground truth: backend states, and what each approach really does.

Independent of the agent by construction: this module imports only numpy and the standard
library (``tests/test_swarm_sim.py`` checks it with ``ast``), so the world the agent is
measured against is not the agent's own model of it. Nothing here reads the playbook's
priors, the metric catalog or any other table of ``agent/``; approach keys and metric
names are shared only as the wire vocabulary.

**State.** A backend's hidden state (``BackendState``) is a handful of physical
quantities; the metric levels the agent sees follow from it (``levels``)::

    cpu_utilization      = cpu
    db_pool_utilization  = pool
    redis_cache_hit      = hit
    database_query_time  = query_ms + 3·pool/(100 − pool) + db_extra_ms     pool waits
    api_response_time    = app_ms·(1 + 0.15·cpu/(100 − cpu))                  CPU queueing
                           + 4·(1 − hit/100)·database_query_time             cache misses
                           + 10 + api_extra_ms
    real_time_delivery   = transport_ms + 8·broker/(100 − broker)             broker queueing
                           + delivery_extra_ms
    websocket_throughput = ws_capacity·min(broker, 92)/100                    demand served

**Approaches are mechanisms** (``MECHANISMS``): a random change of the state. The effect
on a metric is the direction-aware improvement of that metric's level from before to
after (``improvement_pct``: lower-is-better ``(b − a)/b``; a bounded percentage: the share
of the gap to 100 removed; other higher-is-better ``(a − b)/b``), so one mechanism acts
on every metric coherently and how much it helps depends on the state it meets. The
world's targets are fixed (API 100 ms, database 50 ms, hit rate 95 %, CPU 70 %, delivery
50 ms), so a metric's level and its miss ratio are one coordinate: the further a metric
misses, the more (or, for a harmful context, the less) there is to gain:

=========================  ====================================================================
approach                   mechanism (``t`` is a Student-t draw with 3 df: heavy tails)
=========================  ====================================================================
query_optimization         bimodal: works with p 0.6 (the index covers the hot query), then
                           query time above a 20 ms floor shrinks by ``0.8 + 0.08t``; else
                           nothing (±3 %). The slower the database against its 50 ms
                           target, the more there is to remove.
multi_level_caching        bimodal: works with p 0.65 (warming matches the access pattern),
                           then misses above 3 % compulsory shrink by ``0.7 + 0.1t``; a second
                           tier adds 1.5 ms to every request either way. Helps the hit rate
                           more the lower it is; near 97 % it only costs latency.
cache_ttl_tuning           misses above 3 % shrink by ``0.35 + 0.08t`` (a bad TTL in the tail
                           evicts more: can be negative).
connection_pooling         pool use drops by ``0.45 + 0.08t``: removes pool waits, which only
                           matter when the pool is busy (~0 below 60 %).
read_replicas              reads move off the primary (pool use −``0.5 + 0.1t``) with p 0.7,
                           but every read pays 6 ms of routing and replica lag; with p 0.3
                           read-after-write pins reads to the primary (cost only). Harmful
                           when the pool is not busy.
batched_async_processing   CPU −``0.3 + 0.06t``, broker load −``0.5 + 0.08t``, but 6 ms of
                           enqueue on the request path and 8 ms of batch linger on delivery:
                           a big win under load, HARMFUL at low load — e.g. delivery that is
                           slow because of a long transport (a far region), not queueing.
autoscaling                capacity: only when CPU is over the 70 % scaling threshold, the
                           fleet scales out to ~58 % (``58·(1 + 0.05t)``) and cold starts add
                           2 ms; below it nothing happens.
websocket_clustering       capacity ×(3 + 0.5t): throughput rises only when the broker is
                           saturated (> 92 %); the backplane adds 3 ms to delivery.
anything else              no mechanism on this backend: no true effect.
=========================  ====================================================================

The true mean effect of an approach on a metric in a state (``true_mean_pct``) is the mean
over many draws of its mechanism (a fixed seed, so the oracle is deterministic); one
roll-out realises one draw (``realise``), and Athena's measurement adds the sampling noise
of an hour of data.

**Backends drift** (``Fleet``): three backends of different kinds (database-bound,
cache-bound with its chat users in a far region, load-bound), each state an AR(1) walk
(logit space for percentages, log space otherwise) around a profile mean jittered per
seed, with shocks (a traffic surge, cache churn, a new unindexed query): the same
approach meets very different states from round to round, backend to backend and run
to run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from types import MappingProxyType

import numpy as np

Value = float | np.ndarray
"""A state quantity: one value, or one per Monte Carlo draw (numpy broadcasts both)."""

# --- metrics ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricDef:
    """How the world measures one metric (its own definition, not the agent's catalog)."""

    name: str
    task_type: str
    """The Helios task whose inline data carries it."""
    lower_is_better: bool
    bounded: bool = False
    """A higher-is-better percentage capped at 100: improvement is the share of the gap closed."""
    p95: bool = False
    """A window is reduced to its p95 (latencies), else to its mean."""
    noise: float = 0.04
    """Per-sample noise: relative to the level, or in points when ``absolute_noise``."""
    absolute_noise: bool = False


METRICS: Mapping[str, MetricDef] = MappingProxyType(
    {
        m.name: m
        for m in (
            MetricDef("api_response_time", "api_optimization", True, p95=True),
            MetricDef("database_query_time", "api_optimization", True, p95=True),
            MetricDef(
                "redis_cache_hit", "api_optimization", False, True, noise=0.5, absolute_noise=True
            ),
            MetricDef("cpu_utilization", "api_optimization", True, noise=0.03),
            MetricDef("db_pool_utilization", "api_optimization", True, noise=0.03),
            MetricDef("websocket_throughput", "chat_backend_optimization", False),
            MetricDef("real_time_delivery", "chat_backend_optimization", True, p95=True),
        )
    }
)
TASK_TYPES: tuple[str, ...] = tuple(dict.fromkeys(m.task_type for m in METRICS.values()))
CPU_SCALE_OUT_AT = 70.0
"""The autoscaler's threshold: the world's CPU target."""


def improvement_pct(metric: str, before: Value, after: Value) -> Value:
    """How much better ``after`` is than ``before``, in % (positive = better)."""
    m = METRICS[metric]
    before = np.asarray(before, dtype=float)
    after = np.asarray(after, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if m.lower_is_better:
            out = (before - after) / before * 100.0
        elif m.bounded:
            out = (after - before) / (100.0 - before) * 100.0
        else:
            out = (after - before) / before * 100.0
    out = np.where(np.isfinite(out), out, 0.0)
    return float(out) if out.ndim == 0 else out


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackendState:
    """A backend's hidden state: what the metric levels follow from (see the module doc)."""

    cpu: Value
    """API fleet CPU utilisation, %."""
    app_ms: Value
    """The API's own work per request with no queueing, ms."""
    query_ms: Value
    """The database's per-query time (p95) without pool waits, ms."""
    pool: Value
    """Database connection pool in use, %."""
    hit: Value
    """Cache hit rate, %."""
    broker: Value
    """Chat broker utilisation, %."""
    ws_capacity: Value
    """Messages per second the chat cluster can carry."""
    transport_ms: Value = 15.0
    """Chat delivery's network time with no queueing (long for a far region)."""
    api_extra_ms: Value = 0.0
    db_extra_ms: Value = 0.0
    delivery_extra_ms: Value = 0.0


def _queue(u: Value) -> Value:
    """``u/(1 − u)`` for a utilisation in %, kept finite near saturation."""
    u = np.clip(u, 0.0, 97.0)
    return u / (100.0 - u)


def levels(s: BackendState) -> dict[str, Value]:
    """Every metric's true level in state ``s`` (the formulas of the module doc)."""
    db = s.query_ms + 3.0 * _queue(s.pool) + s.db_extra_ms
    api = (
        s.app_ms * (1.0 + 0.15 * _queue(s.cpu))
        + 4.0 * (1.0 - s.hit / 100.0) * db
        + 10.0
        + s.api_extra_ms
    )
    return {
        "api_response_time": api,
        "database_query_time": db,
        "redis_cache_hit": s.hit,
        "cpu_utilization": s.cpu,
        "db_pool_utilization": s.pool,
        "websocket_throughput": s.ws_capacity * np.minimum(s.broker, 92.0) / 100.0,
        "real_time_delivery": s.transport_ms + 8.0 * _queue(s.broker) + s.delivery_extra_ms,
    }


# --- mechanisms ---------------------------------------------------------------------------

Mechanism = Callable[[BackendState, np.random.Generator, int], BackendState]
"""(state, rng, draws) → the state after a roll-out, one value per draw."""
COMPULSORY_MISS_PCT = 3.0
QUERY_FLOOR_MS = 20.0


def _t(rng: np.random.Generator, n: int) -> np.ndarray:
    """Heavy-tailed noise: Student-t with 3 degrees of freedom."""
    return rng.standard_t(3.0, n)


def _works(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return rng.random(n) < p


def _shrink_misses(hit: Value, share: np.ndarray) -> np.ndarray:
    """The hit rate once ``share`` of the misses above the compulsory ones are gone."""
    miss = 100.0 - np.asarray(hit, dtype=float)
    floor = np.minimum(COMPULSORY_MISS_PCT, miss)
    return 100.0 - (floor + (miss - floor) * (1.0 - share))


def query_optimization(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    works = _works(rng, n, 0.6)
    share = np.clip(0.8 + 0.08 * _t(rng, n), 0.0, 1.0)
    above = np.maximum(np.asarray(s.query_ms) - QUERY_FLOOR_MS, 0.0)
    fixed = s.query_ms - above * share
    missed = s.query_ms * (1.0 + 0.03 * _t(rng, n))
    return replace(s, query_ms=np.where(works, fixed, missed))


def multi_level_caching(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    works = _works(rng, n, 0.65)
    share = np.where(works, np.clip(0.7 + 0.1 * _t(rng, n), 0.0, 1.0), 0.0)
    return replace(s, hit=_shrink_misses(s.hit, share), api_extra_ms=s.api_extra_ms + 1.5)


def cache_ttl_tuning(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    share = np.clip(0.35 + 0.08 * _t(rng, n), -0.5, 1.0)
    return replace(s, hit=np.clip(_shrink_misses(s.hit, share), 0.0, 100.0))


def connection_pooling(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    share = np.clip(0.45 + 0.08 * _t(rng, n), 0.0, 0.9)
    return replace(s, pool=s.pool * (1.0 - share))


def read_replicas(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    moves = _works(rng, n, 0.7)
    share = np.where(moves, np.clip(0.5 + 0.1 * _t(rng, n), 0.0, 0.9), 0.0)
    cost = 6.0 * (1.0 + np.abs(0.3 * _t(rng, n)))
    return replace(s, pool=s.pool * (1.0 - share), db_extra_ms=s.db_extra_ms + cost)


def batched_async_processing(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    cpu_share = np.clip(0.3 + 0.06 * _t(rng, n), 0.0, 0.8)
    broker_share = np.clip(0.5 + 0.08 * _t(rng, n), 0.0, 0.9)
    return replace(
        s,
        cpu=s.cpu * (1.0 - cpu_share),
        broker=s.broker * (1.0 - broker_share),
        api_extra_ms=s.api_extra_ms + 6.0,
        delivery_extra_ms=s.delivery_extra_ms + 8.0,
    )


def autoscaling(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    cpu = np.asarray(s.cpu, dtype=float)
    scaled = cpu > CPU_SCALE_OUT_AT
    target = np.clip(58.0 * (1.0 + 0.05 * _t(rng, n)), 30.0, None)
    idle = cpu * (1.0 + 0.02 * _t(rng, n))
    return replace(
        s,
        cpu=np.where(scaled, np.minimum(target, cpu), idle),
        api_extra_ms=s.api_extra_ms + np.where(scaled, 2.0, 0.0),
    )


def websocket_clustering(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    factor = 1.0 + np.clip(2.0 + 0.5 * _t(rng, n), 0.5, 5.0)
    return replace(
        s,
        ws_capacity=s.ws_capacity * factor,
        broker=s.broker / factor,
        delivery_extra_ms=s.delivery_extra_ms + 3.0,
    )


def unchanged(s: BackendState, rng: np.random.Generator, n: int) -> BackendState:
    """No mechanism on this backend: the state stays as it is."""
    del rng, n
    return s


MECHANISMS: Mapping[str, Mechanism] = MappingProxyType(
    {
        "query_optimization": query_optimization,
        "multi_level_caching": multi_level_caching,
        "cache_ttl_tuning": cache_ttl_tuning,
        "connection_pooling": connection_pooling,
        "read_replicas": read_replicas,
        "batched_async_processing": batched_async_processing,
        "autoscaling": autoscaling,
        "websocket_clustering": websocket_clustering,
    }
)
MC_DRAWS = 20_000


def effects_pct(
    approach: str, metric: str, state: BackendState, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """``draws`` realised effects (%) of ``approach`` on ``metric`` in ``state``."""
    after = MECHANISMS.get(approach, unchanged)(state, rng, draws)
    before_level = levels(state)[metric]
    out = improvement_pct(metric, before_level, levels(after)[metric])
    return np.broadcast_to(np.asarray(out, dtype=float), (draws,))


def true_mean_pct(approach: str, metric: str, state: BackendState, draws: int = MC_DRAWS) -> float:
    """The TRUE mean effect (%) in ``state``: what the best possible predictor would say."""
    rng = np.random.default_rng(0)
    return float(np.mean(effects_pct(approach, metric, state, draws, rng)))


def realise(approach: str, state: BackendState, rng: np.random.Generator) -> BackendState:
    """The state after one roll-out of ``approach`` (one draw of its mechanism)."""
    after = MECHANISMS.get(approach, unchanged)(state, rng, 1)
    return BackendState(
        **{f.name: float(np.asarray(getattr(after, f.name)).reshape(-1)[0]) for f in fields(after)}
    )


# --- backends and their drift -------------------------------------------------------------

_LOGIT = ("cpu", "pool", "hit", "broker")
"""Percentages: drift in logit space, so they stay inside (0, 100)."""
_LOG = ("app_ms", "query_ms", "ws_capacity", "transport_ms")
"""Positive quantities: drift in log space."""
_DRIFTING = _LOGIT + _LOG
PHI = 0.6
"""AR(1) persistence of a backend's state from one round to the next."""
STEP_SD = {"cpu": 0.35, "pool": 0.35, "hit": 0.3, "broker": 0.35}
STEP_SD_LOG = 0.15
JITTER_SD = {"logit": 0.3, "log": 0.15}
"""Per-seed spread of a profile's mean: the same kind of backend differs between runs."""
SHOCK_P = 0.08
"""Per backend and round, the chance of each kind of shock."""


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of backend: the state it drifts around."""

    name: str
    mean: BackendState


PROFILES: tuple[Profile, ...] = (
    Profile(
        "orders",  # database-bound: slow queries, a busy pool
        BackendState(
            cpu=62.0, app_ms=35.0, query_ms=75.0, pool=88.0, hit=85.0, broker=50.0, ws_capacity=900
        ),
    ),
    Profile(
        "catalog",  # cache-bound: a cold, undersized cache; its chat users in a far region
        BackendState(
            cpu=55.0,
            app_ms=45.0,
            query_ms=45.0,
            pool=55.0,
            hit=74.0,
            broker=40.0,
            ws_capacity=1200,
            transport_ms=48.0,
        ),
    ),
    Profile(
        "chat",  # load-bound: hot CPUs and a loaded broker
        BackendState(
            cpu=86.0, app_ms=55.0, query_ms=40.0, pool=72.0, hit=93.0, broker=86.0, ws_capacity=700
        ),
    ),
)

REFERENCE_STATES: Mapping[str, BackendState] = MappingProxyType(
    {
        "calm": BackendState(
            cpu=40.0, app_ms=40.0, query_ms=30.0, pool=40.0, hit=96.0, broker=30.0, ws_capacity=1000
        ),
        "stressed": BackendState(
            cpu=93.0, app_ms=60.0, query_ms=150.0, pool=95.0, hit=70.0, broker=96.0, ws_capacity=600
        ),
    }
)
"""Two far-apart states, for the truth table and the tests."""


def _logit(p: float) -> float:
    p = min(max(p / 100.0, 1e-4), 1.0 - 1e-4)
    return math.log(p / (1.0 - p))


def _to_x(s: BackendState) -> dict[str, float]:
    x = {k: _logit(float(getattr(s, k))) for k in _LOGIT}
    x.update({k: math.log(float(getattr(s, k))) for k in _LOG})
    return x


def _from_x(x: Mapping[str, float]) -> BackendState:
    values = {k: 100.0 / (1.0 + math.exp(-x[k])) for k in _LOGIT}
    values.update({k: math.exp(x[k]) for k in _LOG})
    return BackendState(**values)


class Fleet:
    """Several backends whose hidden states drift from round to round (seeded)."""

    def __init__(self, seed: int, profiles: Sequence[Profile] = PROFILES) -> None:
        self.rng = np.random.default_rng([seed, 15])
        self.names = [p.name for p in profiles]
        self.mu: dict[str, dict[str, float]] = {}
        for p in profiles:
            x = _to_x(p.mean)
            for k in _LOGIT:
                x[k] += self.rng.normal(0.0, JITTER_SD["logit"])
            for k in _LOG:
                x[k] += self.rng.normal(0.0, JITTER_SD["log"])
            self.mu[p.name] = x
        self.x = {name: dict(mu) for name, mu in self.mu.items()}

    def _sd(self, k: str) -> float:
        return STEP_SD.get(k, STEP_SD_LOG)

    def step(self) -> dict[str, BackendState]:
        """Every backend's state this round: one AR(1) step plus the shocks that hit it."""
        out = {}
        for name in self.names:
            mu, x = self.mu[name], self.x[name]
            for k in _DRIFTING:
                x[k] = mu[k] + PHI * (x[k] - mu[k]) + self.rng.normal(0.0, self._sd(k))
            if self.rng.random() < SHOCK_P:  # a traffic surge
                for k in ("cpu", "pool", "broker"):
                    x[k] += 1.2
            if self.rng.random() < SHOCK_P:  # cache churn: a deploy changed the key space
                x["hit"] -= 1.0
            if self.rng.random() < SHOCK_P:  # a new feature ships an unindexed query
                x["query_ms"] += math.log(1.8)
            out[name] = _from_x(x)
        return out


# --- sampling what Helios and Athena see --------------------------------------------------


def samples(metric: str, level: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` noisy samples of ``metric`` at ``level``."""
    m = METRICS[metric]
    if m.absolute_noise:
        return np.clip(level + rng.normal(0.0, m.noise, n), 0.0, 100.0)
    return np.maximum(level * (1.0 + rng.normal(0.0, m.noise, n)), 0.0)


def statistic(metric: str, values: np.ndarray) -> float:
    """A window reduced the way the world reports the metric (p95 or mean)."""
    if METRICS[metric].p95:
        return float(np.percentile(values, 95))
    return float(np.mean(values))


# --- the table ---------------------------------------------------------------------------

PAIRS: tuple[tuple[str, str], ...] = (
    ("query_optimization", "database_query_time"),
    ("query_optimization", "api_response_time"),
    ("multi_level_caching", "redis_cache_hit"),
    ("multi_level_caching", "api_response_time"),
    ("cache_ttl_tuning", "redis_cache_hit"),
    ("connection_pooling", "database_query_time"),
    ("read_replicas", "database_query_time"),
    ("batched_async_processing", "api_response_time"),
    ("batched_async_processing", "real_time_delivery"),
    ("autoscaling", "cpu_utilization"),
    ("websocket_clustering", "websocket_throughput"),
)
"""The (approach, metric) pairs the world has a mechanism for that matter here."""


def truth_table() -> list[dict[str, object]]:
    """True mean effect (%) of every pair in the reference states and the profiles' means."""
    states = {**REFERENCE_STATES, **{p.name: p.mean for p in PROFILES}}
    return [
        {
            "approach": a,
            "metric": m,
            **{name: round(true_mean_pct(a, m, s), 1) for name, s in states.items()},
        }
        for a, m in PAIRS
    ]
