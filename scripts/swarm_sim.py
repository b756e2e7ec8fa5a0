"""A closed-loop swarm simulator: Helios, Hephaestus and Athena played against a live agent.

The simulator talks to the strategist only through the subjects of PROTOCOL.md, with bare
nats-py (``protocols`` encodes and decodes): a real peer's view, none of the agent's code
paths. Each round:

1. **The simulated backend** degrades again: every metric's level is drawn around a fixed
   mean (so the same bottlenecks recur round after round, with some spread).
2. **Helios** sends one rpc task per task type (``api_optimization`` with the API and its
   infrastructure, ``chat_backend_optimization`` with the chat metrics), each with an hour
   of inline samples (one a minute) of the backend's current state, and keeps the results.
3. **Hephaestus** (an ordered JetStream consumer on ``swarm.plans.<hephaestus>``) takes each
   plan item and "applies" it: the item's metric changes by the approach's TRUE effect, in
   the playbook's direction-aware sense (lower-is-better ``v × (1 − e)``; bounded
   higher-is-better: the shortfall to 100 shrinks by ``e``; other higher-is-better
   ``v × (1 + e)``). Every item is rolled out as its own canary on the round's backend, so
   a verification measures one approach, never two at once. It publishes
   ``implementation_update/v1`` (``implemented``, ``feasible``) to ``swarm.feedback.<agent>``;
   the first plan item of ``multi_level_caching`` is instead reported ``rejected`` /
   ``infeasible`` with a reason (once), so the agent's feedback path is exercised.
4. **Athena** (an ordered JetStream consumer on ``swarm.baselines.<athena>``) measures each
   applied item again (a fresh simulated hour of samples at the new level, reduced to the
   catalog's statistic: p95 for latencies, mean otherwise) and publishes
   ``verification_result/v1`` with the baseline's value and the measured one to
   ``swarm.verifications.<agent>``.
5. The round waits until every JetStream consumer of the verification and feedback streams
   has acknowledged what was published (the server's consumer info; no agent internals), so
   the next round's tasks see what the agent learnt — or immediately when nobody consumes.

TRUE effects (a fixed table, the same for every seed; factor × the playbook's prior
``expected`` percentage, by approach key and metric)::

    approach                  metric                 factor   true %   prior %
    query_optimization        api_response_time       0.5     27.5     55
    query_optimization        database_query_time     0.5     27.5     55
    batched_async_processing  api_response_time       1.3     65       50
    batched_async_processing  real_time_delivery      1.3     65       50
    multi_level_caching       api_response_time       0.5     32.5     65
    multi_level_caching       redis_cache_hit         0.5     32.5     65
    connection_pooling        database_query_time     0.5     20       40
    read_replicas             database_query_time    -0.2     -9       45   (makes it worse)
    cache_ttl_tuning          redis_cache_hit         1.3     32.5     25
    websocket_clustering      websocket_throughput    0.5     200      400
    autoscaling               cpu_utilization         0.5     22.5     45
    any other pair                                    0.5

So the priors start about 2× off for most approaches, 0.77× for two, and read replicas
(without the pool they need) make the database slower. The realised effect of each roll-out
varies by ±5 % (relative, 1 σ) around the true one, and every measurement carries the
sampling noise of its hour of data; the per-round "oracle" column is the error a predictor
that knew the true table would make, i.e. the noise floor.

Per round the simulator records, per verified recommendation, the predicted improvement
(the baseline's ``expected_improvement_pct``) and the actual one (direction-aware, from the
baseline value and the measured value), and reports the mean absolute percentage error
``|pred − actual| / max(|actual|, 1)``, the share of recommendations whose metric moved the
way predicted (sign of the change), and how many recommendations were ``calibrated``.

Usage::

    python scripts/swarm_sim.py --rounds 10 --seed 1            # embedded server + agent
    python scripts/swarm_sim.py --nats-url nats://127.0.0.1:4222 --agent-id prometheus-backend

As a library: ``await run_loop(nats_url, agent_id, hephaestus_id, athena_id, rounds=…, seed=…)``
against a running agent, or ``await run_embedded(rounds=…, seed=…)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import msgspec
import nats
import numpy as np
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from agent.analysis.catalog import CATALOG
from agent.planning.playbook import PLAYBOOK
from protocols import (
    ImplementationUpdate,
    OptimizationPlan,
    PerformanceBaseline,
    PlanItem,
    Prediction,
    TaskResult,
    VerificationResult,
    decode,
    encode,
    subjects,
)
from protocols.messages import AnalysisReport

log = logging.getLogger("swarm_sim")

# --- the simulated backend ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricModel:
    """One simulated metric: where its degraded level sits and how noisy it is."""

    name: str
    task_type: str
    """The Helios task whose inline data carries this metric."""
    mean: float
    """Mean degraded level each round."""
    spread: float = 0.05
    """Round-to-round relative spread of the level (of the shortfall, for bounded metrics)."""
    noise: float = 0.04
    """Per-sample noise: relative to the level, or in points for a bounded percentage."""


METRICS: tuple[MetricModel, ...] = (
    MetricModel(name="api_response_time", task_type="api_optimization", mean=180.0),
    MetricModel(name="database_query_time", task_type="api_optimization", mean=85.0),
    MetricModel(name="redis_cache_hit", task_type="api_optimization", mean=82.0, noise=0.5),
    MetricModel(name="cpu_utilization", task_type="api_optimization", mean=84.0, noise=0.03),
    MetricModel(name="websocket_throughput", task_type="chat_backend_optimization", mean=650.0),
    MetricModel(name="real_time_delivery", task_type="chat_backend_optimization", mean=90.0),
)
TASK_TYPES: tuple[str, ...] = tuple(dict.fromkeys(m.task_type for m in METRICS))

TRUE_FACTORS: Mapping[tuple[str, str], float] = MappingProxyType(
    {
        ("query_optimization", "api_response_time"): 0.5,
        ("query_optimization", "database_query_time"): 0.5,
        ("batched_async_processing", "api_response_time"): 1.3,
        ("batched_async_processing", "real_time_delivery"): 1.3,
        ("multi_level_caching", "api_response_time"): 0.5,
        ("multi_level_caching", "redis_cache_hit"): 0.5,
        ("connection_pooling", "database_query_time"): 0.5,
        ("read_replicas", "database_query_time"): -0.2,
        ("cache_ttl_tuning", "redis_cache_hit"): 1.3,
        ("websocket_clustering", "websocket_throughput"): 0.5,
        ("autoscaling", "cpu_utilization"): 0.5,
    }
)
"""(approach key, metric) → TRUE effect as a factor of the playbook's prior expected %."""
DEFAULT_FACTOR = 0.5
EFFECT_JITTER = 0.05
"""Relative spread (1 σ) of the effect one roll-out realises around the true one."""
SAMPLES_PER_WINDOW = 60
"""An hour at one sample a minute."""
INFEASIBLE_REASON = "no budget for a second cache tier this quarter"
APPROACH_KEYS: Mapping[str, str] = MappingProxyType({a.name: a.key for a in PLAYBOOK.values()})
"""Approach display name (as on the wire) → playbook key."""


