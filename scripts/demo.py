"""The README's first command: the agent on an embedded nats-server, one demo task, the report.

The backend here is simulated (a seeded random workload with a slowly degrading database,
clearly labelled as such); everything in the printed report is computed by the agent from
those samples. Helios's part is played with bare nats-py, as any peer would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import numpy as np
import swarm_sim  # scripts/ is on the path when this file runs

from agent.config import Settings
from agent.reports.text import render_text
from agent.runtime.node import AgentNode
from agent.telemetry.logs import setup_logging


def simulated_backend(minutes: int, seed: int, end: datetime) -> dict[str, list[list[Any]]]:
    """One sample a minute of a backend whose database slowly degrades under a rising load."""
    rng = np.random.default_rng(seed)
    t = np.arange(minutes, dtype=float)
    load = 420 + 60 * t / minutes + rng.normal(0, 15, minutes)  # req/s, growing
    db_ms = 38 + 30 * (t / minutes) ** 2 + rng.gamma(2.0, 2.5, minutes)  # queries slow down
    cache_hit = np.clip(93 - 2 * t / minutes + rng.normal(0, 0.6, minutes), 0, 100)
    api_ms = 25 + 1.6 * db_ms + (100 - cache_hit) * 1.5 + rng.gamma(2.0, 6.0, minutes)
    errors = np.clip(0.3 + 0.02 * np.maximum(api_ms - 100, 0) + rng.normal(0, 0.1, minutes), 0, 100)
    availability = np.clip(100 - errors * 0.4 + rng.normal(0, 0.02, minutes), 0, 100)
    cpu = np.clip(35 + 0.07 * load + rng.normal(0, 3, minutes), 0, 100)
    memory = np.clip(61 + 8 * t / minutes + rng.normal(0, 1, minutes), 0, 100)
    stamps = [
        (end - timedelta(minutes=minutes - 1 - i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i in range(minutes)
    ]

    def pairs(values: np.ndarray) -> list[list[Any]]:
        return [[ts, round(float(v), 3)] for ts, v in zip(stamps, values, strict=True)]

    return {
        "api_response_time": pairs(api_ms),
        "api_throughput": pairs(load),
        "api_availability": pairs(availability),
        "error_rate": pairs(errors),
        "database_query_time": pairs(db_ms),
        "redis_cache_hit": pairs(cache_hit),
        "cpu_utilization": pairs(cpu),
        "memory_utilization": pairs(memory),
    }


async def demo(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.state_dir:
        overrides["state_dir"] = Path(args.state_dir)
    settings = Settings(**overrides)
    async with AgentNode(settings) as node:
        nc = await nats.connect(node.url)  # Helios's side: bare nats-py
        try:
            now = datetime.now(UTC)
            task = {
                "schema": "task_request/v1",
                "task_id": f"demo-{uuid.uuid4().hex[:12]}",
                "task_type": "api_optimization",
                "issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "issuer": "demo-helios",
                "reply_to": nc.new_inbox(),
                "params": {
                    "window": "1h",
                    "metrics": simulated_backend(args.minutes, args.seed, now),
                },
            }
            replies = await nc.subscribe(task["reply_to"])
            js = nc.jetstream()
            subject = f"swarm.tasks.{settings.agent_id}.api_optimization"
            ack = await js.publish(subject, json.dumps(task).encode())
            print(
                f"sent task {task['task_id']} to {subject} (stream {ack.stream}, seq {ack.seq}) "
                f"with {args.minutes} minutes of simulated samples for 8 metrics",
                file=sys.stderr,
            )
            msg = await replies.next_msg(timeout=args.timeout)
            result = json.loads(msg.data)
        finally:
            await nc.drain()
        print(render_text(result))
        if args.json:
            print(json.dumps(result, indent=2))
        if args.rounds > 0:
            print(
                f"\nclosed loop: {args.rounds} rounds of Helios → plan → Hephaestus applies → "
                "Athena verifies → the agent calibrates (scripts/swarm_sim.py)",
            )
            print(swarm_sim.format_truth())
            print(swarm_sim.HEADER)
            stats = await swarm_sim.run_loop(
                node.url,
                settings.agent_id,
                settings.hephaestus_id,
                settings.athena_id,
                rounds=args.rounds,
                seed=args.seed,
                on_round=lambda s: print(swarm_sim.format_row(s), flush=True),
            )
            first, last = stats[0], stats[-1]
            print(
                f"prediction error {first.prediction_error_pct:.1f} % → "
                f"{last.prediction_error_pct:.1f} %, accuracy {last.accuracy_pct:.0f} % "
                f"in round {last.round}"
            )
    return 0 if result["status"] == "completed" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=60, help="simulated history (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="workload seed (default 7)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a result")
    parser.add_argument("--json", action="store_true", help="also print the raw task_result")
    parser.add_argument(
        "--rounds", type=int, default=6, help="closed-loop learning rounds after it (default 6)"
    )
    parser.add_argument("--state-dir", help="agent state (default: a fresh temporary directory)")
    args = parser.parse_args()
    setup_logging("INFO", "text")
    if not args.state_dir:
        with tempfile.TemporaryDirectory(prefix="prometheus-backend-demo-") as tmp:
            args.state_dir = tmp
            return asyncio.run(demo(args))
    return asyncio.run(demo(args))


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
