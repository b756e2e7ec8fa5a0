"""Benchmark of crash safety (not a test): one result per durable task, whatever the agent suffers.

Each scenario starts ``python -m agent run`` as a subprocess on its own agent id, sends N
durable ``api_optimization`` tasks (default 2 000) with bare nats-py JetStream publishes,
hurts the agent mid-run, and counts what reached the streams:

- ``sigkill``: SIGKILL once 40 % of the results are in, then a new process takes over.
- ``sigstop``: ack_wait 2 s; SIGSTOP at 30 % for 2.5 × ack_wait (every delivery in flight
  times out and is redelivered to the same process once it is resumed), then SIGCONT.
- ``sigstop+replica``: as ``sigstop``, and a second process starts during the pause, so
  the redeliveries go to it while the paused one still holds the first deliveries.

Prints a table (tasks sent, results, duplicates, lost, and the same for plans and
baselines) and writes it to ``--json`` (default reports/bench_reliability.json).
Goal: 0 lost, 0 duplicate, in every scenario.

``tests/test_crash_safety.py`` runs the same scenarios (``run_scenario``) on fewer tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

GOAL = "goal: 0 lost, 0 duplicate (results, plans and baselines) in every scenario"
SCENARIOS = ("sigkill", "sigstop", "sigstop+replica")
TASK_TYPE = "api_optimization"


def stream_token(agent_id: str) -> str:
    """The agent's stream prefix: its id in upper case, anything else than [A-Z0-9] as ``_``."""
    return "".join(c if c.isalnum() else "_" for c in agent_id.upper())


def make_task(run: str, i: int) -> dict[str, Any]:
    """A small task with inline metrics that are off target: its report recommends something."""
    return {
        "schema": "task_request/v1",
        "task_id": f"t-{run}-{i:05d}",
        "task_type": TASK_TYPE,
        "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issuer": "helios",
        "params": {
            "window": "1h",
            "metrics": {
                "api_response_time": 150.0 + i % 100,
                "api_availability": 99.5,
                "error_rate": 2.0,
            },
        },
    }