def true_effect_pct(approach_key: str, metric: str) -> float:
    """The TRUE improvement (%) an approach brings to a metric (negative: makes it worse)."""
    factor = TRUE_FACTORS.get((approach_key, metric), DEFAULT_FACTOR)
    return factor * PLAYBOOK[approach_key].impact_expected


def apply_effect(value: float, effect_pct: float, metric: str) -> float:
    """``value`` after an improvement of ``effect_pct``, in the playbook's direction-aware sense."""
    spec = CATALOG[metric]
    e = effect_pct / 100.0
    if spec.direction == "lower_is_better":
        return value * (1.0 - min(e, 1.0))
    if spec.bounded:
        return 100.0 - (100.0 - value) * (1.0 - min(e, 1.0))
    return value * (1.0 + e)


def improvement_pct(baseline: float, measured: float, metric: str) -> float:
    """The actual improvement (%) from ``baseline`` to ``measured``; the inverse of
    ``apply_effect`` (positive = better)."""
    spec = CATALOG[metric]
    if spec.direction == "lower_is_better":
        return (baseline - measured) / baseline * 100.0 if baseline else 0.0
    if spec.bounded:
        gap = 100.0 - baseline
        return (measured - baseline) / gap * 100.0 if gap > 0 else 0.0
    return (measured - baseline) / baseline * 100.0 if baseline else 0.0


