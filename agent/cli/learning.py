"""``learning``: what verified outcomes taught the agent, read from the swarm's KV store."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

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
    from agent.learning.effectiveness import effectiveness
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
                "effectiveness": effectiveness(state),
            }
        return effectiveness(await store.snapshot())
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
    return EXIT_OK


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "learning", cmd_learning)
    parser.add_argument("action", choices=("show", "rebuild"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