@dataclass
class AgentProcess:
    """``python -m agent run`` on its own ids, its output kept in ``log``."""

    nats_url: str
    agent_id: str
    workdir: Path
    ack_wait_s: float = 30.0
    name: str = "agent"
    proc: asyncio.subprocess.Process | None = None
    settings: dict[str, str] = field(default_factory=dict)
    """More settings by name (``strategy_processes``: ``PROMETHEUS_BACKEND_STRATEGY_PROCESSES``)."""

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_BACKEND_")}
        return {
            **base,
            "NATS_URL": self.nats_url,
            "PROMETHEUS_BACKEND_AGENT_ID": self.agent_id,
            "PROMETHEUS_BACKEND_HEPHAESTUS_ID": f"{self.agent_id}-heph",
            "PROMETHEUS_BACKEND_ATHENA_ID": f"{self.agent_id}-athena",
            "PROMETHEUS_BACKEND_STATE_DIR": str(self.workdir / "state"),
            "PROMETHEUS_BACKEND_ACK_WAIT_S": str(self.ack_wait_s),
            "PROMETHEUS_BACKEND_MONITOR_ENABLED": "false",
            "PROMETHEUS_BACKEND_KPI_STREAM": "false",
            "PROMETHEUS_BACKEND_LOG_LEVEL": "WARNING",
            **{f"PROMETHEUS_BACKEND_{k.upper()}": v for k, v in self.settings.items()},
        }

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "agent",
                "run",
                env=self.env(),
                cwd=self.workdir,  # no .env or prometheus-backend.toml of the caller's
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is None or self.proc.returncode is not None:
            raise RuntimeError(f"{self.name} is not running")
        self.proc.send_signal(sig)

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGCONT (in case it is paused) and SIGTERM, SIGKILL if it does not exit in time."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.wait_for(proc.wait(), timeout)

    async def kill(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.wait_for(proc.wait(), 15)

    def problems(self, limit: int = 5) -> list[str]:
        """The first distinct warnings and errors of the log (numbers masked), with counts."""
        if not self.log.exists():
            return []
        seen: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                line = str(json.loads(line).get("msg", line))
            if "already captured by stream" in line:
                continue  # the first agent's ALERTS stream holds swarm.alerts.> for all
            seen["".join("N" if c.isdigit() else c for c in line)[:200]] += 1
        return [f"{self.name}: {n}× {msg}" for msg, n in list(seen.items())[:limit]]

    def log_tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


async def wait_serving(
    nc: Client, agent: AgentProcess, timeout: float = 45.0, *, not_ids: frozenset[str] = frozenset()
) -> str:
    """Wait until the agent's micro service answers ``$SRV.PING``; returns its instance id.

    ``not_ids``: instances that do not count (another process of the same agent id).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if not agent.alive:
            raise RuntimeError(f"{agent.name} exited early:\n{agent.log_tail()}")
        with contextlib.suppress(nats.errors.TimeoutError, nats.errors.NoRespondersError):
            reply = await nc.request(f"$SRV.PING.{agent.agent_id}", b"", timeout=0.5)
            instance = str(json.loads(reply.data).get("id", ""))
            if instance not in not_ids:
                return instance
        if loop.time() > deadline:
            raise TimeoutError(f"{agent.name} did not serve within {timeout}s:\n{agent.log_tail()}")
        await asyncio.sleep(0.1)


SLOTS = 16
"""The agent's work slots: ``max_in_flight``, which the agents here leave at its default."""


async def holding_tasks(nc: Client, agent_id: str, timeout: float) -> bool:
    """Wait (bounded) until the agent holds deliveries (``in_flight`` + ``queued``) and has
    a free slot. A pause is to make deliveries time out and come back: it must not fall in
    the instant between two fetches, when a fast agent has answered all it fetched, nor
    when every slot is taken, when the resumed agent acks what it holds before it fetches
    again (a late ack of a delivery not yet redelivered is taken) and nothing comes back."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
            reply = await nc.request(f"$SRV.STATS.{agent_id}", b"", timeout=1.0)
            endpoints = json.loads(reply.data).get("endpoints") or [{}]
            data = endpoints[0].get("data") or {}
            running = int(data.get("in_flight", 0))
            if running + int(data.get("queued", 0)) > 0 and running < SLOTS:
                return True
    return False


async def agent_stats(nc: Client, agent_id: str, wait: float = 0.5) -> list[dict[str, Any]]:
    """The counters of every live instance of ``agent_id`` (``$SRV.STATS`` endpoint data)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(f"$SRV.STATS.{agent_id}", b"", reply=inbox)
        out = []
        with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
            while True:
                msg = await sub.next_msg(timeout=wait)
                endpoints = json.loads(msg.data).get("endpoints") or [{}]
                out.append(dict(endpoints[0].get("data") or {}))
        return out
    finally:
        await sub.unsubscribe()


async def stream_count(js: JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


async def wait_count(
    js: JetStreamContext, stream: str, at_least: int, timeout: float
) -> tuple[int, bool]:
    """Poll ``stream`` until it holds ``at_least`` messages; (count, reached) when time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        count = await stream_count(js, stream)
        if count >= at_least:
            return count, True
        if loop.time() > deadline:
            return count, False
        await asyncio.sleep(0.1)


async def read_stream(js: JetStreamContext, stream: str, subject: str) -> list[dict[str, Any]]:
    """Every message of ``stream`` on ``subject``, decoded, oldest first."""
    total = await stream_count(js, stream)
    if total == 0:
        return []
    sub = await js.pull_subscribe(
        subject, stream=stream, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    out: list[dict[str, Any]] = []
    try:
        while len(out) < total:
            batch = await sub.fetch(min(500, total - len(out)), timeout=10)
            for msg in batch:
                out.append(json.loads(msg.data))
                await msg.ack()
    finally:
        await sub.unsubscribe()
    return out


async def publish_tasks(js: JetStreamContext, agent_id: str, bodies: list[dict[str, Any]]) -> None:
    """Durable publishes, 128 in flight at a time, each acknowledged by the tasks stream."""
    subject = f"swarm.tasks.{agent_id}.{TASK_TYPE}"
    gate = asyncio.Semaphore(128)

    async def one(body: dict[str, Any]) -> None:
        async with gate:
            await js.publish(subject, json.dumps(body).encode(), timeout=30)

    await asyncio.gather(*(one(b) for b in bodies))


@dataclass
class Outcome:
    """What one scenario left in the streams."""

    scenario: str
    tasks: int
    results: int = 0
    duplicates: int = 0
    """Result messages beyond the first one of their task id."""
    lost: int = 0
    """Task ids sent that have no result."""
    strangers: int = 0
    """Results of task ids that were never sent."""
    statuses: dict[str, int] = field(default_factory=dict)
    with_recommendations: int = 0
    plans: int = 0
    plan_duplicates: int = 0
    plans_missing: int = 0
    """Results with recommendations and no plan."""
    baselines: int = 0
    baseline_duplicates: int = 0
    baselines_missing: int = 0
    redelivered: int = 0
    """Redeliveries the surviving processes saw (their ``$SRV.STATS`` counters)."""
    answered_from_record: int = 0
    """Tasks the surviving processes answered with the stored result (no second publish)."""
    results_at_fault: int = 0
    """Results already in when the agent was killed or paused."""
    completed: bool = False
    """All N results arrived within the time bound."""
    agent_alive: bool = True
    """Whether the process that was hurt and kept (sigstop) was still alive at the end."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.completed
            and self.lost == 0
            and self.duplicates == 0
            and self.strangers == 0
            and self.plan_duplicates == 0
            and self.baseline_duplicates == 0
            and self.plans_missing == 0
            and self.baselines_missing == 0
            and self.plans == self.baselines == self.with_recommendations
            and self.agent_alive
        )


async def tally(
    js: JetStreamContext, agent_id: str, sent: list[str], outcome: Outcome
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Fill ``outcome`` from the results, plans and baselines streams."""
    token = stream_token(agent_id)
    results = await read_stream(js, f"{token}_RESULTS", f"swarm.results.{agent_id}.>")
    plans = await read_stream(js, f"{token}_PLANS", f"swarm.plans.{agent_id}-heph")
    baselines = await read_stream(js, f"{token}_BASELINES", f"swarm.baselines.{agent_id}-athena")
    per_task = Counter(r["task_id"] for r in results)
    wanted = set(sent)
    outcome.results = len(results)
    outcome.duplicates = sum(n - 1 for n in per_task.values())
    outcome.lost = len(wanted - set(per_task))
    outcome.strangers = len(set(per_task) - wanted)
    outcome.statuses = dict(Counter(r["status"] for r in results))
    recommending = {r["task_id"] for r in results if (r.get("report") or {}).get("recommendations")}
    outcome.with_recommendations = len(recommending)
    plan_ids = Counter(p["plan_id"] for p in plans)
    outcome.plans = len(plans)
    outcome.plan_duplicates = sum(n - 1 for n in plan_ids.values())
    planned = {p["source_task_id"] for p in plans}
    outcome.plans_missing = len(recommending - planned)
    baseline_ids = Counter(b["baseline_id"] for b in baselines)
    outcome.baselines = len(baselines)
    outcome.baseline_duplicates = sum(n - 1 for n in baseline_ids.values())
    outcome.baselines_missing = len(set(plan_ids) - {b["plan_id"] for b in baselines})
    return results, plans, baselines


async def run_scenario(
    nats_url: str,
    scenario: str,
    tasks: int,
    workdir: Path,
    *,
    fault_at: float | None = None,
    ack_wait_s: float | None = None,
    timeout: float = 90.0,
    settle_s: float = 1.0,
) -> Outcome:
    """Run one of ``SCENARIOS`` on a fresh agent id; every wait is bounded by ``timeout``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; one of {SCENARIOS}")
    started = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    agent_id = f"rel-{run}"
    stopping = scenario.startswith("sigstop")
    ack_wait = ack_wait_s if ack_wait_s is not None else (2.0 if stopping else 5.0)
    fault_at = fault_at if fault_at is not None else (0.3 if stopping else 0.4)
    results_stream = f"{stream_token(agent_id)}_RESULTS"
    outcome = Outcome(scenario=scenario, tasks=tasks)

    def agent(name: str) -> AgentProcess:
        return AgentProcess(nats_url, agent_id, workdir / run, ack_wait_s=ack_wait, name=name)

    procs = [agent("first")]
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        first = procs[0]
        await first.start()
        first_id = await wait_serving(nc, first, timeout)
        bodies = [make_task(run, i) for i in range(tasks)]
        sent = [b["task_id"] for b in bodies]
        publishing = asyncio.create_task(publish_tasks(js, agent_id, bodies))
        outcome.results_at_fault, reached = await wait_count(
            js, results_stream, max(1, int(tasks * fault_at)), timeout
        )
        if not reached:
            outcome.notes.append(f"only {outcome.results_at_fault} results before the fault")
        if scenario == "sigkill":
            first.signal(signal.SIGKILL)
            await asyncio.wait_for(first.proc.wait(), 15)  # type: ignore[union-attr]
            outcome.results_at_fault = await stream_count(js, results_stream)
            second = agent("restarted")
            procs.append(second)
            await second.start()
        else:
            if not await holding_tasks(nc, agent_id, timeout):
                outcome.notes.append("paused while holding no delivery")
            first.signal(signal.SIGSTOP)
            outcome.results_at_fault = await stream_count(js, results_stream)
            pause_until = asyncio.get_running_loop().time() + ack_wait * 2.5
            if scenario == "sigstop+replica":
                second = agent("replica")
                procs.append(second)
                await second.start()
                await wait_serving(nc, second, timeout, not_ids=frozenset({first_id}))
            await asyncio.sleep(max(0.0, pause_until - asyncio.get_running_loop().time()))
            first.signal(signal.SIGCONT)
        await asyncio.wait_for(publishing, timeout)
        count, outcome.completed = await wait_count(js, results_stream, tasks, timeout)
        await asyncio.sleep(settle_s)  # a duplicate, if there were one, would land by now
        survivors = procs[1:] if scenario == "sigkill" else procs
        outcome.agent_alive = all(p.alive for p in survivors)
        for stats in await agent_stats(nc, agent_id):
            outcome.redelivered += int(stats.get("redelivered", 0))
            outcome.answered_from_record += int(stats.get("duplicates", 0))
        await tally(js, agent_id, sent, outcome)
        for p in procs:
            outcome.notes.extend(p.problems())
        if not outcome.completed:
            outcome.notes.append(f"{count}/{tasks} results within {timeout}s")
    finally:
        for p in procs:
            await p.stop()
        await nc.drain()
    outcome.seconds = round(time.perf_counter() - started, 1)
    return outcome


HEADER = (
    f"{'scenario':<16} {'tasks':>6} {'results':>7} {'dup':>4} {'lost':>4} "
    f"{'at fault':>8} {'redeliv':>7} {'plans':>6} {'p.dup':>5} {'bases':>6} {'b.dup':>5} "
    f"{'s':>6}  ok"
)


def format_row(o: Outcome) -> str:
    return (
        f"{o.scenario:<16} {o.tasks:>6} {o.results:>7} {o.duplicates:>4} {o.lost:>4} "
        f"{o.results_at_fault:>8} {o.redelivered:>7} {o.plans:>6} {o.plan_duplicates:>5} "
        f"{o.baselines:>6} {o.baseline_duplicates:>5} {o.seconds:>6.1f}  {'yes' if o.ok else 'NO'}"
    )


async def run_embedded(tasks: int, scenarios: list[str], timeout: float) -> list[Outcome]:
    from agent.runtime.embedded import EmbeddedServer

    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        async with EmbeddedServer(Path(tmp) / "nats") as server:
            for scenario in scenarios:
                o = await run_scenario(
                    server.url, scenario, tasks, Path(tmp) / "agents", timeout=timeout
                )
                print(format_row(o), flush=True)
                for note in o.notes:
                    print(f"  note: {note}", flush=True)
                outcomes.append(o)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000, help="durable tasks (default 2000)")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="bound of every wait (s)")
    parser.add_argument("--json", default="reports/bench_reliability.json", help="output file")
    args = parser.parse_args()
    scenarios = args.scenario or list(SCENARIOS)

    print(HEADER, flush=True)
    outcomes = asyncio.run(run_embedded(args.tasks, scenarios, args.timeout))
    met = all(o.ok for o in outcomes)
    print(f"\n{GOAL}: {'MET' if met else 'NOT MET'}", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "goal": GOAL,
                "met": met,
                "tasks": args.tasks,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "scenarios": [{**asdict(o), "ok": o.ok} for o in outcomes],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {out}", flush=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