def prediction_error(predicted: float, actual: float) -> float:
    """``|predicted − actual| / max(|actual|, 1)``: a relative error that stays finite near 0."""
    return abs(predicted - actual) / max(abs(actual), 1.0)


def moved_as_predicted(predicted: float, actual: float) -> bool:
    """Whether the metric moved the way the prediction said (better, worse or not at all)."""
    return bool(np.sign(predicted) == np.sign(actual))


class SimulatedBackend:
    """Seeded levels and samples of the metrics in ``METRICS`` (numpy, no I/O)."""

    def __init__(self, seed: int, metrics: Sequence[MetricModel] = METRICS) -> None:
        self.rng = np.random.default_rng(seed)
        self.models = {m.name: m for m in metrics}

    def degrade(self) -> dict[str, float]:
        """This round's degraded level of every metric, around its fixed mean."""
        levels = {}
        for m in self.models.values():
            jitter = 1.0 + self.rng.normal(0.0, m.spread)
            if CATALOG[m.name].bounded:
                levels[m.name] = 100.0 - (100.0 - m.mean) * jitter
            else:
                levels[m.name] = m.mean * jitter
        return levels

    def samples(self, metric: str, level: float, n: int = SAMPLES_PER_WINDOW) -> np.ndarray:
        """``n`` noisy samples of ``metric`` at ``level``."""
        m = self.models[metric]
        if CATALOG[metric].bounded:
            return np.clip(level + self.rng.normal(0.0, m.noise, n), 0.0, 100.0)
        return np.maximum(level * (1.0 + self.rng.normal(0.0, m.noise, n)), 0.0)

    def window(self, levels: Mapping[str, float], task_type: str, end: float) -> dict[str, Any]:
        """``params`` of a task: an hour of ``[epoch_ts, value]`` pairs per metric of the type."""
        ts = end - 60.0 * np.arange(SAMPLES_PER_WINDOW)[::-1]
        metrics = {
            name: [
                [float(t), round(float(v), 4)]
                for t, v in zip(ts, self.samples(name, levels[name]), strict=True)
            ]
            for name, m in self.models.items()
            if m.task_type == task_type
        }
        return {"window": "1h", "metrics": metrics}

    def apply(self, approach_key: str, metric: str, level: float) -> float:
        """The metric's level once the approach is rolled out (the true effect, realised)."""
        effect = true_effect_pct(approach_key, metric)
        effect *= 1.0 + self.rng.normal(0.0, EFFECT_JITTER)
        return apply_effect(level, effect, metric)

    def measure(self, metric: str, level: float) -> float:
        """A fresh hour of samples at ``level``, reduced to the catalog's statistic."""
        values = self.samples(metric, level)
        if CATALOG[metric].statistic == "p95":
            return round(float(np.percentile(values, 95)), 4)
        return round(float(np.mean(values)), 4)


# --- what a round records -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One plan item, from prediction to measured outcome."""

    recommendation_id: str
    metric: str
    approach: str
    """Playbook key."""
    predicted_pct: float
    actual_pct: float
    true_pct: float
    calibrated: bool
    verifications: int
    """How many verified outcomes the agent said back the prediction."""


@dataclass(slots=True)
class RoundStats:
    round: int
    tasks: int
    recommendations: int
    plans: int
    baselines: int
    verified: int
    infeasible: int
    calibrated: int
    prediction_error_pct: float
    """Mean of ``|pred − actual| / max(|actual|, 1)`` over the verified items, in %."""
    oracle_error_pct: float
    """The same error for a predictor that knows the TRUE table (the noise floor)."""
    accuracy_pct: float
    """Share of verified items whose metric moved the way predicted, in %."""
    consumed: bool
    """Every consumer of the verification and feedback streams acknowledged this round's
    messages (False when nothing consumes them, or not within the timeout)."""
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)


