"""Every benchmark in one command: one table of measured vs baseline vs goal, one JSON file.

Goals are measured and printed, never asserted: the exit status is 1 only when a benchmark
could not run at all. The agent is measured against bare nats-py doing the least the
same job needs, in the same run, on one embedded nats-server (JetStream on, a free port).
Every agent is a ``python -m agent run`` process of its own (log level WARNING, monitor and
KPI stream off, as in ``bench_reliability``) and every baseline a process of its own
(``_bench_common.py``), so each side gets a core and neither runs while the other is timed.

- ``rpc``: a cheap ``api_optimization`` task (inline metrics, off target: the report
  recommends, so predictions, plan and baseline go out too) to the micro service endpoint
  vs an echo responder that replies as many bytes as the agent does: p50/p95 of
  sequential round trips, and requests/s with 32 in flight. Goals: throughput ≥ 0.5 ×
  echo, p50 ≤ 2 × echo. And against what the agent cannot do without — the strategy
  alone, in this process, on the same payloads, under the agent's garbage-collector
  settings (``agent.runtime.gc_tuning``): throughput ≥ 0.8 × the strategy's, p50 ≤ the
  strategy's p50 + 1 ms. The machine's speed drifts by tens of % within minutes, so the
  throughput phase is cut in ``ROUNDS`` turns, each run between two runs of the strategy
  alone (the agent idles meanwhile) and judged against them; the goal is met on the
  median of those ratios. The sequential round trips likewise: ``ROUNDS`` turns, each
  between two runs of the strategy alone, and the p50 difference is the median of the
  turns'. Beside it, the floor of that p50 difference, bare: an echo's p50, plus a KV
  create's (the claim every answer is stored by before its reply), both from this
  process, plus the p50 of decoding the task, making its outputs and encoding its result
  (the agent's own code, in this process): what any answer stored before its reply costs
  besides its strategy.
- ``durable``: the same task published to ``swarm.tasks.…``, done when its result lands on
  ``swarm.results.…``, vs a bare JetStream publish + pull (batches of 64) + ack of as many
  messages of the same size. Goals: ≥ 0.5 × the bare rate, ≥ 0.8 × the rpc rate.

What an answer costs on the bus, for both: **acknowledged writes per answer** are counted
by the server — the growth of the last sequence of every stream and KV bucket of the
agent (its TASKS stream, which the bench writes, left out) over the measured phase, per
task; the plan count the agent folds into its learning totals off the answer path is
shown apart. **Acknowledged round trips per answer** (writes awaited one after the other;
goal ≤ 3) are the agent's own count (``$SRV.STATS`` ``writes``), which no outside view
can see.
- ``replicas``: CPU-bound ``strategic_backend_planning`` tasks (20 metrics × a day at
  5 min: tens of ms of analysis each) over the durable path, 2 agent processes vs 1 (both
  share the work-queue consumer). Goal: ≥ 1.6 × on this 2-core machine.

Then, each as a subprocess writing its own ``--json`` (read back, output kept verbatim in
ours): ``analysis``, ``ingest``, ``learning`` (scripts/bench_*.py) and, with
``--with-reliability`` (minutes), ``reliability``. ``--quick`` shrinks every count for a
smoke run of under a minute; ``--only NAME`` (repeatable) runs just those.

Each NATS row's note (and the JSON) carries the CPU time per task of the agent processes,
the nats-server and this process, read from ``/proc``: where a task's cost goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import nats
import numpy as np
from _bench_common import children_of, cpu_seconds, host_busy_seconds, start_peer
from bench_reliability import AgentProcess, agent_stats, wait_serving
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig

from agent.analysis.catalog import CATALOG
from agent.config import Settings
from agent.learning.state import LearningState
from agent.runtime.embedded import EmbeddedServer, stop_process
from agent.runtime.gc_tuning import tune_gc
from agent.runtime.handler import answer_outputs, configured_context
from agent.strategies import ROUTES, TaskContext
from protocols import TaskParams, TaskRequest, TaskResult, TaskType, decode, encode, subjects

SCRIPTS = Path(__file__).resolve().parent
NATS_BENCHES = ("rpc", "durable", "replicas")
SCRIPT_BENCHES = ("analysis", "ingest", "learning", "reliability")
BENCHES = NATS_BENCHES + SCRIPT_BENCHES
PUBLISH_IN_FLIGHT = 128
"""Durable publishes awaiting their ack at once (as bench_reliability publishes)."""
BASELINE_FETCH = 64
"""Batch of the bare pull consumer: the agent asks for at most 64 too (in fact for its free
slots: ``max_in_flight``, 16 by default)."""
SCRIPT_TIMEOUT_S = 1800.0
"""Bound of a benchmark script's run (each bounds its own waits; reliability takes minutes)."""
BASELINE_REPEAT = 3
"""Runs of each bare baseline (the median counts): they are over in a fraction of a second."""
ROUNDS = 4
"""Turns of the rpc sequential and throughput phases, each between two runs of the strategy
alone and judged against them."""


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each benchmark does: the full run fits ~5 minutes, ``--quick`` under one."""

    warmup: int
    rpc_sequential: int
    rpc_requests: int
    rpc_in_flight: int
    durable_tasks: int
    replica_tasks: int
    planning_points: int
    """Samples per metric of a planning task (20 metrics, 5 min apart)."""
    script_args: dict[str, tuple[str, ...]]
    timeout_s: float
    """Bound of every wait of the NATS benchmarks."""


FULL = Sizes(
    warmup=20,
    rpc_sequential=300,
    rpc_requests=2000,
    rpc_in_flight=32,
    durable_tasks=1000,
    replica_tasks=240,
    planning_points=288,
    script_args={"analysis": (), "ingest": (), "learning": (), "reliability": ()},
    timeout_s=300.0,
)
QUICK = Sizes(
    warmup=5,
    rpc_sequential=50,
    rpc_requests=300,
    rpc_in_flight=32,
    durable_tasks=200,
    replica_tasks=40,
    planning_points=288,
    script_args={
        "analysis": ("--repeat", "1", "--endpoints", "40"),
        "ingest": ("--samples", "20000", "--repeat", "1", "--shapes", "labelled"),
        "learning": (),
        "reliability": ("--tasks", "200"),
    },
    timeout_s=120.0,
)


# --- the table -------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table; ``ratio`` is measured ÷ baseline unless a bench says otherwise."""

    name: str
    measured: float | None
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""


