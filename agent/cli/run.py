"""``run``: the agent itself, until SIGTERM/SIGINT or until NATS is lost for good."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from agent.cli.common import (
    EXIT_FAILURE,
    EXIT_NATS_LOST,
    EXIT_OK,
    Subparsers,
    add_command,
    load_settings,
)
from agent.config import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> int:
    """Run the agent until SIGTERM/SIGINT (exit 0) or until NATS is lost for good (exit 3)."""
    from agent.runtime.gc_tuning import tune_gc
    from agent.runtime.node import AgentNode

    async with AgentNode(settings) as node:
        tune_gc()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, node.stop)
        await node.wait()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if node.fatal:
        log.error("exiting: %s", node.fatal)
        return EXIT_NATS_LOST
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the agent (on an embedded nats-server when NATS_URL is unset).

    Configuration comes from the environment and the config file (see `config`).
    SIGTERM or SIGINT drain in-flight tasks and exit 0; exit 3 when NATS is lost for good.
    """
    from agent.telemetry.logs import setup_logging
    from agent.telemetry.tracing import setup_tracing

    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    provider = setup_tracing(settings.otel_exporter, settings.agent_id, settings.otel_endpoint)
    try:
        return asyncio.run(serve(settings))
    except Exception as exc:  # e.g. refused credentials: say so in one line, exit non-zero
        log.error("agent stopped: %r", exc)
        return EXIT_FAILURE
    finally:
        if provider is not None:
            provider.shutdown()


def register(sub: Subparsers) -> None:
    add_command(sub, "run", cmd_run)