class SimulationError(RuntimeError):
    """The agent did not answer as the contract says (a missing result, plan or baseline)."""


# --- the peers ------------------------------------------------------------------------

K = TypeVar("K")
V = TypeVar("V")


class Inbox(Generic[K, V]):
    """Messages by key, and a bounded wait for a set of keys."""

    def __init__(self) -> None:
        self.items: dict[K, V] = {}
        self._arrived = asyncio.Event()

    def put(self, key: K, value: V) -> None:
        self.items[key] = value
        self._arrived.set()

    async def wait_for(self, keys: Iterable[K], timeout: float, what: str) -> dict[K, V]:
        wanted = list(dict.fromkeys(keys))  # in the caller's order: the run stays seeded
        deadline = asyncio.get_running_loop().time() + timeout
        while missing := [k for k in wanted if k not in self.items]:
            remaining = deadline - asyncio.get_running_loop().time()
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), max(remaining, 0.0))
            except TimeoutError:
                raise SimulationError(
                    f"no {what} within {timeout:g}s for {sorted(map(str, missing))}"
                ) from None
        return {k: self.items[k] for k in wanted}


def _now() -> datetime:
    return datetime.now(UTC)


async def _publish(js: JetStreamContext, subject: str, payload: bytes, msg_id: str) -> None:
    headers = {"Content-Type": "application/json", "Nats-Msg-Id": msg_id}
    await js.publish(subject, payload, headers=headers, timeout=5.0)


class Helios:
    """Sends analysis tasks over rpc and keeps the results."""

    def __init__(self, nc: Client, agent_id: str, timeout: float) -> None:
        self.nc = nc
        self.agent_id = agent_id
        self.timeout = timeout

    async def analyse(self, task_type: str, params: Mapping[str, Any]) -> TaskResult:
        task = {
            "schema": "task_request/v1",
            "task_id": f"sim-{uuid.uuid4().hex[:16]}",
            "task_type": task_type,
            "issued_at": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "issuer": "swarm-sim-helios",
            "params": dict(params),
        }
        reply = await self.nc.request(
            subjects.rpc(self.agent_id, task_type),
            json.dumps(task).encode(),
            timeout=self.timeout,
            headers={"Content-Type": "application/json"},
        )
        result = decode(TaskResult, reply.data)
        if result.status != "completed":
            raise SimulationError(f"task {task['task_id']} {result.status}: {result.error}")
        return result


class Hephaestus:
    """Receives plans, rolls items out on the simulated backend, reports progress."""

    def __init__(self, js: JetStreamContext, hephaestus_id: str, agent_id: str) -> None:
        self.js = js
        self.subject = subjects.plans(hephaestus_id)
        self.feedback = subjects.feedback(agent_id)
        self.plans: Inbox[str, OptimizationPlan] = Inbox()
        """By ``source_task_id``."""
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self.js.subscribe(
            self.subject, cb=self._on_plan, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
        )

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_plan(self, msg: Msg) -> None:
        plan = decode(OptimizationPlan, msg.data)
        self.plans.put(plan.source_task_id, plan)

    async def report(
        self, plan: OptimizationPlan, item: PlanItem, *, feasible: bool, reason: str | None = None
    ) -> str:
        approach = PLAYBOOK.get(APPROACH_KEYS.get(item.approach, ""))
        update = ImplementationUpdate(
            update_id=f"upd-{uuid.uuid4().hex[:16]}",
            plan_id=plan.plan_id,
            recommendation_id=item.recommendation_id,
            status="implemented" if feasible else "rejected",
            reported_at=_now(),
            feasibility="feasible" if feasible else "infeasible",
            reason=reason,
            effort_spent_weeks=approach.effort_weeks if feasible and approach else None,
        )
        await _publish(self.js, self.feedback, encode(update), update.update_id)
        return update.update_id