def ratio_row(
    name: str,
    measured: float,
    baseline: float,
    unit: str,
    *,
    baseline_what: str,
    at_least: float | None = None,
    at_most: float | None = None,
    note: str = "",
) -> Row:
    """A row judged on measured ÷ baseline against ``at_least`` or ``at_most``."""
    ratio = measured / baseline if baseline else None
    goal, met = "", None
    if at_least is not None:
        goal, met = f"≥ {at_least:g}×", ratio is not None and ratio >= at_least
    elif at_most is not None:
        goal, met = f"≤ {at_most:g}×", ratio is not None and ratio <= at_most
    return Row(name, measured, unit, baseline, baseline_what, ratio, goal, met, note)


def error_row(name: str, why: str) -> Row:
    return Row(name, None, "", note=f"ERROR: {why}")


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    size = abs(value)
    text = f"{value:,.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.3g}"
    return f"{text}×" if unit == "×" else f"{text} {unit}".rstrip()


def table(rows: Sequence[Row]) -> str:
    head = ("benchmark", "measured", "baseline", "ratio", "goal", "met?")
    cells = [
        (
            r.name,
            fmt(r.measured, r.unit),
            fmt(r.baseline, r.unit)
            + (f" ({r.baseline_what})" if r.baseline_what and r.baseline is not None else ""),
            fmt(r.ratio, "×"),
            r.goal or "-",
            "-" if r.met is None else "yes" if r.met else "NO",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row, c in zip(rows, cells, strict=True):
        lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)).rstrip())
        if row.note:
            lines.append(f"    {row.note}")
    return "\n".join(lines)


@dataclass
class Outcome:
    """What one benchmark produced: its rows and everything behind them (for the JSON)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


# --- payloads ----------------------------------------------------------------------------


def _request(task_id: str, task_type: TaskType, params: TaskParams) -> bytes:
    return encode(
        TaskRequest(
            task_id=task_id,
            task_type=task_type.value,
            issued_at=datetime.now(UTC),
            issuer="bench",
            params=params,
        )
    )


CHEAP_PARAMS = TaskParams(
    window="1h",
    metrics={  # a small, off-target API: the report recommends, so plan and baseline go out
        "api_response_time": [(time.time() - 300 * (11 - i), 100.0 + 2 * i) for i in range(12)],
        "api_availability": 99.5,
        "error_rate": 2.0,
    },
)


def cheap_tasks(prefix: str, n: int) -> list[bytes]:
    """``n`` cheap ``api_optimization`` tasks, each its own id (a repeated id is a duplicate)."""
    return [
        _request(f"{prefix}-{i:06d}", TaskType.API_OPTIMIZATION, CHEAP_PARAMS) for i in range(n)
    ]


def planning_params(points: int, seed: int = 7) -> TaskParams:
    """Every catalog metric, ``points`` samples 5 min apart ending now, off target and rising."""
    rng = np.random.default_rng(seed)
    ts = time.time() - 300.0 * np.arange(points)[::-1]
    metrics: dict[str, Any] = {}
    for spec in CATALOG.values():
        # a throughput has no catalog target: a typical level stands in for one
        level = spec.target if spec.target is not None else 300.0
        base = level * (1.2 if spec.direction == "lower_is_better" else 0.98)
        values = base * (1 + 0.05 * rng.standard_normal(points)) + np.linspace(
            0, 0.1 * base, points
        )
        if spec.unit == "%":
            values = np.clip(values, 0, 100)
        metrics[spec.name] = [
            (float(t), round(float(v), 4)) for t, v in zip(ts, values, strict=True)
        ]
    return TaskParams(window="1d", metrics=metrics)


def planning_tasks(prefix: str, n: int, params: TaskParams) -> list[bytes]:
    kind = TaskType.STRATEGIC_BACKEND_PLANNING
    return [_request(f"{prefix}-{i:06d}", kind, params) for i in range(n)]


class _Error(msgspec.Struct):
    code: str = "?"


class _Result(msgspec.Struct):
    """The few fields of a ``task_result/v1`` the bench looks at."""

    status: str = "?"
    duration_ms: float = 0.0
    error: _Error | None = None


_RESULT = msgspec.json.Decoder(_Result)


def result_summary(replies: Iterable[bytes]) -> dict[str, Any]:
    """Statuses (with error codes), the agent's own time per task, and the reply size."""
    statuses: Counter[str] = Counter()
    durations, sizes = [], []
    for data in replies:
        sizes.append(len(data))
        try:
            r = _RESULT.decode(data)
        except msgspec.DecodeError:
            statuses["undecodable"] += 1
            continue
        statuses[r.status + (f"/{r.error.code}" if r.error else "")] += 1
        durations.append(r.duration_ms)
    return {
        "statuses": dict(statuses),
        "agent_duration_ms_p50": round(statistics.median(durations), 2) if durations else None,
        "reply_bytes_median": int(statistics.median(sizes)) if sizes else 0,
    }


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# --- processes ---------------------------------------------------------------------------


@dataclass
class Meter:
    """CPU time of the processes in play over a phase: who pays for a task, in ms per task,
    and how many cores each kept busy (``host``: the whole machine, others' work included)."""

    pids: dict[str, list[int]]

    def now(self) -> dict[str, float]:
        out = {"bench": time.process_time()}
        for role, pids in self.pids.items():
            used = [cpu_seconds(pid) for pid in pids]
            if all(u is not None for u in used):
                out[role] = sum(u for u in used if u is not None)
            workers = [cpu_seconds(c) for pid in pids for c in children_of(pid)]
            if workers:  # the agents' strategy worker processes: their CPU is the agents'
                out[f"{role}' strategy workers"] = sum(u for u in workers if u is not None)
        host = host_busy_seconds()
        if host is not None:
            out["host"] = host
        return out

    @contextlib.contextmanager
    def per_task(self, n: int, into: dict[str, Any]) -> Iterator[None]:
        """Put ``cpu_ms_per_task`` and ``cores_busy`` (by role) of the block into ``into``."""
        spent = Spent()
        with self.adding(spent):
            yield
        spent.put(n, into)

    @contextlib.contextmanager
    def adding(self, spent: Spent) -> Iterator[None]:
        """Add the block's CPU seconds by role, and its wall time, to ``spent``."""
        before, t0 = self.now(), time.perf_counter()
        yield
        after = self.now()
        spent.wall_s += time.perf_counter() - t0
        for role in before.keys() & after.keys():
            spent.used[role] = spent.used.get(role, 0.0) + after[role] - before[role]


