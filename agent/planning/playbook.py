"""The playbook: the one table of optimisation approaches and their prior impact ranges.

Impact ranges are the swarm's (docs/design.md; the table: docs/methods.md §8) where it
names them, and conservative engineering priors otherwise; the learning store
calibrates them against what Athena measured. ``expected`` is the midpoint of the
range. ``measure`` says what the percentage is of: ``reduction`` is how much of the
shortfall goes away (lower latency, fewer errors, a smaller gap to 100 % for a
bounded percentage, or a higher rate for a higher-is-better one); ``capacity`` is
added capacity (clustering: 300–500 % more).

``requires`` names approaches that should be done first, because the later one builds
on what the earlier one puts in place (the reason is written next to each entry). The
graph is acyclic (a test checks it); the planner only orders by it and never adds a
required approach the findings did not call for.

``needs`` names a condition (``CONDITIONS``) the data must show for an approach to pay
off at all: a bottleneck type says *where* it hurts, not always *why*, and an approach
that fixes only one of the whys is a guess until the data shows that why. The planner
(``planning.prioritize.rank_candidates``) reads the condition from ``signals``: seen, the
approach competes on its score; measured and absent, it is no candidate (and the plan
says why, the way it does for an infeasible one); not measured, it ranks after every
candidate whose need is met or that needs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from protocols.messages import RiskLevel

Measure = Literal["reduction", "capacity"]


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition in the data that an approach ``needs``, and how the plan words its state."""

    key: str
    absent: str
    """Why an approach that needs it is no candidate when it was measured and is absent."""
    unmeasured: str
    """What the rationale says when nobody measured it (the approach then ranks last)."""
    metric: str
    """The auxiliary series (``catalog.AUXILIARY``) that measures it."""
    seen_at: float
    """The condition is seen when the series' p95 over the window reaches this."""


CONDITIONS: Mapping[str, Condition] = MappingProxyType(
    {
        c.key: c
        for c in (
            Condition(
                key="db_pool_pressure",
                absent="connection pools healthy: no sign of pool pressure",
                unmeasured="pool pressure not measured",
                metric="db_pool_utilization",
                seen_at=80.0,  # % of the pool in use at the busy end of the window
            ),
        )
    }
)
"""Condition key → condition: every ``Approach.needs`` names one (a test checks it)."""


@dataclass(frozen=True, slots=True)
class Approach:
    """One way to fix a kind of bottleneck, with its expected effect, effort and risk."""

    key: str
    name: str
    addresses: frozenset[str]
    """Bottleneck types (catalog ``bottleneck_type``) this approach acts on."""
    impact_low: float
    impact_high: float
    effort_weeks: float
    risk_level: RiskLevel
    risk: str
    prerequisites: tuple[str, ...]
    infra_cost: str
    measure: Measure = "reduction"
    requires: tuple[str, ...] = ()
    """Keys of approaches to finish before this one (``PLAYBOOK`` keys; no cycles)."""
    needs: str | None = None
    """A ``CONDITIONS`` key the data must show for this approach to pay off; None: none."""
    load: str | None = None
    """The utilisation series (%) of the resource this approach relieves: how busy it is
    changes what the approach can do (``learning.model``'s ``load`` feature)."""

    @property
    def impact_expected(self) -> float:
        """The midpoint of the range until verified outcomes calibrate it."""
        return (self.impact_low + self.impact_high) / 2.0

    @property
    def impact_per_week(self) -> float:
        """Expected impact per engineer-week: the order ``approaches_for`` ranks by."""
        return self.impact_expected / self.effort_weeks


