"""``status``: every agent on the bus, found through the NATS micro ``$SRV`` discovery."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

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

SERVICE_PROTOCOL = "swarm/v1"
"""The ``protocol`` metadata our service announces; other micro services on the bus are
listed only with --all."""


async def gather(subject: str, nc: Any, wait: float) -> list[dict[str, Any]]:
    """Every reply to one discovery request within ``wait`` seconds (micro answers fan in)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    await nc.flush()
    answers: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    try:
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except TimeoutError:
                break
            try:
                answers.append(dict(orjson.loads(msg.data)))
            except (orjson.JSONDecodeError, TypeError, ValueError):
                continue  # not a micro service's answer: not ours to list
    finally:
        await sub.unsubscribe()
    return answers


async def discover(
    settings: Settings, servers: list[str], name: str | None, wait: float
) -> list[dict[str, Any]] | None:
    """INFO and STATS of every service instance (of ``name``), merged by instance id."""
    nc = await open_connection(settings, servers, wait)
    if nc is None:
        return None
    try:
        suffix = f".{name}" if name else ""
        infos, stats = await asyncio.gather(
            gather(f"$SRV.INFO{suffix}", nc, wait), gather(f"$SRV.STATS{suffix}", nc, wait)
        )
    finally:
        await nc.close()
    by_id: dict[str, dict[str, Any]] = {i["id"]: dict(i) for i in infos if "id" in i}
    for s in stats:
        if "id" in s:
            by_id.setdefault(s["id"], {}).update(
                {"started": s.get("started"), "stats": s.get("endpoints", [])}
            )
    return sorted(by_id.values(), key=lambda s: (s.get("name", ""), s.get("id", "")))


def _counters(instance: dict[str, Any]) -> dict[str, Any]:
    """The agent's own counters, which every endpoint's STATS data carries."""
    for endpoint in instance.get("stats", []):
        data = endpoint.get("data")
        if isinstance(data, dict):
            return data
    return {}


def render(instances: list[dict[str, Any]]) -> str:
    lines = [
        f"{'agent':<20} {'instance':<24} {'version':<8} {'started':<20} "
        f"{'done':>6} {'failed':>6} {'rejected':>8} {'in flight':>9} {'rpc':>6}"
    ]
    for inst in instances:
        c = _counters(inst)
        rpc = sum(int(e.get("num_requests", 0)) for e in inst.get("stats", []))
        started = str(inst.get("started") or "")[:19]
        lines.append(
            f"{inst.get('name', '?'):<20} {inst.get('id', '?'):<24} "
            f"{inst.get('version', '?'):<8} {started:<20} {c.get('completed', '-'):>6} "
            f"{c.get('failed', '-'):>6} {c.get('rejected', '-'):>8} "
            f"{c.get('in_flight', '-'):>9} {rpc:>6}"
        )
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """List the agents on the bus ($SRV.INFO and $SRV.STATS) with their counters.

    Every instance of every agent answers, so replicas show one line each. Exit 0 when at
    least one agent answered, 1 when none did or NATS is unreachable, 2 without NATS_URL.
    """
    settings = load_settings()
    if not settings.servers:
        raise UsageError("status needs a running swarm: set NATS_URL")
    found = asyncio.run(discover(settings, settings.servers, args.agent, args.wait))
    if found is None:
        return EXIT_FAILURE
    if not args.all:
        found = [i for i in found if (i.get("metadata") or {}).get("protocol") == SERVICE_PROTOCOL]
    if args.json:
        print_json(found)
    elif found:
        print(render(found))
    if not found:
        print("no agent answered on $SRV.INFO", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "status", cmd_status)
    parser.add_argument("--agent", help="only this agent id (default: every agent)")
    parser.add_argument("--all", action="store_true", help="also other NATS micro services")
    parser.add_argument("--wait", type=float, default=1.0, help="seconds to collect answers")
    parser.add_argument("--json", action="store_true", help="print the instances as JSON")
