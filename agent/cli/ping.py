"""``ping``: is the agent serving? For readiness and health probes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from agent.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    load_settings,
)
from agent.cli.nats import open_connection
from agent.config import Settings


async def _ping(settings: Settings, servers: list[str], subject: str, timeout: float) -> bool:
    nc = await open_connection(settings, servers, timeout)
    if nc is None:
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

    Exit 0 when it answers, 1 when it does not. --self reads this instance's state dir, so a
    probe needs no NATS_URL.
    """
    settings = load_settings()
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
        raise UsageError("ping needs NATS_URL (or --self on a running instance)")
    ok = asyncio.run(_ping(settings, servers, subject, args.timeout))
    return EXIT_OK if ok else EXIT_FAILURE


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "ping", cmd_ping)
    parser.add_argument("--self", action="store_true", help="this instance (its state dir)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
