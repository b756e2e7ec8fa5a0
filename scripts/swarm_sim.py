"""A closed-loop swarm simulator: Helios, Hephaestus and Athena played against a live agent.

The simulator talks to the strategist only through the subjects of docs/protocol.md, with bare
nats-py (``protocols`` encodes and decodes): a real peer's view, none of the agent's code
paths. Its ground truth — backend states and what each approach really does to them —
comes from ``scripts/sim_truth.py``, which imports nothing from the agent: the world the
agent is measured against is not the agent's own model of it (the playbook's priors play
no part in it). Each round:

1. **The simulated fleet** moves on: each of its backends (``sim_truth.PROFILES``: a
   database-bound, a cache-bound and a load-bound one) drifts to a new hidden state, now
   and then shocked (a traffic surge, cache churn, a new unindexed query).
2. **Helios** sends, per backend, one rpc task per task type (``api_optimization`` with the
   API, its database, cache, CPU and pool use; ``chat_backend_optimization`` with the chat
   metrics), each with an hour of inline samples (one a minute) of that backend's state,
   and keeps the results.
3. **Hephaestus** (an ordered JetStream consumer on ``swarm.plans.<hephaestus>``) takes each
   plan item and rolls it out as its own canary on its backend: one draw of the approach's
   mechanism (``sim_truth.realise``), so a verification measures one approach, never two
   at once. It publishes ``implementation_update/v1`` (``implemented``, ``feasible``) to
   ``swarm.feedback.<agent>``; the first plan item of ``multi_level_caching`` is instead
   reported ``rejected`` / ``infeasible`` with a reason (once), so the agent's feedback
   path is exercised.
4. **Athena** (an ordered JetStream consumer on ``swarm.baselines.<athena>``) measures each
   applied item again (a fresh simulated hour at the new level, reduced to p95 for
   latencies, the mean otherwise) and publishes ``verification_result/v1`` with the
   baseline's value and the measured one to ``swarm.verifications.<agent>``.
5. The round waits until every JetStream consumer of the verification and feedback streams
   has acknowledged what was published (the server's consumer info; no agent internals), so
   the next round's tasks see what the agent learnt — or immediately when nobody consumes.

Per verified item a round records the agent's prediction (expected and its [low, high]),
the playbook prior's expected figure (what the agent predicts with no verification: the
prior-only predictor), the TRUE mean effect in the state the item met (``sim_truth``'s
oracle: the best any predictor can do) and the actual improvement measured. ``RoundStats``
reduces them to mean absolute errors in percentage points (agent, prior-only, oracle),
the coverage and mean width of the agent's intervals, and the older relative error
``|pred − actual| / max(|actual|, 1)`` and direction accuracy.

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

from agent.learning.model import EMPTY_POOL, gain
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

try:  # imported as scripts.swarm_sim (tests) or as swarm_sim (scripts/ on the path)
    from scripts import sim_truth
except ImportError:  # pragma: no cover - depends on how the script is started
    import sim_truth  # type: ignore[no-redef]

log = logging.getLogger("swarm_sim")

# --- the simulated backend ------------------------------------------------------------

SAMPLES_PER_WINDOW = 60
"""An hour at one sample a minute."""
INFEASIBLE_REASON = "no budget for a second cache tier this quarter"
APPROACH_KEYS: Mapping[str, str] = MappingProxyType({a.name: a.key for a in PLAYBOOK.values()})
"""Approach display name (as on the wire) → playbook key: vocabulary only, never a figure."""


def prediction_error(predicted: float, actual: float) -> float:
    """``|predicted − actual| / max(|actual|, 1)``: a relative error that stays finite near 0."""
    return abs(predicted - actual) / max(abs(actual), 1.0)


def moved_as_predicted(predicted: float, actual: float) -> bool:
    """Whether the metric moved the way the prediction said (better, worse or not at all)."""
    return bool(np.sign(predicted) == np.sign(actual))


def prior_expected_pct(approach_key: str, metric: str) -> float:
    """What the agent predicts with no verification: the playbook's expected figure."""
    return gain(EMPTY_POOL, approach_key, metric).expected