class Athena:
    """Receives baselines, measures applied items again, reports verified outcomes."""

    def __init__(self, js: JetStreamContext, athena_id: str, agent_id: str) -> None:
        self.js = js
        self.subject = subjects.baselines(athena_id)
        self.verifications = subjects.verifications(agent_id)
        self.baselines: Inbox[str, PerformanceBaseline] = Inbox()
        """By ``plan_id``."""
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self.js.subscribe(
            self.subject,
            cb=self._on_baseline,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_baseline(self, msg: Msg) -> None:
        baseline = decode(PerformanceBaseline, msg.data)
        self.baselines.put(baseline.plan_id, baseline)

    async def verify(
        self, baseline: PerformanceBaseline, prediction: Prediction, measured: float
    ) -> str:
        verification = VerificationResult(
            verification_id=f"ver-{uuid.uuid4().hex[:16]}",
            plan_id=baseline.plan_id,
            recommendation_id=prediction.recommendation_id,
            metric=prediction.metric,
            baseline_value=baseline.metrics[prediction.metric].value,
            measured_value=measured,
            verified_at=_now(),
            approach=prediction.approach,
        )
        await _publish(
            self.js, self.verifications, encode(verification), verification.verification_id
        )
        return verification.verification_id


async def wait_consumed(js: JetStreamContext, subject: str, timeout: float) -> bool:
    """Until every consumer of the stream holding ``subject`` has acknowledged all of it.

    False at once when the stream has no consumer (nobody learns from it yet), or when the
    consumers have not caught up within ``timeout``.
    """
    stream = await js.find_stream_name_by_subject(subject)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        consumers = await js.consumers_info(stream)
        if not consumers:
            return False
        if all(not c.num_pending and not c.num_ack_pending for c in consumers):
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.01)


# --- the loop ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Swarm:
    backend: SimulatedBackend
    helios: Helios
    hephaestus: Hephaestus
    athena: Athena
    js: JetStreamContext
    agent_id: str
    infeasible_approach: str | None
    timeout: float
    infeasible_sent: bool = False


async def _round(swarm: _Swarm, number: int) -> RoundStats:
    started = time.perf_counter()
    levels = swarm.backend.degrade()
    end = time.time()
    results = await asyncio.gather(
        *(swarm.helios.analyse(tt, swarm.backend.window(levels, tt, end)) for tt in TASK_TYPES)
    )
    reports = {
        r.task_id: msgspec.convert(r.report, AnalysisReport, strict=False)
        for r in results
        if r.report is not None
    }
    recs = {rec.recommendation_id: rec for rep in reports.values() for rec in rep.recommendations}
    expecting = [task_id for task_id, rep in reports.items() if rep.recommendations]
    plans = await swarm.hephaestus.plans.wait_for(expecting, swarm.timeout, "plan")
    baselines = await swarm.athena.baselines.wait_for(
        (p.plan_id for p in plans.values()), swarm.timeout, "baseline"
    )

    outcomes: list[Outcome] = []
    oracle: list[float] = []
    infeasible = 0
    sends = []
    for plan in plans.values():
        baseline = baselines[plan.plan_id]
        predictions = {p.recommendation_id: p for p in baseline.predictions}
        for item in plan.items:
            key = APPROACH_KEYS.get(item.approach)
            prediction = predictions.get(item.recommendation_id)
            if key is None or prediction is None or item.target not in levels:
                raise SimulationError(f"plan item {item.recommendation_id} cannot be simulated")
            if key == swarm.infeasible_approach and not swarm.infeasible_sent:
                swarm.infeasible_sent = True
                infeasible += 1
                sends.append(
                    swarm.hephaestus.report(plan, item, feasible=False, reason=INFEASIBLE_REASON)
                )
                continue
            after = swarm.backend.apply(key, item.target, levels[item.target])
            sends.append(swarm.hephaestus.report(plan, item, feasible=True))
            measured = swarm.backend.measure(item.target, after)
            sends.append(swarm.athena.verify(baseline, prediction, measured))
            base_value = baseline.metrics[item.target].value
            actual = improvement_pct(base_value, measured, item.target)
            truth = true_effect_pct(key, item.target)
            rec = recs.get(item.recommendation_id)
            outcomes.append(
                Outcome(
                    recommendation_id=item.recommendation_id,
                    metric=item.target,
                    approach=key,
                    predicted_pct=prediction.expected_improvement_pct,
                    actual_pct=round(actual, 3),
                    true_pct=truth,
                    calibrated=bool(rec and rec.calibrated),
                    verifications=rec.verifications if rec else 0,
                )
            )
            oracle.append(prediction_error(truth, actual))
    await asyncio.gather(*sends)
    consumed = all(
        await asyncio.gather(
            wait_consumed(swarm.js, subjects.verifications(swarm.agent_id), swarm.timeout),
            wait_consumed(swarm.js, subjects.feedback(swarm.agent_id), swarm.timeout),
        )
    )
    errors = [prediction_error(o.predicted_pct, o.actual_pct) for o in outcomes]
    right = [moved_as_predicted(o.predicted_pct, o.actual_pct) for o in outcomes]
    return RoundStats(
        round=number,
        tasks=len(results),
        recommendations=len(recs),
        plans=len(plans),
        baselines=len(baselines),
        verified=len(outcomes),
        infeasible=infeasible,
        calibrated=sum(r.calibrated for r in recs.values()),
        prediction_error_pct=round(100.0 * float(np.mean(errors)), 2) if errors else 0.0,
        oracle_error_pct=round(100.0 * float(np.mean(oracle)), 2) if oracle else 0.0,
        accuracy_pct=round(100.0 * float(np.mean(right)), 1) if right else 0.0,
        consumed=consumed,
        seconds=round(time.perf_counter() - started, 3),
        outcomes=outcomes,
    )


