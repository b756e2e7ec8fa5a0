"""The README's first command: a demo swarm around the agent, then its reports.

Everything runs here: an embedded nats-server (or ``$NATS_URL``), the agent, and the swarm
played with bare nats-py, as any peer would play it:

- a **KPI tracker** publishes ``kpi_batch/v1`` for all 20 metrics of a simulated backend:
  a week of history at 5-minute steps first (so capacity planning has days to fit growth
  on), then a live sample of every metric every 2 seconds;
- **Helios** sends every task type, over and over, reading that KPI stream (``source:
  kpi``);
- the closed loop of ``scripts/swarm_sim.py`` runs beside it: Helios's inline tasks,
  **Hephaestus** applying plan items, **Athena** verifying them, the agent calibrating;
- the agent's own monitor runs every few seconds and its alerts are shown.

The backend is simulated (seeded, labelled as such): its shape is written below in
``SimulatedBackend``; every figure in the reports is computed by the agent from its samples
or from the verifications. At the end the HTML and Markdown reports are written and a
one-screen summary printed; ``--serve`` keeps the whole swarm up until Ctrl-C instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import nats
import numpy as np
import swarm_sim  # scripts/ is on the path when this file runs

from agent.config import Settings
from agent.learning.effectiveness import effectiveness
from agent.runtime.learning import LearningStore
from agent.runtime.node import AgentNode
from agent.telemetry.logs import setup_logging
from protocols import KpiBatch, KpiSample, TaskResult, TaskType, decode, encode, subjects

HISTORY_DAYS = 7
HISTORY_STEP_S = 300.0
LIVE_EVERY_S = 2.0
BATCH_SAMPLES = 5_000
"""Samples per kpi_batch/v1 (about 400 kB of JSON, under the server's 1 MB max payload)."""
KPI_TOKEN = "demo"


@dataclass(frozen=True, slots=True)
class SimulatedBackend:
    """A web backend under a daily load cycle growing 3 %/day, with three known problems.

    Load (req/s) = 380 x (1 + 0.35 sin(day phase)) x 1.03^days. Latencies rise with load;
    the database slows down over the week (30 → 58 ms, target 50), the Redis hit rate sits
    at 84 % (target 95), and report generation runs slow (~640 ms p95, target 500). The
    rest is healthy with noise. ``start`` is the first sample's time (epoch seconds).
    """

    start: float
    seed: int

    def at(self, ts: np.ndarray) -> list[KpiSample]:
        rng = np.random.default_rng([self.seed, int(ts[0])])
        n = len(ts)
        days = (ts - self.start) / 86_400.0
        phase = 2 * np.pi * ((ts % 86_400.0) / 86_400.0 - 0.35)
        load = 380 * (1 + 0.35 * np.sin(phase)) * 1.03**days * (1 + rng.normal(0, 0.03, n))

        def noisy(level: Any, rel: float = 0.05) -> np.ndarray:
            return np.asarray(level * (1 + rng.normal(0, rel, n)), dtype=float)

        def pct(level: Any, sd: float) -> np.ndarray:
            return np.clip(level + rng.normal(0, sd, n), 0.0, 100.0)

        db = 30 + 28 * (days / HISTORY_DAYS) ** 2
        levels: dict[str, np.ndarray] = {
            "api_response_time": noisy(40 + 0.09 * load + 0.6 * db, 0.15),
            "api_availability": pct(99.96, 0.01),
            "api_throughput": load,
            "error_rate": np.abs(noisy(0.25, 0.2)),
            "websocket_throughput": noisy(1150 + 0.4 * load),
            "message_processing_time": noisy(55 + 0.03 * load, 0.1),
            "connection_stability": pct(99.6, 0.1),
            "real_time_delivery": noisy(28 + 0.02 * load, 0.1),
            "content_retrieval_time": noisy(120 + 0.05 * load, 0.1),
            "feed_generation_time": noisy(300 + 0.3 * load, 0.1),
            "cache_hit_rate": pct(92.5, 0.6),
            "data_freshness": pct(97.5, 0.4),
            "report_generation": noisy(560 + 0.05 * load, 0.08),
            "sentiment_analysis": noisy(110, 0.1),
            "ai_processing_efficiency": pct(83, 1.0),
            "data_processing_time": noisy(180 + 0.1 * load, 0.1),
            "redis_cache_hit": pct(84, 0.6),
            "database_query_time": noisy(db, 0.08),
            "cpu_utilization": pct(22 + 0.085 * load, 2.0),
            "memory_utilization": pct(58 + 0.8 * days, 0.6),
        }
        out: list[KpiSample] = []
        for metric, values in levels.items():
            out += [
                KpiSample(metric=metric, value=round(float(v), 4), ts=float(t))
                for t, v in zip(ts, values, strict=True)
            ]
        for node in ("ws-1", "ws-2", "ws-3"):  # connections per node: WebSocket capacity
            conns = noisy(2.2 * load, 0.04)
            out += [
                KpiSample(
                    metric="websocket_connections",
                    value=round(float(v)),
                    ts=float(t),
                    labels={"instance": node},
                )
                for t, v in zip(ts, conns, strict=True)
            ]
        return out


class KpiTracker:
    """Publishes the simulated backend's samples as ``kpi_batch/v1`` over JetStream."""

    def __init__(self, js: Any, backend: SimulatedBackend) -> None:
        self.js = js
        self.backend = backend
        self.subject = subjects.kpi(KPI_TOKEN)
        self.published = 0

    async def publish(self, samples: list[KpiSample]) -> None:
        for i in range(0, len(samples), BATCH_SAMPLES):
            batch = KpiBatch(source="demo-kpi-tracker", samples=samples[i : i + BATCH_SAMPLES])
            await self.js.publish(
                self.subject, encode(batch), headers={"Nats-Msg-Id": uuid.uuid4().hex}
            )
            self.published += len(batch.samples)

    async def backfill(self, end: float) -> None:
        ts = np.arange(self.backend.start, end, HISTORY_STEP_S)
        await self.publish(self.backend.at(ts))

    async def live(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.publish(self.backend.at(np.array([time.time()])))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LIVE_EVERY_S)


@dataclass
class Progress:
    """What the run has seen so far, and one line on stderr per event."""

    t0: float = field(default_factory=time.monotonic)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The latest completed result per task type."""
    tasks: Counter[str] = field(default_factory=Counter)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[swarm_sim.RoundStats] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", file=sys.stderr, flush=True)


async def helios(
    nc: Any,
    agent_id: str,
    progress: Progress,
    keep_going: Callable[[], bool],
    args: argparse.Namespace,
) -> None:
    """Helios's share of the demo: every task type in turn on the live KPI data, a cycle
    every ``--pace`` seconds; each task on its own line in the first cycle, then a line a
    cycle."""
    cycle = 0
    while cycle == 0 or keep_going():
        if cycle:
            await asyncio.sleep(args.pace)
        cycle += 1
        found: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for task_type in TaskType:
            result = await send_task(nc, agent_id, task_type, args.timeout)
            progress.tasks[result["status"]] += 1
            statuses[result["status"]] += 1
            report = result.get("report") or {}
            if result["status"] == "completed":
                progress.results[task_type.value] = result
                found["bottlenecks"] += len(report.get("bottlenecks", []))
                found["recommendations"] += len(report.get("recommendations", []))
                what = (
                    f"{len(report.get('bottlenecks', []))} bottlenecks, "
                    f"{len(report.get('recommendations', []))} recommendations"
                )
            else:
                what = f"{result['error']['code']}: {result['error']['message'][:80]}"
            if cycle == 1:
                progress.say(
                    f"helios   {task_type.value:<32} {result['status']:<9} "
                    f"{result['duration_ms']:7.1f} ms  {what}"
                )
        if cycle > 1:
            progress.say(
                f"helios   cycle {cycle}: {dict(statuses)}; {found['bottlenecks']} bottlenecks, "
                f"{found['recommendations']} recommendations over {len(TaskType)} task types"
            )


async def send_task(nc: Any, agent_id: str, task_type: TaskType, timeout: float) -> dict[str, Any]:
    """One rpc task reading the agent's live KPI store, as Helios writes it (plain JSON)."""
    task = {
        "schema": "task_request/v1",
        "task_id": f"demo-{uuid.uuid4().hex[:12]}",
        "task_type": task_type.value,
        "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issuer": "demo-helios",
        "params": {"source": "kpi"},
    }
    reply = await nc.request(
        subjects.rpc(agent_id, task_type), json.dumps(task).encode(), timeout=timeout
    )
    result: dict[str, Any] = msgspec.to_builtins(decode(TaskResult, reply.data))
    return result


def write_reports(progress: Progress, out_dir: Path) -> list[Path]:
    """One HTML page and one Markdown file per task type's latest result."""
    from agent.reports.html import render_html
    from agent.reports.markdown import render_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task_type, result in progress.results.items():
        html_path = out_dir / f"{task_type}.html"
        typed = msgspec.convert(result, TaskResult)
        html_path.write_text(render_html(typed), encoding="utf-8")
        (out_dir / f"{task_type}.md").write_text(render_markdown(typed), encoding="utf-8")
        written.append(html_path)
    return written


def summary(progress: Progress, learned: dict[str, Any], pages: list[Path]) -> str:
    """One screen: what ran, what the agent found, what it learned, where the pages are."""
    lines = ["", "== demo swarm summary " + "=" * 50]
    lines.append(
        f"tasks: {sum(progress.tasks.values())} ({dict(progress.tasks)}); "
        f"closed-loop rounds: {len(progress.rounds)}; alerts: {len(progress.alerts)}"
    )
    planning = progress.results.get(TaskType.STRATEGIC_BACKEND_PLANNING.value)
    if planning:
        report = planning["report"]
        phases = Counter(e["implementation_phase"] for e in report["prioritized_plan"])
        lines.append(
            f"\nroadmap ({len(report['prioritized_plan'])} items, by phase {dict(phases)}):"
        )
        for entry in report["prioritized_plan"][:6]:
            lines.append(
                f"  {entry['backend_strategic_score']:5.1f}  {entry['implementation_phase']:<20} "
                f"{entry['approach']} → {entry['target']}"
            )
        triggers = report["scalability_projections"].get("scaling_triggers", [])
        for trig in triggers[:4]:
            when = f", expected {trig['expected_at'][:10]}" if trig.get("expected_at") else ""
            lines.append(
                f"  trigger  {trig['metric']:<20} now {trig.get('current')} vs "
                f"{trig.get('threshold')}: {trig['status']}{when}"
            )
    api = progress.results.get(TaskType.API_OPTIMIZATION.value)
    if api:
        lines.append("\nAPI bottlenecks (most urgent first):")
        for b in api["report"]["bottlenecks"][:4]:
            lines.append(
                f"  [{b['severity']:<8}] {b['optimization_urgency']:>3}  {b['evidence']}"[:118]
            )
    if progress.rounds:
        first, last = progress.rounds[0], progress.rounds[-1]
        lines.append(
            f"\nlearning: prediction error {first.mae_pp:.1f} pp (round 1) → "
            f"{last.mae_pp:.1f} pp (round {last.round}; prior alone {last.prior_mae_pp:.1f}, "
            f"oracle {last.oracle_mae_pp:.1f}); {last.calibrated} calibrated recommendations"
        )
    accuracy = (learned.get("recommendation_accuracy") or {}).get("value")
    if accuracy is not None:
        lines.append(f"agent's own recommendation accuracy from verified history: {accuracy:.2f}")
    kinds = Counter(f"{a['severity']} {a['kind']}" for a in progress.alerts)
    if kinds:
        lines.append(f"alerts raised: {dict(kinds)}")
    lines.append("\nreports (open in a browser; they work offline):")
    lines += [f"  {p}" for p in pages]
    return "\n".join(lines)


async def demo(
    args: argparse.Namespace, state_dir: Path, stopping: asyncio.Event
) -> tuple[Progress, dict[str, Any]]:
    overrides: dict[str, Any] = {
        "state_dir": state_dir,
        "monitor_interval_s": args.monitor_interval,
        "nats_drain_timeout_s": 5.0,
    }
    settings = Settings(**overrides)
    progress = Progress()
    async with AgentNode(settings) as node:
        progress.say(f"agent {settings.agent_id} serving on {node.url}")
        nc = await nats.connect(node.url, name="demo-swarm")
        stop = asyncio.Event()
        live: asyncio.Task[None] | None = None
        try:
            js = nc.jetstream()

            async def on_alert(msg: Any) -> None:
                alert = json.loads(msg.data)
                progress.alerts.append(alert)
                progress.say(
                    f"alert    {alert['severity']:<8} {alert['kind']:<17} {alert['message'][:70]}"
                )

            await nc.subscribe(subjects.ALERTS_ALL, cb=on_alert)
            now = time.time()
            tracker = KpiTracker(js, SimulatedBackend(now - HISTORY_DAYS * 86_400, args.seed))
            await tracker.backfill(now)
            await swarm_sim.wait_consumed(js, tracker.subject, args.timeout)
            progress.say(
                f"kpi      {tracker.published} samples of {HISTORY_DAYS} days published to "
                f"{tracker.subject}; live samples every {LIVE_EVERY_S:g}s from now"
            )
            live = asyncio.create_task(tracker.live(stop))
            deadline = asyncio.get_running_loop().time() + args.duration

            def keep_going() -> bool:
                if args.serve:
                    return not stopping.is_set()
                return asyncio.get_running_loop().time() < deadline

            def on_round(s: swarm_sim.RoundStats) -> None:
                progress.rounds.append(s)
                progress.say(
                    f"loop     round {s.round}: {s.plans} plans, {s.verified} verified, "
                    f"prediction error {s.mae_pp:.1f} pp, "
                    f"{s.calibrated}/{s.recommendations} calibrated"
                )

            if args.serve:
                progress.say(
                    f"serving until Ctrl-C; try: NATS_URL={node.url} prometheus-backend status"
                )
            await asyncio.gather(
                helios(nc, settings.agent_id, progress, keep_going, args),
                swarm_sim.run_loop(
                    node.url,
                    settings.agent_id,
                    settings.hephaestus_id,
                    settings.athena_id,
                    rounds=sys.maxsize,
                    seed=args.seed,
                    timeout=args.timeout,
                    on_round=on_round,
                    keep_going=keep_going,
                    pause_s=args.pace / 2,
                ),
            )
            snapshot = await (await LearningStore.open(js, settings)).snapshot()
            learned = msgspec.to_builtins(effectiveness(snapshot))
        finally:
            stop.set()
            if live is not None:
                await live
            await nc.drain()
    return progress, learned


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/run",
        description=__doc__.split("\n\n")[0],
        epilog="Exit 0 when every task type completed and the reports were written, 1 if not.",
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of swarm activity (default 60)"
    )
    parser.add_argument("--serve", action="store_true", help="keep the swarm up until Ctrl-C")
    parser.add_argument(
        "--pace", type=float, default=5.0, help="seconds between Helios's cycles (default 5)"
    )
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.add_argument(
        "--report-dir", default="demo-report", help="where the reports go (default demo-report/)"
    )
    parser.add_argument("--monitor-interval", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--timeout", type=float, default=30.0, help="bound of every wait (s)")
    parser.add_argument("--state-dir", help="agent state (default: a fresh temporary directory)")
    parser.add_argument("--verbose", action="store_true", help="the agent's INFO logs too")
    args = parser.parse_args()
    setup_logging("INFO" if args.verbose else "WARNING", "text")

    async def run_async(state_dir: Path) -> tuple[Progress, dict[str, Any]]:
        stopping = asyncio.Event()  # Ctrl-C: finish the current tasks, write the reports
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        return await demo(args, state_dir, stopping)

    def run(state_dir: Path) -> int:
        progress, learned = asyncio.run(run_async(state_dir))
        pages = write_reports(progress, Path(args.report_dir).resolve())
        print(summary(progress, learned, pages))
        return 0 if len(progress.results) == len(TaskType) else 1

    if args.state_dir:
        return run(Path(args.state_dir))
    with tempfile.TemporaryDirectory(prefix="prometheus-backend-demo-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    logging.captureWarnings(True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
