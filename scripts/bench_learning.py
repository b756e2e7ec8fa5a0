"""Benchmark of the learning loop (not a test): how much does the strategist learn, honestly?

Runs the closed loop of ``scripts/swarm_sim.py`` for N rounds (default 20) against an
embedded nats-server and an in-process agent, both fresh. The world's truth comes from
``scripts/sim_truth.py`` (no agent code, no playbook prior): effects depend on each
backend's drifting state, some approaches work only part of the time, one hurts at low
load, and outcomes are heavy-tailed. Per round it prints, as a Markdown table, the mean
absolute error (percentage points) of predicted vs measured improvement for three
predictors over that round's verifications:

- **agent**: the ``expected_improvement_pct`` the agent published;
- **prior**: the playbook's expected figure, what the agent predicts with no verification
  (``agent.planning.prioritize.prior``; equal to the agent's round-1 predictions);
- **pair mean**: the mean actual improvement of the same (approach, metric) in earlier
  rounds (the prior until there is one): the best a learner that ignores the backend's
  state can do with the same evidence, so ``agent − pair mean`` is what the calibrator
  leaves on the table and ``pair mean − oracle`` is the price of ignoring the state;
- **oracle**: the TRUE mean effect in the state each item met, from the truth module: the
  error no predictor can beat (what is left is the roll-out's own noise).

plus the share of single outcomes inside the agent's [low, high] and the intervals' mean
width. Then the same pooled over the last five rounds (16–20 by default) and the first
five, a per-approach breakdown of the last five, and ``learnt``: the share of the gap
between the prior-only error and the oracle's that the agent closed. Everything goes to
``--json`` (default reports/bench_learning.json), with the old relative-error goal's
figures (``LEGACY_GOAL``) for ``scripts/bench.py``'s summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarm_sim import (
    Outcome,
    RoundStats,
    Scores,
    approach_summary,
    format_truth,
    run_embedded,
    score,
    truth_table,
)

LEGACY_GOAL = "legacy goal: relative error < 15 % and direction accuracy > 90 % within 10 rounds"
"""The old goal, still computed (honestly, on the new world) because ``scripts/bench.py``
reads ``prediction_error_pct``, ``accuracy_pct``, ``goal_met`` and ``met_from_round``."""
SUMMARY_ROUNDS = 5
"""The summary pools the last (and the first) this many rounds."""
TABLE_HEADER = (
    "| round | n | agent MAE pp | prior MAE pp | pair-mean MAE pp | oracle MAE pp "
    "| coverage % | width pp | calibrated |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _f(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1f}"


class PairMean:
    """The context-blind learner: per (approach, metric), the mean of earlier actuals."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str], tuple[float, int]] = {}

    def predict(self, o: Outcome) -> float:
        total, n = self.sums.get((o.approach, o.metric), (0.0, 0))
        return total / n if n else o.prior_pct

    def errors(self, s: RoundStats) -> list[float]:
        """This round's errors (pp), then this round's outcomes learnt (as the agent does)."""
        out = [abs(self.predict(o) - o.actual_pct) for o in s.outcomes]
        for o in s.outcomes:
            total, n = self.sums.get((o.approach, o.metric), (0.0, 0))
            self.sums[(o.approach, o.metric)] = (total + o.actual_pct, n + 1)
        return out


def _mae(errors: Sequence[float]) -> float:
    return round(sum(errors) / len(errors), 2) if errors else float("nan")


def table_row(label: str, sc: Scores, pair_mean_pp: float, calibrated: str = "") -> str:
    return (
        f"| {label} | {sc.n} | {_f(sc.agent_mae_pp)} | {_f(sc.prior_mae_pp)} "
        f"| {_f(pair_mean_pp)} | {_f(sc.oracle_mae_pp)} | {_f(sc.coverage_pct)} "
        f"| {_f(sc.width_pp)} | {calibrated} |"
    )


def pooled(stats: Sequence[RoundStats]) -> Scores:
    outcomes: list[Outcome] = [o for s in stats for o in s.outcomes]
    return score(outcomes)


def learnt_share(sc: Scores) -> float:
    """Share of the prior-only error above the oracle's floor that the agent removed."""
    gap = sc.prior_mae_pp - sc.oracle_mae_pp
    if math.isnan(gap) or gap <= 0.0:
        return float("nan")
    return round((sc.prior_mae_pp - sc.agent_mae_pp) / gap, 3)