@dataclass
class Spent:
    """CPU seconds by role and wall seconds, summed over the blocks a ``Meter`` measured."""

    used: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def put(self, n: int, into: dict[str, Any]) -> None:
        """``cpu_ms_per_task`` over ``n`` tasks and ``cores_busy``, by role, into ``into``."""
        into["cpu_ms_per_task"] = {
            r: round(x * 1000 / n, 3) for r, x in self.used.items() if r != "host"
        }
        into["cores_busy"] = {r: round(x / self.wall_s, 2) for r, x in self.used.items()}


@dataclass
class Bench:
    """The run's shared pieces: the server, a bare connection, where children keep their files."""

    url: str
    server_pid: int
    nc: Client
    js: JetStreamContext
    workdir: Path
    run: str
    sizes: Sizes
    agent_settings: dict[str, str] = field(default_factory=dict)
    """Settings every agent started gets (``--agent-setting``)."""
    shared: dict[str, float] = field(default_factory=dict)
    """Figures one benchmark leaves for a later one (the rpc rate, for durable's ratio)."""

    @contextlib.asynccontextmanager
    async def agents(
        self, name: str, count: int, details: dict[str, Any]
    ) -> AsyncIterator[tuple[str, Meter]]:
        """``count`` agent processes on a fresh agent id (its own streams, consumer, buckets);
        yields the id and a meter of agents + server. Their counters (``$SRV.STATS``) and the
        warnings of their logs go to ``details``."""
        agent_id = f"bench-{self.run}-{name}"
        procs = [
            AgentProcess(
                self.url,
                agent_id,
                self.workdir / agent_id,
                name=f"agent{i + 1}",
                settings=self.agent_settings,
            )
            for i in range(count)
        ]
        try:
            for p in procs:
                await p.start()
            seen: set[str] = set()
            for p in procs:  # one instance id per process, whichever answers first
                seen.add(await wait_serving(self.nc, p, 60.0, not_ids=frozenset(seen)))
            pids = [p.proc.pid for p in procs if p.proc is not None]
            yield agent_id, Meter({"agents": pids, "nats-server": [self.server_pid]})
            details["agent_stats"] = await agent_stats(self.nc, agent_id)
        finally:
            await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)
            details.setdefault("agent_log_problems", []).extend(
                problem for p in procs for problem in p.problems()
            )

    @contextlib.asynccontextmanager
    async def peer(self, *args: str) -> AsyncIterator[Meter]:
        """A bare nats-py baseline process (``_bench_common.py``), stopped on the way out;
        yields a meter of it + server."""
        proc = await start_peer(*args)
        try:
            yield Meter({"peer": [proc.pid], "nats-server": [self.server_pid]})
        finally:
            await stop_process(proc)


@dataclass
class Trips:
    seconds: float
    latencies_ms: list[float]
    replies: list[bytes]

    @property
    def rate(self) -> float:
        return len(self.replies) / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.replies),
            "seconds": round(self.seconds, 3),
            "per_s": round(self.rate, 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 3),
            "p95_ms": round(percentile(self.latencies_ms, 95), 3),
            "p99_ms": round(percentile(self.latencies_ms, 99), 3),
        }


async def round_trips(
    nc: Client, subject: str, bodies: Sequence[bytes], in_flight: int, timeout: float
) -> Trips:
    """Send ``bodies`` as requests, ``in_flight`` at a time (a closed loop); time each one."""
    queue = iter(bodies)
    latencies: list[float] = []
    replies: list[bytes] = []

    async def worker() -> None:
        for body in queue:  # the workers share the iterator: each body is sent once
            t0 = time.perf_counter()
            msg = await nc.request(subject, body, timeout=timeout)
            latencies.append((time.perf_counter() - t0) * 1000)
            replies.append(msg.data)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return Trips(time.perf_counter() - started, latencies, replies)


def joined(runs: Sequence[Trips]) -> Trips:
    """Several runs as one: their seconds, latencies and replies together."""
    return Trips(
        sum(r.seconds for r in runs),
        [x for r in runs for x in r.latencies_ms],
        [x for r in runs for x in r.replies],
    )


@dataclass
class Rounds:
    """The agent's turns, and the strategy alone before the first and after each."""

    turns: list[Trips]
    alone: list[Trips]

    def pairs(self) -> Iterator[tuple[Trips, Trips]]:
        """Each turn with the strategy alone right before and right after it, as one run."""
        for i, turn in enumerate(self.turns):
            yield turn, joined(self.alone[i : i + 2])


async def in_rounds(
    bodies: Sequence[bytes], agent_turn: Callable[[Sequence[bytes]], Awaitable[Trips]]
) -> Rounds:
    """``bodies`` in ``ROUNDS`` turns of the agent's, the strategy alone on the same bodies
    before the first and after each (the agent idles meanwhile): this machine's speed drifts
    by tens of % within minutes, so each turn is judged against the runs around it."""
    chunks = [bodies[i::ROUNDS] for i in range(ROUNDS)]
    rounds = Rounds([], [strategy_alone(chunks[0])])
    for chunk in chunks:
        rounds.turns.append(await agent_turn(chunk))
        rounds.alone.append(strategy_alone(chunk))
    return rounds