class SimulatedBackend:
    """The fleet of ``sim_truth`` (seeded), sampled the way Helios and Athena see it."""

    def __init__(self, seed: int, profiles: Sequence[sim_truth.Profile] = sim_truth.PROFILES):
        self.fleet = sim_truth.Fleet(seed, profiles)
        self.rng = np.random.default_rng(seed)
        self.names = list(self.fleet.names)

    def step(self) -> dict[str, sim_truth.BackendState]:
        """This round's hidden state of every backend."""
        return self.fleet.step()

    def window(
        self, levels: Mapping[str, float], task_type: str, end: float, service: str
    ) -> dict[str, Any]:
        """``params`` of a task: an hour of ``[epoch_ts, value]`` pairs per metric of the type,
        for the backend named ``service`` (its name only: the agent never sees its state)."""
        ts = end - 60.0 * np.arange(SAMPLES_PER_WINDOW)[::-1]
        metrics = {
            name: [
                [float(t), round(float(v), 4)]
                for t, v in zip(
                    ts,
                    sim_truth.samples(name, float(levels[name]), SAMPLES_PER_WINDOW, self.rng),
                    strict=True,
                )
            ]
            for name, m in sim_truth.METRICS.items()
            if m.task_type == task_type
        }
        return {"window": "1h", "metrics": metrics, "service": service}

    def apply(self, approach_key: str, state: sim_truth.BackendState) -> sim_truth.BackendState:
        """The backend's state once the approach is rolled out (one draw of its mechanism)."""
        return sim_truth.realise(approach_key, state, self.rng)

    def measure(self, metric: str, level: float) -> float:
        """A fresh hour of samples at ``level``, reduced to the metric's statistic."""
        values = sim_truth.samples(metric, level, SAMPLES_PER_WINDOW, self.rng)
        return round(sim_truth.statistic(metric, values), 4)


# --- what a round records -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One plan item, from prediction to measured outcome."""

    recommendation_id: str
    backend: str
    metric: str
    approach: str
    """Playbook key."""
    baseline_value: float
    predicted_pct: float
    predicted_low: float
    predicted_high: float
    prior_pct: float
    """The prior-only predictor: the playbook's expected figure."""
    actual_pct: float
    true_pct: float
    """The TRUE mean effect in the state this item met (the oracle)."""
    calibrated: bool
    verifications: int
    """How many verified outcomes the agent said back the prediction."""

    @property
    def covered(self) -> bool:
        """The actual outcome fell inside the agent's [low, high]."""
        return self.predicted_low <= self.actual_pct <= self.predicted_high


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 2) if values else float("nan")


@dataclass(frozen=True, slots=True)
class Scores:
    """Errors of three predictors and the agent's intervals over a set of outcomes."""

    n: int
    agent_mae_pp: float
    """Mean |agent's expected − actual|, in percentage points."""
    prior_mae_pp: float
    """The same for the prior-only predictor (the playbook's expected figure)."""
    oracle_mae_pp: float
    """The same for the true mean effect in context: the floor no predictor beats."""
    coverage_pct: float
    """Share of single outcomes inside the agent's [low, high], in %."""
    width_pp: float
    """Mean width of the agent's intervals, in percentage points."""