def legacy_met_from(stats: Sequence[RoundStats]) -> int | None:
    """First round of the final streak meeting the legacy goal (None: the last does not)."""
    first = None
    for s in reversed(stats):
        if not (s.prediction_error_pct < 15.0 and s.accuracy_pct > 90.0):
            break
        first = s.round
    return first


def _finite(x: Any) -> Any:
    """``x`` with every NaN replaced by None: strict JSON has no NaN."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def span(stats: Sequence[RoundStats]) -> str:
    return f"rounds {stats[0].round}–{stats[-1].round}" if stats else "no rounds"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="closed-loop rounds (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="bound of every wait (s)")
    parser.add_argument("--json", default="reports/bench_learning.json", help="output file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    print("TRUE mean effects of the simulated world (%):\n" + format_truth() + "\n", flush=True)
    print(TABLE_HEADER, flush=True)
    pair_mean = PairMean()
    pair_errors: dict[int, list[float]] = {}

    def on_round(s: RoundStats) -> None:
        pair_errors[s.round] = pair_mean.errors(s)
        row = table_row(
            str(s.round),
            score(s.outcomes),
            _mae(pair_errors[s.round]),
            f"{s.calibrated}/{s.recommendations}",
        )
        print(row, flush=True)

    started = time.perf_counter()
    stats = asyncio.run(
        run_embedded(rounds=args.rounds, seed=args.seed, timeout=args.timeout, on_round=on_round)
    )
    elapsed = time.perf_counter() - started

    last, first = stats[-SUMMARY_ROUNDS:], stats[:SUMMARY_ROUNDS]
    late, early = pooled(last), pooled(first)
    late_pair = _mae([e for s in last for e in pair_errors[s.round]])
    early_pair = _mae([e for s in first for e in pair_errors[s.round]])
    print(table_row(f"**{span(last)}**", late, late_pair))
    print(table_row(f"*{span(first)}*", early, early_pair))
    print(
        f"\n{span(last)}: agent {_f(late.agent_mae_pp)} pp, prior-only {_f(late.prior_mae_pp)} pp, "
        f"pair mean {_f(late_pair)} pp, oracle {_f(late.oracle_mae_pp)} pp; coverage "
        f"{_f(late.coverage_pct)} % at width {_f(late.width_pp)} pp; learnt "
        f"{_f(100.0 * learnt_share(late))} % of the gap prior → oracle (n={late.n})"
    )

    per_pair = approach_summary(stats, last=SUMMARY_ROUNDS)
    print(f"\nper approach, {span(last)} (mean %):\n")
    print(
        "| approach | metric | n | prior | agent | actual | true (min…max) "
        "| agent MAE | oracle MAE |\n|---|---|---:|---:|---:|---:|---|---:|---:|"
    )
    for row in per_pair:
        print(
            f"| {row['approach']} | {row['metric']} | {row['n']} | {row['prior_pct']:.1f} "
            f"| {row['predicted_pct']:.1f} | {row['actual_pct']:.1f} | {row['true_pct']:.1f} "
            f"({row['true_min_pct']:.1f}…{row['true_max_pct']:.1f}) "
            f"| {row['agent_mae_pp']:.1f} | {row['oracle_mae_pp']:.1f} |"
        )
    print(f"\n{elapsed:.1f} s for {len(stats)} rounds, seed {args.seed}")

    met_from = legacy_met_from(stats)
    report: dict[str, Any] = {
        "benchmark": "learning",
        "run_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": args.seed,
        "rounds": len(stats),
        "elapsed_s": round(elapsed, 3),
        "goal": LEGACY_GOAL,
        "goal_met": met_from is not None and met_from <= 10,
        "met_from_round": met_from,
        "prediction_error_pct": [s.prediction_error_pct for s in stats],
        "accuracy_pct": [s.accuracy_pct for s in stats],
        "per_round": [
            {
                "round": s.round,
                "calibrated": s.calibrated,
                **asdict(score(s.outcomes)),
                "pair_mean_mae_pp": _mae(pair_errors[s.round]),
            }
            for s in stats
        ],
        "last_rounds": {
            "span": span(last),
            **asdict(late),
            "pair_mean_mae_pp": late_pair,
            "learnt_share": learnt_share(late),
        },
        "first_rounds": {"span": span(first), **asdict(early), "pair_mean_mae_pp": early_pair},
        "per_approach_last_rounds": per_pair,
        "true_effects": truth_table(),
        "outcomes": [
            {"round": s.round, **asdict(o), "covered": o.covered} for s in stats for o in s.outcomes
        ],
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