def median_run(runs: Sequence[Trips]) -> Trips:
    """The run of median throughput: a baseline this fast is over in a blink, so it is repeated."""
    return sorted(runs, key=lambda t: t.rate)[len(runs) // 2]


async def publish_all(js: JetStreamContext, subject: str, bodies: Sequence[bytes]) -> None:
    """Durable publishes, each acknowledged by its stream, ``PUBLISH_IN_FLIGHT`` at a time."""
    gate = asyncio.Semaphore(PUBLISH_IN_FLIGHT)

    async def one(body: bytes) -> None:
        async with gate:
            await js.publish(subject, body, timeout=30)

    await asyncio.gather(*(one(b) for b in bodies))


async def durable_pass(
    b: Bench,
    subject: str,
    bodies: Sequence[bytes],
    done_subject: str,
    expected: set[str],
    key: Callable[[Msg], str],
) -> tuple[float, list[bytes]]:
    """Publish ``bodies``; seconds from the first publish until every ``expected`` key was seen
    on ``done_subject``, and the messages that said so."""
    seen: dict[str, bytes] = {}
    done = asyncio.Event()

    async def on_done(msg: Msg) -> None:
        k = key(msg)
        if k in expected and k not in seen:
            seen[k] = msg.data
            if len(seen) == len(expected):
                done.set()

    sub = await b.nc.subscribe(done_subject, cb=on_done, pending_msgs_limit=1_000_000)
    await b.nc.flush()
    try:
        started = time.perf_counter()
        await publish_all(b.js, subject, bodies)
        try:
            await asyncio.wait_for(done.wait(), b.sizes.timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"{len(seen)}/{len(expected)} done on {done_subject} in {b.sizes.timeout_s:.0f}s"
            ) from None
        return time.perf_counter() - started, list(seen.values())
    finally:
        await sub.unsubscribe()


def _result_key(msg: Msg) -> str:
    return (msg.headers or {}).get("Nats-Msg-Id", "")


def _ids(prefix: str, n: int) -> set[str]:
    return {subjects.result_msg_id(f"{prefix}-{i:06d}") for i in range(n)}


# --- what the agent cannot do without, and what an answer costs ------------------------------


async def strategy_cpu_s(b: Bench, agent_id: str) -> float:
    """CPU seconds the agents' strategies took in their own processes so far (``$SRV.STATS``
    ``strategy``)."""
    stats = await agent_stats(b.nc, agent_id)
    return sum(float(x.get("strategy", {}).get("cpu_s", 0.0)) for x in stats)


async def claim_round_trips(b: Bench, payload_size: int, n: int) -> list[float]:
    """ms of ``n`` KV creates one after the other from this process, each ``payload_size``
    bytes, on a scratch bucket: the acknowledged write an answer waits for before its reply
    (the claim), bare."""
    bucket = f"BENCH_{b.run.upper()}_CLAIMS"
    kv = await b.js.create_key_value(KeyValueConfig(bucket=bucket, history=1))
    payload = b"x" * payload_size
    latencies: list[float] = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            await kv.create(f"t{i}", payload)
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        await b.js.delete_key_value(bucket)
    return latencies


def _context(settings: Settings, request: TaskRequest) -> TaskContext:
    """The context the agent gives a task's strategy, with an empty learning state."""
    return configured_context(
        settings,
        task_id=request.task_id,
        task_type=TaskType(request.task_type),
        now=datetime.now(UTC),
        params=request.params,
        learning=LearningState(),
    )


def strategy_alone(bodies: Sequence[bytes]) -> Trips:
    """The strategy in this process on ``bodies``, one after the other (the agent computes
    one at a time too: ``max_strategy_threads`` 1): decoding the task and building its
    context untimed, the strategy call timed."""
    settings = Settings()
    latencies: list[float] = []
    for body in bodies:
        ctx = _context(settings, decode(TaskRequest, body))
        t0 = time.perf_counter()
        ROUTES[ctx.task_type](ctx)
        latencies.append((time.perf_counter() - t0) * 1000)
    return Trips(sum(latencies) / 1000, latencies, [b""] * len(latencies))


def answer_making(bodies: Sequence[bytes]) -> list[float]:
    """ms, in this process, of what any answer costs besides its strategy and the bus:
    decoding the task, then (the strategy untimed) making its outputs and encoding its
    result — the agent's own code for both."""
    settings = Settings()
    latencies: list[float] = []
    for body in bodies:
        t0 = time.perf_counter()
        request = decode(TaskRequest, body)
        spent = time.perf_counter() - t0
        ctx = _context(settings, request)
        report = ROUTES[ctx.task_type](ctx)
        t0 = time.perf_counter()
        answer_outputs(report, settings, request.task_id, request.params.service)
        now = datetime.now(UTC)
        result = TaskResult(
            task_id=request.task_id,
            task_type=request.task_type,
            agent_id=settings.agent_id,
            status="completed",
            started_at=now,
            completed_at=now,
            duration_ms=0.0,
            report=report,
        )
        encode(result)
        latencies.append((spent + time.perf_counter() - t0) * 1000)
    return latencies


async def stored_seqs(js: JetStreamContext, agent_id: str) -> dict[str, int]:
    """Last sequence of every stream and KV bucket of ``agent_id`` but its TASKS stream."""
    token = Settings(agent_id=agent_id).streams_token
    out: dict[str, int] = {}
    for info in await js.streams_info():
        name = info.config.name or ""
        if name.startswith((f"{token}_", f"KV_{token}_")) and name != f"{token}_TASKS":
            out[name] = int(info.state.last_seq or 0)
    return out


async def settled_seqs(
    js: JetStreamContext, agent_id: str, timeout: float = 10.0
) -> dict[str, int]:
    """``stored_seqs`` once two reads 0.3 s apart agree (the off-path plan count done)."""
    last = await stored_seqs(js, agent_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await asyncio.sleep(0.3)
        now = await stored_seqs(js, agent_id)
        if now == last:
            break
        last = now
    return last


@dataclass
class WriteCount:
    """Acknowledged writes of a phase: the server's count and the agent's."""

    agent_id: str
    before: dict[str, int] = field(default_factory=dict)
    stats_before: dict[str, float] = field(default_factory=dict)

    @classmethod
    async def start(cls, b: Bench, agent_id: str) -> WriteCount:
        count = cls(agent_id)
        count.before = await settled_seqs(b.js, agent_id)
        count.stats_before = await _writes(b, agent_id)
        return count

    async def stop(self, b: Bench, n: int) -> dict[str, Any]:
        after = await settled_seqs(b.js, self.agent_id)
        stats = await _writes(b, self.agent_id)
        grown = {k: v - self.before.get(k, 0) for k, v in after.items()}
        grown = {k: v for k, v in grown.items() if v}
        token = Settings(agent_id=self.agent_id).streams_token
        off_path = grown.get(f"KV_{token}_LEARNING", 0)  # the plan count (plan_counter)

        def grew(key: str) -> float:
            return stats.get(key, 0) - self.stats_before.get(key, 0)

        answers, relayed = grew("answers"), grew("relayed")
        if not (answers and relayed):
            per: dict[str, float | None] = {"writes": None, "trips": None}
        else:  # the claim (answer path), then the relay's writes and waves per claim
            per = {
                "writes": 1 + grew("relay_writes") / relayed,
                "trips": 1 + grew("relay_waves") / relayed,
            }
        return {
            "stored_by_stream": grown,
            "writes_per_answer": round((sum(grown.values()) - off_path) / n, 3),
            "off_path_writes_per_answer": round(off_path / n, 3),
            "agent_writes_per_answer": None if per["writes"] is None else round(per["writes"], 3),
            "round_trips_per_answer": None if per["trips"] is None else round(per["trips"], 3),
        }


async def _writes(b: Bench, agent_id: str) -> dict[str, float]:
    """The ``writes`` counters of the agent's ``$SRV.STATS``, summed over its instances."""
    out: Counter[str] = Counter()
    for stats in await agent_stats(b.nc, agent_id):
        for k, v in (stats.get("writes") or {}).items():
            if k in ("answers", "relayed", "relay_writes", "relay_waves"):
                out[k] += v
    return dict(out)


def cost_rows(label: str, writes: dict[str, Any]) -> list[Row]:
    trips = writes["round_trips_per_answer"]
    return [
        Row(
            f"{label}: acknowledged writes per answer",
            writes["writes_per_answer"],
            "",
            note=f"counted by the server (streams' last sequences): {writes['stored_by_stream']}; "
            f"of which off the answer path {writes['off_path_writes_per_answer']}/answer "
            f"(learning totals); the agent counts {writes['agent_writes_per_answer']}",
        ),
        Row(
            f"{label}: acknowledged round trips per answer",
            trips,
            "",
            goal="≤ 3",
            met=trips is not None and trips <= 3,
            note="writes awaited one after the other (the agent's $SRV.STATS count): the "
            "claim before the reply, then the relay's waves",
        ),
    ]


# --- the NATS benchmarks -------------------------------------------------------------------


async def bench_rpc(b: Bench, out: Outcome) -> None:
    """Round trips and throughput of the rpc endpoint vs an echo of the same reply size."""
    s, run, t = b.sizes, b.run, b.sizes.timeout_s
    phases = {
        "warmup": cheap_tasks(f"{run}-rw", s.warmup),
        "sequential": cheap_tasks(f"{run}-rs", s.rpc_sequential),
        "throughput": cheap_tasks(f"{run}-rt", s.rpc_requests),
    }
    strategy_alone(phases["warmup"])
    tune_gc()  # the agent's own garbage-collector settings (``agent.runtime.gc_tuning``)
    agent: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    async with b.agents("rpc", 1, agent) as (agent_id, meter):
        subject = subjects.rpc(agent_id, TaskType.API_OPTIMIZATION)
        warm = await round_trips(b.nc, subject, phases["warmup"], 1, t)

        async def one_by_one(bodies: Sequence[bytes]) -> Trips:
            return await round_trips(b.nc, subject, bodies, 1, t)

        seq_rounds = await in_rounds(phases["sequential"], one_by_one)
        count = await WriteCount.start(b, agent_id)
        computed = await strategy_cpu_s(b, agent_id)
        spent = Spent()

        async def in_flight(bodies: Sequence[bytes]) -> Trips:
            with meter.adding(spent):
                return await round_trips(b.nc, subject, bodies, s.rpc_in_flight, t)

        thr_rounds = await in_rounds(phases["throughput"], in_flight)
        spent.put(s.rpc_requests, cpu)
        computed = await strategy_cpu_s(b, agent_id) - computed
        writes = await count.stop(b, s.rpc_requests)
    thr, strat, seq = joined(thr_rounds.turns), joined(thr_rounds.alone), joined(seq_rounds.turns)
    overs = [
        percentile(turn.latencies_ms, 50) - percentile(around.latencies_ms, 50)
        for turn, around in seq_rounds.pairs()
    ]
    round_ratios = [turn.rate / around.rate for turn, around in thr_rounds.pairs()]
    b.shared["rpc_per_s"] = thr.rate
    reply_size = result_summary(warm.replies)["reply_bytes_median"]
    agent |= {
        "sequential": seq.summary() | result_summary(seq.replies),
        "throughput": thr.summary() | result_summary(thr.replies) | cpu,
    }
    echo_subject = f"bench.{run}.echo"
    echo_cpu: dict[str, Any] = {}
    async with b.peer("echo", b.url, echo_subject, str(reply_size)) as meter:
        await round_trips(b.nc, echo_subject, phases["warmup"], 1, t)
        eseq = await round_trips(b.nc, echo_subject, phases["sequential"], 1, t)
        with meter.per_task(s.rpc_requests * BASELINE_REPEAT, echo_cpu):
            ethr_runs = [
                await round_trips(b.nc, echo_subject, phases["throughput"], s.rpc_in_flight, t)
                for _ in range(BASELINE_REPEAT)
            ]
    ethr = median_run(ethr_runs)
    claims = await claim_round_trips(b, reply_size, s.rpc_sequential)
    making = answer_making(phases["sequential"])
    floor_parts = {
        "echo": percentile(eseq.latencies_ms, 50),
        "claim": percentile(claims, 50),
        "making": percentile(making, 50),
    }
    floor = sum(floor_parts.values())
    out.details = {
        "request_bytes": len(phases["sequential"][0]),
        "reply_bytes": reply_size,
        "in_flight": s.rpc_in_flight,
        "agent": agent,
        "writes": writes,
        "strategy_alone_sequential_rounds": joined(seq_rounds.alone).summary()
        | {"p50_over_by_round_ms": [round(x, 3) for x in overs]},
        "strategy_alone": strat.summary()
        | {
            "what": "the strategy call, in the bench process, before each of the agent's "
            "throughput rounds and after the last",
            "runs_per_s": [round(r.rate, 1) for r in thr_rounds.alone],
        },
        "throughput_rounds": {
            "agent_per_s": [round(r.rate, 1) for r in thr_rounds.turns],
            "agent_vs_strategy_alone": [round(r, 3) for r in round_ratios],
        },
        "claim_alone_p50_ms": round(percentile(claims, 50), 3),
        "answer_making_p50_ms": round(floor_parts["making"], 3),
        "p50_floor_over_strategy_ms": round(floor, 3),
        "echo": {
            "sequential": eseq.summary(),
            "throughput": ethr.summary()
            | echo_cpu
            | {"runs_per_s": [round(r.rate, 1) for r in ethr_runs]},
        },
    }
    bad = {k: v for k, v in agent["throughput"]["statuses"].items() if k != "completed"}
    agent_cpu_ms = sum(
        v for k, v in cpu.get("cpu_ms_per_task", {}).items() if k.startswith("agents")
    )
    out.rows += [
        ratio_row(
            f"rpc throughput, {s.rpc_in_flight} in flight",
            thr.rate,
            ethr.rate,
            "req/s",
            baseline_what="echo",
            at_least=0.5,
            note=f"not completed: {bad}" if bad else _cpu_note(cpu),
        ),
        ratio_row(
            "rpc p50 latency, sequential",
            percentile(seq.latencies_ms, 50),
            percentile(eseq.latencies_ms, 50),
            "ms",
            baseline_what="echo",
            at_most=2.0,
            note=f"agent's own time per task (duration_ms) p50 "
            f"{agent['sequential']['agent_duration_ms_p50']} ms",
        ),
        ratio_row(
            "rpc p95 latency, sequential",
            percentile(seq.latencies_ms, 95),
            percentile(eseq.latencies_ms, 95),
            "ms",
            baseline_what="echo",
        ),
        _rounds_row(
            "rpc throughput vs the strategy alone",
            thr.rate,
            strat.rate,
            round_ratios,
            at_least=0.8,
        ),
        ratio_row(
            "rpc: agent CPU per answer vs the strategy alone",
            agent_cpu_ms,
            1000.0 / strat.rate,
            "ms",
            baseline_what="strategy in-process",
            note="the agent's process and its strategy workers together: what an answer costs",
        ),
        ratio_row(
            "rpc: agent CPU per answer vs its own strategies'",
            agent_cpu_ms,
            computed * 1000.0 / s.rpc_requests,
            "ms",
            baseline_what="the strategies' CPU in the agent",
            note="the same answers, so the machine's speed cancels out: the rest is what an "
            "answer costs besides its analysis (the strategies' own CPU is measured where they "
            "run, in the agent or its strategy worker processes)",
        ),
        _over_row(
            "rpc p50 minus the strategy's p50",
            percentile(seq.latencies_ms, 50),
            percentile(joined(seq_rounds.alone).latencies_ms, 50),
            overs,
            at_most_ms=1.0,
            floor=floor_parts,
        ),
        *cost_rows("rpc", writes),
    ]


def _rounds_row(
    name: str, measured: float, baseline: float, ratios: Sequence[float], *, at_least: float
) -> Row:
    """A rate judged on the median of its rounds' ratios, each against the baseline measured
    right before and right after that round."""
    ratio = statistics.median(ratios)
    return Row(
        name,
        measured,
        "req/s",
        baseline,
        "strategy in-process",
        ratio,
        goal=f"≥ {at_least:g}× (median of rounds)",
        met=ratio >= at_least,
        note="each round vs the strategy alone right before and after it: "
        + ", ".join(f"{r:.2f}×" for r in ratios),
    )


def _over_row(
    name: str,
    measured: float,
    baseline: float,
    overs: Sequence[float],
    *,
    at_most_ms: float,
    floor: dict[str, float],
) -> Row:
    """A row judged on the median of its rounds' measured − baseline (ms), each against the
    baseline right before and after that round, against ``at_most_ms``; ``floor`` is the
    least any answer stored before its reply can add, by part, measured bare in the same
    run."""
    over = statistics.median(overs)
    return Row(
        name,
        over,
        "ms",
        baseline,
        "strategy p50",
        goal=f"≤ {at_most_ms:g} ms (median of rounds)",
        met=over <= at_most_ms,
        note=f"rpc p50 {measured:.2f} ms; rounds: "
        + ", ".join(f"+{x:.2f}" for x in overs)
        + f" ms; the floor, bare: {sum(floor.values()):.2f} ms (an echo's p50 "
        f"{floor['echo']:.2f}, a KV create's, the claim, {floor['claim']:.2f}, decoding the "
        f"task, making its outputs and encoding its result {floor['making']:.2f})",
    )


def _cpu_note(cpu: dict[str, Any]) -> str:
    """CPU ms per task by process, and the cores busy (of the machine's) while measuring."""
    per = cpu.get("cpu_ms_per_task", {})
    busy = cpu.get("cores_busy", {})
    text = "CPU ms/task: " + ", ".join(f"{role} {ms:.2f}" for role, ms in per.items())
    if "host" in busy:
        ours = sum(v for r, v in busy.items() if r != "host")
        text += f"; cores busy: ours {ours:.2f}, machine {busy['host']:.2f} of {os.cpu_count()}"
    return text


async def bench_durable(b: Bench, out: Outcome) -> None:
    """Tasks through the durable path vs a bare JetStream publish + pull + ack."""
    s, run = b.sizes, b.run
    agent: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    warm_bodies = cheap_tasks(f"{run}-dw", s.warmup)
    bodies = cheap_tasks(f"{run}-dt", s.durable_tasks)
    n = len(bodies)
    async with b.agents("durable", 1, agent) as (agent_id, meter):
        subject = subjects.tasks(agent_id, TaskType.API_OPTIMIZATION)
        results = subjects.results(agent_id, TaskType.API_OPTIMIZATION)
        await durable_pass(
            b, subject, warm_bodies, results, _ids(f"{run}-dw", s.warmup), _result_key
        )
        count = await WriteCount.start(b, agent_id)
        with meter.per_task(n, cpu):
            seconds, replies = await durable_pass(
                b, subject, bodies, results, _ids(f"{run}-dt", n), _result_key
            )
        writes = await count.stop(b, n)
    agent |= {"tasks": n, "seconds": round(seconds, 3)} | result_summary(replies) | cpu

    stream, work, done = f"BENCH_{run}_WORK", f"bench.{run}.work", f"bench.{run}.done"
    await b.js.add_stream(StreamConfig(name=stream, subjects=[work], storage=StorageType.FILE))
    bare_cpu: dict[str, Any] = {}
    try:
        puller = ("pull-ack", b.url, stream, work, f"bench-{run}-pull", done, str(BASELINE_FETCH))
        async with b.peer(*puller) as peer_meter:

            def seqs(after: int, count: int) -> set[str]:
                return {str(after + i) for i in range(1, count + 1)}

            def seq_key(msg: Msg) -> str:
                return msg.data.decode()

            await durable_pass(b, work, warm_bodies, done, seqs(0, s.warmup), seq_key)
            bare_runs = []
            with peer_meter.per_task(n * BASELINE_REPEAT, bare_cpu):
                for k in range(BASELINE_REPEAT):
                    after = s.warmup + k * n
                    secs, _ = await durable_pass(b, work, bodies, done, seqs(after, n), seq_key)
                    bare_runs.append(secs)
    finally:
        await b.js.delete_stream(stream)
    base_s = statistics.median(bare_runs)
    out.details = {
        "task_bytes": len(bodies[0]),
        "agent": agent,
        "writes": writes,
        "bare": {
            "messages": n,
            "seconds": round(base_s, 4),
            "runs_per_s": [round(n / x, 1) for x in bare_runs],
            "fetch": BASELINE_FETCH,
        }
        | bare_cpu,
    }
    bad = {k: v for k, v in agent["statuses"].items() if k != "completed"}
    out.rows.append(
        ratio_row(
            "durable throughput",
            n / seconds,
            n / base_s,
            "tasks/s",
            baseline_what="pub+pull+ack",
            at_least=0.5,
            note=f"not completed: {bad}" if bad else _cpu_note(cpu),
        )
    )
    if "rpc_per_s" in b.shared:
        out.rows.append(
            ratio_row(
                "durable vs rpc throughput",
                n / seconds,
                b.shared["rpc_per_s"],
                "tasks/s",
                baseline_what="rpc, 32 in flight",
                at_least=0.8,
            )
        )
    out.rows += cost_rows("durable", writes)


async def bench_replicas(b: Bench, out: Outcome) -> None:
    """CPU-bound planning tasks on the durable path: 2 agent processes vs 1."""
    s, run = b.sizes, b.run
    params = planning_params(s.planning_points)
    rates: dict[int, float] = {}
    for count in (1, 2):
        details: dict[str, Any] = {}
        cpu: dict[str, Any] = {}
        async with b.agents(f"replicas{count}", count, details) as (agent_id, meter):
            subject = subjects.tasks(agent_id, TaskType.STRATEGIC_BACKEND_PLANNING)
            results = subjects.results(agent_id, TaskType.STRATEGIC_BACKEND_PLANNING)
            warm, main = f"{run}-p{count}w", f"{run}-p{count}t"
            n_warm = 4 * count  # a few for each replica (each fetches up to its free slots)
            warm_bodies = planning_tasks(warm, n_warm, params)
            await durable_pass(b, subject, warm_bodies, results, _ids(warm, n_warm), _result_key)
            bodies = planning_tasks(main, s.replica_tasks, params)
            with meter.per_task(len(bodies), cpu):
                seconds, replies = await durable_pass(
                    b, subject, bodies, results, _ids(main, s.replica_tasks), _result_key
                )
        rates[count] = len(bodies) / seconds
        completed = [int(st.get("completed", 0)) for st in details.get("agent_stats", [])]
        details |= (
            {
                "tasks": len(bodies),
                "task_bytes": len(bodies[0]),
                "seconds": round(seconds, 3),
                "per_s": round(rates[count], 2),
                "completed_per_replica_incl_warmup": completed,
            }
            | result_summary(replies)
            | cpu
        )
        out.details[f"{count}_replica{'s' if count > 1 else ''}"] = details
    one, two = out.details["1_replica"], out.details["2_replicas"]
    out.rows.append(
        ratio_row(
            "replicas: planning, 2 vs 1 agent",
            rates[2],
            rates[1],
            "tasks/s",
            baseline_what="1 agent",
            at_least=1.6,
            note=f"tasks per replica (with warm-up) {two['completed_per_replica_incl_warmup']}\n"
            f"    1 agent:  {_cpu_note(one)}\n    2 agents: {_cpu_note(two)}",
        )
    )


NatsBench = Callable[[Bench, Outcome], Awaitable[None]]
NATS_RUNNERS: dict[str, NatsBench] = {
    "rpc": bench_rpc,
    "durable": bench_durable,
    "replicas": bench_replicas,
}


# --- the benchmark scripts ---------------------------------------------------------------


def rows_analysis(d: dict[str, Any]) -> list[Row]:
    base, dense = d["runs"][0], d["runs"][1]
    return [
        ratio_row(
            f"analysis: 20 metrics + {base['series'] - 20} series, 24h @ 10s",
            base["analysis_ms"],
            base["percentile_pass_ms"],
            "ms",
            baseline_what="np.percentile pass",
            at_most=10.0,
        ),
        Row(
            "analysis: 10× the samples",
            dense["analysis_ms"],
            "ms",
            base["analysis_ms"],
            "24h @ 10s",
            d["growth_10x"],
            "linear (~10×)",
        ),
    ]


def rows_ingest(d: dict[str, Any]) -> list[Row]:
    key, main = next(iter(d["results"].items()))
    return [
        ratio_row(
            f"ingest: KPI samples, {key}",
            main["ingest_samples_per_s"],
            main["decode_only_samples_per_s"],
            "samples/s",
            baseline_what="decode-only",
            at_least=0.5,
        ),
        Row(
            f"ingest: worst of {len(d['results'])} shape/mode runs",
            None,
            "",
            ratio=d["min_ratio"],
            goal="≥ 0.5×",
            met=d["ratio_met"],
        ),
        Row(
            "ingest: store memory, steady state",
            d["steady_state_store_bytes_per_sample"],
            "B/sample",
            goal="≤ 24 B/sample",
            met=d["memory_met"],
            note=f"up to {d['max_store_bytes_per_sample_in_runs']} B/sample while series grow",
        ),
    ]


def rows_learning(d: dict[str, Any]) -> list[Row]:
    """The closed loop against truth of its own (``scripts/sim_truth.py``): the agent's error
    over the last rounds against an oracle's (the true mean effect in context), and how many
    single outcomes its [low, high] holds (issue 15's goals)."""
    last = d["last_rounds"]
    return [
        Row(
            f"learning: prediction error, {last['span']}",
            last["agent_mae_pp"],
            "pp",
            last["oracle_mae_pp"],
            "oracle (true mean in context)",
            goal="≤ 1.2× the oracle's",
            met=last["agent_mae_pp"] <= 1.2 * last["oracle_mae_pp"],
            note=f"prior only: {last['prior_mae_pp']} pp",
        ),
        Row(
            f"learning: single outcomes inside [low, high], {last['span']}",
            last["coverage_pct"],
            "%",
            None,
            "",
            goal="70–95 %",
            met=70.0 <= last["coverage_pct"] <= 95.0,
            note=f"mean width {last['width_pp']} pp",
        ),
    ]


def rows_reliability(d: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"reliability: {o['scenario']}",
            o["lost"] + o["duplicates"],
            "lost+dup",
            goal="0 lost, 0 dup",
            met=o["ok"],
            note=f"{o['results']}/{o['tasks']} results, {o['duplicates']} dup, {o['lost']} lost, "
            f"{o['seconds']} s",
        )
        for o in d["scenarios"]
    ]


SCRIPT_ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "analysis": rows_analysis,
    "ingest": rows_ingest,
    "learning": rows_learning,
    "reliability": rows_reliability,
}