_APPROACHES: tuple[Approach, ...] = (
    Approach(
        key="query_optimization",
        name="Database query optimisation and indexing",
        addresses=frozenset({"database_latency", "processing_latency"}),
        impact_low=40.0,
        impact_high=70.0,
        effort_weeks=3.0,
        risk_level="medium",
        risk="lock contention and write amplification during index builds",
        prerequisites=("slow-query log or pg_stat_statements", "query plans of hot endpoints"),
        infra_cost="none beyond index storage",
    ),
    Approach(
        key="multi_level_caching",
        name="Multi-level caching with smart warming",
        addresses=frozenset({"cache_efficiency", "data_access", "processing_latency"}),
        impact_low=50.0,
        impact_high=80.0,
        effort_weeks=4.0,
        risk_level="medium",
        risk="stale reads when invalidation misses a write path",
        prerequisites=("cacheable read paths identified", "an invalidation event per write"),
        infra_cost="a Redis tier sized to the hot set",
        # The per-prefix hit/miss and eviction numbers TTL tuning produces are what the
        # levels are sized from; a second tier over a mis-tuned first caches the misses.
        requires=("cache_ttl_tuning",),
    ),
    Approach(
        key="connection_pooling",
        name="Connection pooling",
        addresses=frozenset({"database_latency", "throughput_capacity"}),
        impact_low=30.0,
        impact_high=50.0,
        effort_weeks=1.0,
        risk_level="low",
        risk="pool exhaustion under bursts when sized too small",
        prerequisites=("connection count and pool wait-time metrics",),
        infra_cost="none; fewer database connections",
        # A pool removes the cost of opening connections and the wait for a free one; a
        # database that is slow with healthy pools is slow per query, which no pool fixes.
        needs="db_pool_pressure",
        load="db_pool_utilization",
    ),
    Approach(
        key="batched_async_processing",
        name="Batched asynchronous message processing",
        addresses=frozenset({"delivery_latency", "processing_latency", "throughput_capacity"}),
        impact_low=40.0,
        impact_high=60.0,
        effort_weeks=3.0,
        risk_level="medium",
        risk="reordering and at-least-once duplicates need idempotent consumers",
        prerequisites=("idempotent handlers", "a durable queue"),
        infra_cost="a durable queue (JetStream stream)",
        load="cpu_utilization",
    ),
    Approach(
        key="websocket_clustering",
        name="Horizontal WebSocket clustering with sticky sessions",
        addresses=frozenset({"connection_scaling"}),
        impact_low=300.0,
        impact_high=500.0,
        effort_weeks=5.0,
        risk_level="high",
        risk="sessions lost on node failure without sticky-session failover",
        prerequisites=("load balancer with sticky sessions", "shared pub/sub backplane"),
        infra_cost="more WebSocket nodes and a backplane",
        measure="capacity",
    ),
    Approach(
        key="quantization_batch_inference",
        name="Model quantisation and batch inference",
        addresses=frozenset({"ai_processing_speed", "nlp_computation"}),
        impact_low=50.0,
        impact_high=80.0,
        effort_weeks=4.0,
        risk_level="medium",
        risk="accuracy loss from reduced precision",
        prerequisites=("an accuracy benchmark set", "a batching-tolerant request path"),
        infra_cost="none; less GPU/CPU time per request",
    ),
    Approach(
        key="parallel_data_pipeline",
        name="Parallel data pipeline",
        addresses=frozenset({"data_pipeline", "data_staleness"}),
        impact_low=60.0,
        impact_high=90.0,
        effort_weeks=5.0,
        risk_level="medium",
        risk="out-of-order writes between parallel stages",
        prerequisites=("independent pipeline stages", "idempotent sinks"),
        infra_cost="more workers while the pipeline runs",
    ),
    Approach(
        key="cache_ttl_tuning",
        name="Cache TTL and eviction tuning",
        addresses=frozenset({"cache_efficiency", "data_staleness"}),
        impact_low=15.0,
        impact_high=35.0,
        effort_weeks=1.0,
        risk_level="low",
        risk="staler data with longer TTLs",
        prerequisites=("hit/miss and eviction counts per key prefix",),
        infra_cost="none, or more cache memory",
    ),
    Approach(
        key="read_replicas",
        name="Read replicas",
        addresses=frozenset({"database_latency", "data_access", "throughput_capacity"}),
        impact_low=30.0,
        impact_high=60.0,
        effort_weeks=2.0,
        risk_level="medium",
        risk="replication lag visible to reads right after writes",
        prerequisites=("read/write split in the data layer",),
        infra_cost="one database instance per replica",
        # Every replica multiplies the connections each instance opens; without a pool
        # the replicas hit their connection limit before they take load off the primary.
        requires=("connection_pooling",),
        # Replicas take read *load* off the primary; they pay off only when the primary is
        # slow because it is busy, and a busy primary holds each connection longer, which
        # shows as pool pressure. With healthy pools the primary is slow per query, and a
        # replica runs the same slow query: index and rewrite it instead. (Pool pressure is
        # the one load signal measured so far; a read-saturation signal would be sharper.)
        needs="db_pool_pressure",
        load="db_pool_utilization",
    ),
    Approach(
        key="load_shedding",
        name="Rate limiting and load shedding",
        addresses=frozenset({"reliability", "availability", "throughput_capacity"}),
        impact_low=20.0,
        impact_high=50.0,
        effort_weeks=1.5,
        risk_level="medium",
        risk="legitimate requests rejected when limits are too tight",
        prerequisites=("per-client request metrics", "a priority for each endpoint"),
        infra_cost="none",
        load="cpu_utilization",
    ),
    Approach(
        key="autoscaling",
        name="Autoscaling on saturation signals",
        addresses=frozenset({"resource_saturation", "throughput_capacity", "availability"}),
        impact_low=30.0,
        impact_high=60.0,
        effort_weeks=2.0,
        risk_level="medium",
        risk="cost spikes and cold-start latency while scaling out",
        prerequisites=("stateless instances", "CPU/memory/latency scaling signals"),
        infra_cost="instance-hours above the baseline fleet",
        load="cpu_utilization",
    ),
    Approach(
        key="retries_circuit_breakers",
        name="Retries with backoff and circuit breakers",
        addresses=frozenset({"reliability", "availability"}),
        impact_low=30.0,
        impact_high=60.0,
        effort_weeks=2.0,
        risk_level="low",
        risk="retry storms if backoff and jitter are missing",
        prerequisites=("idempotent downstream calls", "per-dependency error metrics"),
        infra_cost="none",
    ),
)

PLAYBOOK: Mapping[str, Approach] = MappingProxyType({a.key: a for a in _APPROACHES})
"""Approach key → approach: the one table of optimisation approaches."""


def approaches_for(bottleneck_type: str) -> list[Approach]:
    """The approaches that address ``bottleneck_type``, best expected impact per week first.

    Ties break on the lower risk, then the key, so the order is stable. This is the
    playbook's own order, before any finding is known; which approach a finding gets is
    ``planning.prioritize.rank_candidates``'s decision, which breaks its ties by it.
    """
    risk_rank = {"low": 0, "medium": 1, "high": 2}
    matching = [a for a in PLAYBOOK.values() if bottleneck_type in a.addresses]
    return sorted(matching, key=lambda a: (-a.impact_per_week, risk_rank[a.risk_level], a.key))


LOAD_METRICS: tuple[str, ...] = tuple(
    dict.fromkeys(a.load for a in PLAYBOOK.values() if a.load is not None)
)
"""Every utilisation some approach relieves: what a plan reads for the model's ``load``."""
