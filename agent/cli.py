"""``prometheus-backend`` — the command line. Exit codes: 0 ok, 1 failure, 2 usage, 3 NATS lost."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from agent import __version__
from agent.config import Settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NATS_LOST = 0, 1, 2, 3


def _settings() -> Settings:
    try:
        return Settings()
    # SettingsError: an env value that is not valid JSON; TOMLDecodeError: a broken config file
    except (ValidationError, SettingsError, tomllib.TOMLDecodeError) as exc:
        print(f"invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def cmd_config(args: argparse.Namespace) -> int:
    """Print the effective configuration, secrets masked."""
    print(json.dumps(_settings().masked(), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    """Write the JSON Schema of every message (stdout or a file)."""
    from protocols import json_schemas

    text = json.dumps(json_schemas(), indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


async def serve(settings: Settings) -> int:
    """Run the agent until SIGTERM/SIGINT (exit 0) or until NATS is lost for good (exit 3)."""
    from agent.runtime.node import AgentNode

    async with AgentNode(settings) as node:
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
    """Run the agent (embedded nats-server when NATS_URL is unset)."""
    from agent.telemetry.logs import setup_logging
    from agent.telemetry.tracing import setup_tracing

    settings = _settings()
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


async def _learning(settings: Settings, action: str) -> dict[str, Any]:
    from agent.learning.effectiveness import effectiveness
    from agent.runtime.connection import connect
    from agent.runtime.learning import LearningStore

    nc = await connect(settings, settings.servers)
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
    """Show what verified outcomes taught (``show``), or rebuild it from the event log."""
    settings = _settings()
    if not settings.servers:
        print("learning needs a running swarm: set NATS_URL", file=sys.stderr)
        return EXIT_USAGE
    settings = settings.model_copy(update={"nats_start_retry_max_s": 10.0})
    result = asyncio.run(_learning(settings, args.action))
    if args.json or args.action == "rebuild":
        print(json.dumps(result, indent=2, sort_keys=True))
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


async def _ping(settings: Settings, servers: list[str], subject: str, timeout: float) -> bool:
    import nats

    from agent.runtime.connection import connect_options

    async def quiet(exc: Exception) -> None:  # the one line below says it all
        return None

    options = {**connect_options(settings, servers), "allow_reconnect": False}
    options |= {"connect_timeout": timeout, "error_cb": quiet}
    try:  # nats-py may keep retrying a refused first connect: bound it ourselves
        nc = await asyncio.wait_for(nats.connect(**options), timeout * 2)
    except Exception as exc:
        print(f"NATS not reachable at {','.join(servers)}: {exc!r}", file=sys.stderr)
        return False
    try:
        reply = await nc.request(subject, b"", timeout=timeout)
        answer = json.loads(reply.data)
        print(json.dumps(answer))
        return bool(answer.get("name") == settings.agent_id)
    except Exception as exc:
        print(f"no answer on {subject}: {exc!r}", file=sys.stderr)
        return False
    finally:
        await nc.close()


def cmd_ping(args: argparse.Namespace) -> int:
    """Ask the agent's service ($SRV.PING) whether it serves; with --self, this instance only.

    Exit 0 when it answers, 1 when it does not. For readiness and health probes.
    """
    settings = _settings()
    servers = settings.servers
    subject = f"$SRV.PING.{settings.agent_id}"
    if args.self:
        path = settings.state_dir / "service.json"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"this instance is not serving (no {path})", file=sys.stderr)
            return EXIT_FAILURE
        subject = f"$SRV.PING.{info['agent_id']}.{info['service_id']}"
        servers = servers or [info["url"]]
    if not servers:
        print("ping needs NATS_URL (or --self on a running instance)", file=sys.stderr)
        return EXIT_USAGE
    ok = asyncio.run(_ping(settings, servers, subject, args.timeout))
    return EXIT_OK if ok else EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prometheus-backend",
        description="The strategist of a backend-optimisation swarm on NATS.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage or configuration error, "
        "3 NATS connection lost for good.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help=cmd_run.__doc__, description=cmd_run.__doc__)
    run.set_defaults(func=cmd_run)
    config = sub.add_parser("config", help=cmd_config.__doc__, description=cmd_config.__doc__)
    config.set_defaults(func=cmd_config)
    schema = sub.add_parser("schema", help=cmd_schema.__doc__, description=cmd_schema.__doc__)
    schema.add_argument("-o", "--output", help="file to write (default: stdout)")
    schema.set_defaults(func=cmd_schema)
    ping = sub.add_parser(
        "ping", help="is the agent serving? (exit 0/1)", description=cmd_ping.__doc__
    )
    ping.add_argument("--self", action="store_true", help="this instance (its state dir)")
    ping.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    ping.set_defaults(func=cmd_ping)
    learning = sub.add_parser(
        "learning", help=cmd_learning.__doc__, description=cmd_learning.__doc__
    )
    learning.add_argument("action", choices=("show", "rebuild"))
    learning.add_argument("--json", action="store_true", help="print the figures as JSON")
    learning.set_defaults(func=cmd_learning)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