async def run_loop(
    nats_url: str,
    agent_id: str,
    hephaestus_id: str,
    athena_id: str,
    *,
    rounds: int,
    seed: int,
    infeasible_approach: str | None = "multi_level_caching",
    timeout: float = 10.0,
    on_round: Callable[[RoundStats], None] | None = None,
    keep_going: Callable[[], bool] | None = None,
    pause_s: float = 0.0,
) -> list[RoundStats]:
    """Run ``rounds`` closed-loop rounds against the agent ``agent_id`` on ``nats_url``.

    With ``keep_going``, a round after the first starts only while it returns True;
    ``pause_s`` seconds pass between rounds.

    ``on_round(stats)`` is called after each round (e.g. to print it). Every wait is bounded
    by ``timeout`` seconds; a missing result, plan or baseline raises ``SimulationError``.
    """
    nc = await nats.connect(nats_url, name="swarm-sim")
    try:
        js = nc.jetstream()
        swarm = _Swarm(
            backend=SimulatedBackend(seed),
            helios=Helios(nc, agent_id, timeout),
            hephaestus=Hephaestus(js, hephaestus_id, agent_id),
            athena=Athena(js, athena_id, agent_id),
            js=js,
            agent_id=agent_id,
            infeasible_approach=infeasible_approach,
            timeout=timeout,
        )
        await swarm.hephaestus.start()
        await swarm.athena.start()
        try:
            out: list[RoundStats] = []
            while len(out) < rounds and (keep_going is None or not out or keep_going()):
                if out and pause_s:
                    await asyncio.sleep(pause_s)
                stats = await _round(swarm, len(out) + 1)
                out.append(stats)
                if on_round is not None:
                    on_round(stats)
            return out
        finally:
            await swarm.hephaestus.stop()
            await swarm.athena.stop()
    finally:
        await nc.drain()


async def run_embedded(
    *, rounds: int, seed: int, state_dir: Path | None = None, **kwargs: Any
) -> list[RoundStats]:
    """The loop against an embedded nats-server and an in-process agent, both fresh."""
    from agent.config import Settings
    from agent.runtime.embedded import EmbeddedServer
    from agent.runtime.node import AgentNode

    with tempfile.TemporaryDirectory(prefix="swarm-sim-") as tmp:
        root = state_dir or Path(tmp)
        async with EmbeddedServer(root / "nats") as server:
            settings = Settings(
                nats_url=server.url,
                agent_id="sim-prometheus",
                hephaestus_id="sim-hephaestus",
                athena_id="sim-athena",
                state_dir=root / "state",
                nats_drain_timeout_s=5.0,
            )
            async with AgentNode(settings):
                return await run_loop(
                    server.url,
                    settings.agent_id,
                    settings.hephaestus_id,
                    settings.athena_id,
                    rounds=rounds,
                    seed=seed,
                    **kwargs,
                )


