"""``learning``: what verified outcomes taught the agent, read from the swarm's KV store."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import msgspec

from agent.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    load_settings,
    print_json,
)
from agent.cli.nats import open_connection
from agent.config import Settings


async def _learning(settings: Settings, action: str) -> dict[str, Any] | None:
    from agent.learning.effectiveness import effectiveness, learned_model
    from agent.runtime.learning import LearningStore

    nc = await open_connection(settings, settings.servers, settings.nats_connect_timeout_s)
    if nc is None:
        return None
    try:
        store = await LearningStore.open(nc.jetstream(), settings)
        if action == "rebuild":
            state = await store.rebuild()
            return {
                "rebuilt": True,
                "summaries": len(state.summaries),
                "plans": len(state.plans),
                "infeasible": state.infeasible,
                "effectiveness": msgspec.to_builtins(effectiveness(state)),
                "model": learned_model(state),
            }
        state = await store.snapshot()
        return {**msgspec.to_builtins(effectiveness(state)), "model": learned_model(state)}
    finally:
        await nc.drain()


def cmd_learning(args: argparse.Namespace) -> int:
    """Show what verified outcomes taught (show), or rebuild it from the event log (rebuild).

    Needs NATS_URL: the learning state lives in the swarm's JetStream KV bucket. Exit 1
    when NATS cannot be reached.
    """
    settings = load_settings()
    if not settings.servers:
        raise UsageError("learning needs a running swarm: set NATS_URL")
    result = asyncio.run(_learning(settings, args.action))
    if result is None:
        return EXIT_FAILURE
    if args.json or args.action == "rebuild":
        print_json(result)
        return EXIT_OK
    for name in (
        "recommendation_accuracy",
        "prediction_error_mape",
        "implemented_share",
        "rejected_share",
        "plans_verified_share",
    ):
        figure = result.get(name)
        if isinstance(figure, dict):
            value = figure.get("value")
            shown = "n/a" if value is None else f"{value:.3g}"
            print(f"{name:<28} {shown:>8}  {figure.get('basis') or figure.get('reason', '')}")
    print(f"{'verifications':<28} {result.get('verifications', 0):>8}")
    _print_model(result.get("model"))
    return EXIT_OK


def _print_model(model: Any) -> None:
    """Per approach and metric: the fitted dependence on state and the coverage so far."""
    pairs = model.get("pairs") if isinstance(model, dict) else None
    if not pairs:
        return
    print(
        "\nfitted effect (ratio to the playbook figure = intercept + miss·x + load·x, ± 1 sd) "
        "and coverage of single outcomes:"
    )
    print(
        f"{'approach':<26} {'metric':<22} {'n':>4} {'intercept':>13} {'miss':>13} "
        f"{'load':>13} {'noise':>6} {'coverage':>9} {'width pp':>8}"
    )
    for p in pairs:
        c = p["coefficients"]
        terms = [f"{c[k]['mean']:+.2f}±{c[k]['sd']:.2f}" for k in ("intercept", "miss", "load")]
        cov = p["coverage"]
        covered = (
            "n/a" if cov["value"] is None else f"{100 * cov['value']:.0f}% /{cov['denominator']}"
        )
        width = "n/a" if p["mean_width_pp"] is None else f"{p['mean_width_pp']:.1f}"
        print(
            f"{p['approach']:<26} {p['metric']:<22} {p['verifications']:>4} {terms[0]:>13} "
            f"{terms[1]:>13} {terms[2]:>13} {p['noise_sd']:>6.2f} {covered:>9} {width:>8}"
        )


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "learning", cmd_learning)
    parser.add_argument("action", choices=("show", "rebuild"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