def score(outcomes: Sequence[Outcome]) -> Scores:
    """``Scores`` over ``outcomes`` (NaN figures when there are none)."""
    return Scores(
        n=len(outcomes),
        agent_mae_pp=_mean([abs(o.predicted_pct - o.actual_pct) for o in outcomes]),
        prior_mae_pp=_mean([abs(o.prior_pct - o.actual_pct) for o in outcomes]),
        oracle_mae_pp=_mean([abs(o.true_pct - o.actual_pct) for o in outcomes]),
        coverage_pct=round(100.0 * float(np.mean([o.covered for o in outcomes])), 1)
        if outcomes
        else float("nan"),
        width_pp=_mean([o.predicted_high - o.predicted_low for o in outcomes]),
    )


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
    mae_pp: float
    """Agent: mean |predicted − actual| over the verified items, in percentage points."""
    prior_mae_pp: float
    """Prior-only predictor (the playbook's expected figure), the same error."""
    oracle_mae_pp: float
    """The true mean effect in context, the same error: the noise floor."""
    coverage_pct: float
    """Share of verified items whose actual improvement fell inside the agent's [low, high]."""
    width_pp: float
    """Mean width of the agent's [low, high], in percentage points."""
    prediction_error_pct: float
    """Mean of ``|pred − actual| / max(|actual|, 1)`` over the verified items, in %."""
    oracle_error_pct: float
    """The same relative error for the oracle (the true mean effect in context)."""
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


def _levels(state: sim_truth.BackendState) -> dict[str, float]:
    return {k: float(v) for k, v in sim_truth.levels(state).items()}


async def _round(swarm: _Swarm, number: int) -> RoundStats:
    started = time.perf_counter()
    states = swarm.backend.step()
    levels = {name: _levels(s) for name, s in states.items()}
    end = time.time()
    sent = [(name, tt) for name in states for tt in sim_truth.TASK_TYPES]
    results = await asyncio.gather(
        *(
            swarm.helios.analyse(tt, swarm.backend.window(levels[name], tt, end, name))
            for name, tt in sent
        )
    )
    backend_of = {r.task_id: name for r, (name, _) in zip(results, sent, strict=True)}
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
    infeasible = 0
    sends = []
    for task_id, plan in plans.items():
        name = backend_of[task_id]
        state = states[name]
        baseline = baselines[plan.plan_id]
        predictions = {p.recommendation_id: p for p in baseline.predictions}
        for item in plan.items:
            key = APPROACH_KEYS.get(item.approach)
            prediction = predictions.get(item.recommendation_id)
            if key is None or prediction is None or item.target not in sim_truth.METRICS:
                raise SimulationError(f"plan item {item.recommendation_id} cannot be simulated")
            if key == swarm.infeasible_approach and not swarm.infeasible_sent:
                swarm.infeasible_sent = True
                infeasible += 1
                sends.append(
                    swarm.hephaestus.report(plan, item, feasible=False, reason=INFEASIBLE_REASON)
                )
                continue
            after = _levels(swarm.backend.apply(key, state))[item.target]
            sends.append(swarm.hephaestus.report(plan, item, feasible=True))
            measured = swarm.backend.measure(item.target, after)
            sends.append(swarm.athena.verify(baseline, prediction, measured))
            base_value = baseline.metrics[item.target].value
            actual = float(sim_truth.improvement_pct(item.target, base_value, measured))
            rec = recs.get(item.recommendation_id)
            outcomes.append(
                Outcome(
                    recommendation_id=item.recommendation_id,
                    backend=name,
                    metric=item.target,
                    approach=key,
                    baseline_value=base_value,
                    predicted_pct=prediction.expected_improvement_pct,
                    predicted_low=item.expected_improvement_pct.low,
                    predicted_high=item.expected_improvement_pct.high,
                    prior_pct=prior_expected_pct(key, item.target),
                    actual_pct=round(actual, 3),
                    true_pct=round(sim_truth.true_mean_pct(key, item.target, state), 3),
                    calibrated=bool(rec and rec.calibrated),
                    verifications=rec.verifications if rec else 0,
                )
            )
    await asyncio.gather(*sends)
    consumed = all(
        await asyncio.gather(
            wait_consumed(swarm.js, subjects.verifications(swarm.agent_id), swarm.timeout),
            wait_consumed(swarm.js, subjects.feedback(swarm.agent_id), swarm.timeout),
        )
    )
    errors = [prediction_error(o.predicted_pct, o.actual_pct) for o in outcomes]
    oracle = [prediction_error(o.true_pct, o.actual_pct) for o in outcomes]
    right = [moved_as_predicted(o.predicted_pct, o.actual_pct) for o in outcomes]
    scores = score(outcomes)
    return RoundStats(
        round=number,
        tasks=len(results),
        recommendations=len(recs),
        plans=len(plans),
        baselines=len(baselines),
        verified=len(outcomes),
        infeasible=infeasible,
        calibrated=sum(r.calibrated for r in recs.values()),
        mae_pp=scores.agent_mae_pp,
        prior_mae_pp=scores.prior_mae_pp,
        oracle_mae_pp=scores.oracle_mae_pp,
        coverage_pct=scores.coverage_pct,
        width_pp=scores.width_pp,
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
    f"{'agent pp':>8} {'prior pp':>8} {'oracle pp':>9} {'cover %':>7} {'width':>6} "
    f"{'acked':>5} {'s':>6}"
)


