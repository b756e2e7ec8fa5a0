"""Benchmark of the learning loop (not a test): does the strategist learn from verified outcomes?

Runs the closed loop of ``scripts/swarm_sim.py`` for N rounds (default 10) against an
embedded nats-server and an in-process agent, both fresh: Helios sends tasks, Hephaestus
rolls the plans out on a simulated backend whose TRUE effects differ from the playbook's
priors (mostly half of them; see swarm_sim's docstring), Athena verifies. Prints the
prediction error and the recommendation accuracy per round, and whether the goal was met;
writes everything to ``--json`` (default reports/bench_learning.json).

The goal is met from round r when every round from r to the last has an error under 15 %
and an accuracy over 90 %, with r ≤ 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarm_sim import (
    HEADER,
    RoundStats,
    approach_summary,
    format_row,
    format_truth,
    run_embedded,
    stats_json,
    truth_table,
)

GOAL = (
    "goal: prediction error < 15 % and accuracy > 90 % within 10 rounds "
    "from priors that start ~2× off"
)
MAX_ERROR_PCT = 15.0
MIN_ACCURACY_PCT = 90.0
WITHIN_ROUNDS = 10


def meets(s: RoundStats) -> bool:
    return s.prediction_error_pct < MAX_ERROR_PCT and s.accuracy_pct > MIN_ACCURACY_PCT


def met_from(stats: list[RoundStats]) -> int | None:
    """The first round of the final streak of rounds that all meet the goal (None: the last
    round does not)."""
    first = None
    for s in reversed(stats):
        if not meets(s):
            break
        first = s.round
    return first


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10, help="closed-loop rounds (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="bound of every wait (s)")
    parser.add_argument("--json", default="reports/bench_learning.json", help="output file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    print("TRUE effects of the simulated backend:\n" + format_truth() + "\n", flush=True)
    print(HEADER, flush=True)
    started = time.perf_counter()
    stats = asyncio.run(
        run_embedded(
            rounds=args.rounds,
            seed=args.seed,
            timeout=args.timeout,
            on_round=lambda s: print(format_row(s), flush=True),
        )
    )
    elapsed = time.perf_counter() - started

    first = met_from(stats)
    met = first is not None and first <= WITHIN_ROUNDS
    print("\npredicted vs actual improvement (%), last two rounds:")
    for row in approach_summary(stats):
        print(
            f"  {row['approach']:<26} {row['metric']:<22} n={row['n']:<2} "
            f"predicted {row['predicted_pct']:>7.1f}  actual {row['actual_pct']:>7.1f}  "
            f"true {row['true_pct']:>7.1f}"
        )
    print()
    print(
        "prediction error per round (%): "
        + ", ".join(f"{s.prediction_error_pct:.1f}" for s in stats)
    )
    print("accuracy per round (%):         " + ", ".join(f"{s.accuracy_pct:.1f}" for s in stats))
    print(GOAL)
    verdict = f"met from round {first}" if met else "NOT met"
    last = stats[-1]
    print(
        f"result: {verdict} (last round: error {last.prediction_error_pct:.1f} %, "
        f"accuracy {last.accuracy_pct:.1f} %, noise floor {last.oracle_error_pct:.1f} %; "
        f"{elapsed:.1f} s for {len(stats)} rounds)"
    )

    report: dict[str, Any] = {
        "benchmark": "learning",
        "run_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "goal": GOAL,
        "goal_met": met,
        "met_from_round": first,
        "seed": args.seed,
        "rounds": len(stats),
        "elapsed_s": round(elapsed, 3),
        "prediction_error_pct": [s.prediction_error_pct for s in stats],
        "accuracy_pct": [s.accuracy_pct for s in stats],
        "true_effects": truth_table(),
        "last_two_rounds": approach_summary(stats),
        "per_round": stats_json(stats),
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