# --- presentation ----------------------------------------------------------------------

HEADER = (
    f"{'round':>5} {'recs':>4} {'verif':>5} {'infeas':>6} {'calib':>5} "
    f"{'pred.err %':>10} {'oracle %':>8} {'accuracy %':>10} {'acked':>5} {'s':>6}"
)


def format_row(s: RoundStats) -> str:
    return (
        f"{s.round:>5} {s.recommendations:>4} {s.verified:>5} {s.infeasible:>6} "
        f"{s.calibrated:>5} {s.prediction_error_pct:>10.1f} {s.oracle_error_pct:>8.1f} "
        f"{s.accuracy_pct:>10.1f} {'yes' if s.consumed else 'no':>5} {s.seconds:>6.2f}"
    )


def truth_table() -> list[dict[str, Any]]:
    """The TRUE effects next to the playbook's priors, for printing and reports."""
    rows = []
    for (key, metric), factor in TRUE_FACTORS.items():
        rows.append(
            {
                "approach": key,
                "metric": metric,
                "factor": factor,
                "true_pct": round(true_effect_pct(key, metric), 2),
                "prior_pct": PLAYBOOK[key].impact_expected,
            }
        )
    return rows


def format_truth() -> str:
    lines = [f"{'approach':<26} {'metric':<22} {'factor':>6} {'true %':>7} {'prior %':>7}"]
    for row in truth_table():
        lines.append(
            f"{row['approach']:<26} {row['metric']:<22} {row['factor']:>6.2f} "
            f"{row['true_pct']:>7.1f} {row['prior_pct']:>7.1f}"
        )
    lines.append(f"(any other pair: factor {DEFAULT_FACTOR}; roll-out jitter ±{EFFECT_JITTER:.0%})")
    return "\n".join(lines)


def approach_summary(stats: Sequence[RoundStats], last: int = 2) -> list[dict[str, Any]]:
    """Mean predicted vs actual improvement per (approach, metric) over the last rounds."""
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for s in stats[-last:]:
        for o in s.outcomes:
            groups.setdefault((o.approach, o.metric), []).append(o)
    return [
        {
            "approach": key,
            "metric": metric,
            "n": len(items),
            "predicted_pct": round(float(np.mean([o.predicted_pct for o in items])), 2),
            "actual_pct": round(float(np.mean([o.actual_pct for o in items])), 2),
            "true_pct": items[0].true_pct,
        }
        for (key, metric), items in sorted(groups.items())
    ]


def stats_json(stats: Sequence[RoundStats]) -> list[dict[str, Any]]:
    return [asdict(s) for s in stats]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nats-url", help="a running agent's server (default: embedded + agent)")
    parser.add_argument("--agent-id", default="prometheus-backend")
    parser.add_argument("--hephaestus-id", default="hephaestus-backend")
    parser.add_argument("--athena-id", default="athena-api")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="bound of every wait (s)")
    parser.add_argument("--json", help="also write the per-round stats to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print("TRUE effects of the simulated backend:\n" + format_truth() + "\n")
    print(HEADER)

    def show(s: RoundStats) -> None:
        print(format_row(s), flush=True)

    if args.nats_url:
        stats = asyncio.run(
            run_loop(
                args.nats_url,
                args.agent_id,
                args.hephaestus_id,
                args.athena_id,
                rounds=args.rounds,
                seed=args.seed,
                timeout=args.timeout,
                on_round=show,
            )
        )
    else:
        stats = asyncio.run(
            run_embedded(rounds=args.rounds, seed=args.seed, timeout=args.timeout, on_round=show)
        )
    print("\npredicted vs actual improvement (%), last two rounds:")
    for row in approach_summary(stats):
        print(
            f"  {row['approach']:<26} {row['metric']:<22} n={row['n']:<2} "
            f"predicted {row['predicted_pct']:>7.1f}  actual {row['actual_pct']:>7.1f}  "
            f"true {row['true_pct']:>7.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(stats_json(stats), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