async def stop_script(proc: asyncio.subprocess.Process) -> None:
    """SIGINT first, as Ctrl-C would: the scripts stop their own servers and agents only on
    KeyboardInterrupt (SIGTERM would orphan them). Then ``stop_process``, then SIGKILL to
    whatever is left in the script's process group."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 15.0)
        await stop_process(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_script(name: str, args: Sequence[str], tmp: Path, timeout: float) -> Outcome:
    """``scripts/bench_<name>.py`` as a subprocess; its JSON read back, its output kept verbatim."""
    out = Outcome(name)
    report = tmp / f"bench_{name}.json"
    cmd = [sys.executable, str(SCRIPTS / f"bench_{name}.py"), *args, "--json", str(report)]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=SCRIPTS.parent,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group: see stop_script
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        await stop_script(proc)
    text = output.decode(errors="replace")
    out.details = {"command": cmd[1:], "returncode": proc.returncode, "output": text}
    if not report.exists():  # they write their JSON even when a goal is missed
        raise RuntimeError(f"bench_{name}.py wrote no JSON (rc {proc.returncode}): {text[-500:]}")
    data = json.loads(report.read_text())
    out.details["json"] = data
    out.rows = SCRIPT_ROWS[name](data)
    return out


# --- the run ---------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: no further benchmark runs."""