def format_row(s: RoundStats) -> str:
    return (
        f"{s.round:>5} {s.recommendations:>4} {s.verified:>5} {s.infeasible:>6} "
        f"{s.calibrated:>5} {s.mae_pp:>8.1f} {s.prior_mae_pp:>8.1f} {s.oracle_mae_pp:>9.1f} "
        f"{s.coverage_pct:>7.1f} {s.width_pp:>6.1f} {'yes' if s.consumed else 'no':>5} "
        f"{s.seconds:>6.2f}"
    )


def truth_table() -> list[dict[str, Any]]:
    """The TRUE mean effects (%) of ``sim_truth``, next to the playbook's priors."""
    return [
        {**row, "prior_pct": prior_expected_pct(str(row["approach"]), str(row["metric"]))}
        for row in sim_truth.truth_table()
    ]


def format_truth() -> str:
    rows = truth_table()
    states = [k for k in rows[0] if k not in ("approach", "metric", "prior_pct")]
    lines = [
        f"{'approach':<26} {'metric':<21} " + " ".join(f"{s:>8}" for s in states) + f" {'prior':>6}"
    ]
    for row in rows:
        lines.append(
            f"{row['approach']:<26} {row['metric']:<21} "
            + " ".join(f"{row[s]:>8.1f}" for s in states)
            + f" {row['prior_pct']:>6.1f}"
        )
    lines.append(
        "(true mean effect, %, in two reference states and at each backend profile's mean; "
        "every round's states drift)"
    )
    return "\n".join(lines)


def approach_summary(stats: Sequence[RoundStats], last: int = 2) -> list[dict[str, Any]]:
    """Mean predicted vs actual vs true improvement per (approach, metric), last rounds."""
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for s in stats[-last:]:
        for o in s.outcomes:
            groups.setdefault((o.approach, o.metric), []).append(o)
    return [
        {
            "approach": key,
            "metric": metric,
            "n": len(items),
            "predicted_pct": _mean([o.predicted_pct for o in items]),
            "actual_pct": _mean([o.actual_pct for o in items]),
            "true_pct": _mean([o.true_pct for o in items]),
            "true_min_pct": round(min(o.true_pct for o in items), 2),
            "true_max_pct": round(max(o.true_pct for o in items), 2),
            "prior_pct": items[0].prior_pct,
            "agent_mae_pp": _mean([abs(o.predicted_pct - o.actual_pct) for o in items]),
            "oracle_mae_pp": _mean([abs(o.true_pct - o.actual_pct) for o in items]),
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
    print("\npredicted vs actual vs true improvement (%), last two rounds:")
    for row in approach_summary(stats):
        print(
            f"  {row['approach']:<26} {row['metric']:<21} n={row['n']:<2} "
            f"predicted {row['predicted_pct']:>6.1f}  actual {row['actual_pct']:>6.1f}  "
            f"true {row['true_pct']:>6.1f} ({row['true_min_pct']:.1f}…{row['true_max_pct']:.1f})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(stats_json(stats), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