class StopOnSignal:
    """SIGINT/SIGTERM cancel the running benchmark and stop the run; the context managers
    stop every child on the way out. A flag as well as the cancel: nats-py turns some
    cancellations into errors of its own (``js.publish``: TooManyStalledMsgsError)."""

    def __init__(self) -> None:
        self.requested = False
        self._task = asyncio.current_task()

    def __enter__(self) -> StopOnSignal:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop)
        return self

    def __exit__(self, *_: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    def _stop(self) -> None:
        self.requested = True
        if self._task is not None:
            self._task.cancel()

    def check(self) -> None:
        if self.requested:
            raise Interrupted


async def _timed(
    name: str, work: Callable[[Outcome], Awaitable[Outcome | None]], stop: StopOnSignal
) -> Outcome:
    """Run one benchmark; an exception becomes an ERROR row, so the others still run."""
    stop.check()
    out = Outcome(name)
    _log(f"{name} …")
    started = time.perf_counter()
    try:
        out = await work(out) or out
    except Exception as exc:
        stop.check()
        out.error = f"{type(exc).__name__}: {exc}"
        out.details["traceback"] = traceback.format_exc()
        out.rows = [error_row(name, out.error)]
        _log(f"{name} failed: {out.error}")
    stop.check()
    out.seconds = round(time.perf_counter() - started, 1)
    _log(f"{name} done in {out.seconds} s")
    return out


async def _quiet(exc: Exception) -> None:
    """The server going away on Ctrl-C is no news; a failing bench raises on its own."""


async def run_all(
    selected: Sequence[str], sizes: Sizes, agent_settings: dict[str, str]
) -> list[Outcome]:
    """The NATS benchmarks on one embedded server (started only if one is selected), then
    the benchmark scripts, each after the other so none disturbs another's figures."""
    outcomes: list[Outcome] = []
    run = uuid.uuid4().hex[:8]
    with StopOnSignal() as stop, tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
        tmp = Path(tmp_name)
        if any(n in selected for n in NATS_BENCHES):
            async with EmbeddedServer(tmp / "nats") as server:
                assert server.process is not None
                nc = await nats.connect(server.url, allow_reconnect=False, error_cb=_quiet)
                try:
                    b = Bench(
                        server.url,
                        server.process.pid,
                        nc,
                        nc.jetstream(),
                        tmp,
                        run,
                        sizes,
                        agent_settings,
                    )
                    for name in (n for n in NATS_BENCHES if n in selected):

                        async def work(out: Outcome, name: str = name) -> None:
                            await NATS_RUNNERS[name](b, out)

                        outcomes.append(await _timed(name, work, stop))
                finally:
                    await nc.close()
        for name in (n for n in SCRIPT_BENCHES if n in selected):

            async def script(_: Outcome, name: str = name) -> Outcome:
                args = sizes.script_args[name]
                return await run_script(name, args, tmp, SCRIPT_TIMEOUT_S)

            outcomes.append(await _timed(name, script, stop))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run (< 60 s)")
    parser.add_argument(
        "--with-reliability", action="store_true", help="also run bench_reliability (minutes)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHES,
        metavar="NAME",
        help=f"run only this one (repeatable): {', '.join(BENCHES)}",
    )
    parser.add_argument(
        "--json", default="bench-results.json", help="output file (default: %(default)s)"
    )
    parser.add_argument(
        "--agent-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every agent started (repeatable), e.g. strategy_processes=1",
    )
    args = parser.parse_args(argv)
    agent_settings = dict(item.split("=", 1) for item in args.agent_setting)
    selected = args.only or [n for n in BENCHES if n != "reliability" or args.with_reliability]
    sizes = QUICK if args.quick else FULL

    started = time.perf_counter()
    try:
        outcomes = asyncio.run(run_all(selected, sizes, agent_settings))
    except (KeyboardInterrupt, asyncio.CancelledError, Interrupted):
        _log("interrupted; every child process was stopped")
        return 130
    wall = time.perf_counter() - started
    rows = [r for o in outcomes for r in o.rows]
    print(table(rows))
    print(f"\nwall time {wall:.0f} s ({'quick' if args.quick else 'full'} run)")
    if agent_settings:
        print(f"agent settings: {agent_settings}")
    report = {
        "benchmark": "all",
        "run_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "agent_settings": agent_settings,
        "wall_s": round(wall, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "sizes": asdict(sizes),
        "rows": [asdict(r) for r in rows],
        "benches": {o.name: {k: v for k, v in asdict(o).items() if k != "rows"} for o in outcomes},
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
