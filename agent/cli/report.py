"""``report``: a task result for people — Markdown, or one self-contained HTML page with charts."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

import msgspec

from agent.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    load_settings,
    read_input,
)
from agent.cli.nats import open_connection
from agent.cli.output import FORMATS, show_result
from agent.config import Settings
from protocols import ProtocolError, TaskResult, TaskType, decode, subjects

MONITOR = "monitor"
"""``--latest monitor``: the monitor's periodic summary (``swarm.results.<agent>.monitor``)."""
_TASK_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class NotAResult(ValueError):
    """Bytes that are not a ``task_result/v1``."""


class Unreachable(Exception):
    """NATS or JetStream did not answer (already said on stderr)."""


def parse_result(data: bytes) -> TaskResult:
    """A ``task_result/v1``, decoded once into typed objects (its report an
    ``AnalysisReport`` or a ``PlanningReport``); ``NotAResult`` says why it is not one.

    Fields a newer agent added are ignored; a report from an agent older than the
    report's ``kind`` tag is tagged by its fields (``protocols.codec``).
    """
    try:
        return decode(TaskResult, data)
    except ProtocolError as exc:
        raise NotAResult(f"not a task_result/v1 ({exc.code}): {exc.message}") from None


def read_file(path: str) -> TaskResult:
    """The result in ``path`` (``-``: stdin); unreadable or not a result → UsageError."""
    data = read_input(path)
    try:
        return parse_result(data)
    except NotAResult as exc:
        raise UsageError(f"{'stdin' if path == '-' else path} is {exc}") from None


async def _from_records(js: Any, settings: Settings, task_id: str) -> bytes | None:
    """The answer the agent recorded for ``task_id`` (its TASKS_DONE KV bucket)."""
    from nats.js.errors import NotFoundError

    from agent.runtime.task_records import TaskRecord, record_key

    try:
        kv = await js.key_value(settings.tasks_bucket)
        entry = await kv.get(record_key(task_id))
    except NotFoundError:  # no bucket, no key, or a deleted one
        return None
    if not entry.value:
        return None
    record = msgspec.json.decode(entry.value, type=TaskRecord)
    return bytes(record.result)


async def _latest(js: Any, settings: Settings, task_type: str) -> bytes | None:
    """The newest result on the results stream, of ``task_type`` or (``""``) of any task type.

    One last-message lookup per subject; without a type the task types' newest results
    are compared by ``completed_at`` (the monitor's summaries are left out: ask for them
    with ``monitor``).
    """
    from nats.js.errors import NotFoundError

    agent = settings.agent_id
    if task_type == MONITOR:
        wanted = [subjects.monitor_results(agent)]
    elif task_type:
        wanted = [subjects.results(agent, task_type)]
    else:
        wanted = [subjects.results(agent, t) for t in TaskType]
    found: list[tuple[str, int, bytes]] = []
    for subject in wanted:
        try:
            stream = await js.find_stream_name_by_subject(subject)
            msg = await js.get_last_msg(stream, subject)
        except NotFoundError:
            continue
        try:
            completed = str(json.loads(msg.data).get("completed_at") or "")
        except (ValueError, AttributeError):
            completed = ""
        found.append((completed, int(msg.seq or 0), bytes(msg.data)))
    return max(found)[2] if found else None


def where(settings: Settings, task_id: str | None, latest: str | None) -> str:
    if task_id:
        return f"task {task_id} in KV bucket {settings.tasks_bucket}"
    return f"results of {latest or 'any task type'} of agent {settings.agent_id}"


async def fetch(
    settings: Settings, *, task_id: str | None, latest: str | None, timeout: float
) -> bytes | None:
    """The result's bytes, None when there is none; ``Unreachable`` after saying why."""
    from nats.errors import Error as NatsError

    nc = await open_connection(settings, settings.servers, timeout)
    if nc is None:
        raise Unreachable
    try:
        js = nc.jetstream(timeout=timeout)
        lookup = (
            _from_records(js, settings, task_id) if task_id else _latest(js, settings, latest or "")
        )
        return await asyncio.wait_for(lookup, timeout * 4)
    except (TimeoutError, NatsError) as exc:
        looked = where(settings, task_id, latest)
        print(f"JetStream did not answer ({looked}): {exc!r}", file=sys.stderr)
        raise Unreachable from None
    finally:
        await nc.close()


def _source(args: argparse.Namespace) -> str:
    chosen = [
        name
        for name, given in (
            ("FILE", args.file is not None),
            ("--task-id", args.task_id is not None),
            ("--latest", args.latest is not None),
        )
        if given
    ]
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one of FILE, --task-id or --latest"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    return chosen[0]


def cmd_report(args: argparse.Namespace) -> int:
    """Render a task result for people: Markdown, or one HTML page with charts.

    The result is read from FILE (a task_result/v1 JSON file; "-" reads stdin), from the
    agent's record of a task (--task-id ID, over NATS), or from the results stream
    (--latest [TASK_TYPE]: the newest result of that task type, or of any when none is
    named; "monitor" for the monitor's summary). --task-id and --latest need NATS_URL.

    Markdown goes to stdout unless -o names a file. --format html writes one
    self-contained page (plotly.js embedded, works offline): metrics against their targets
    with trend lines, the bottleneck ranking, and for a plan the phased roadmap and the
    capacity projection; by default to report-<task_id>.html in the current directory.

    Exit 1 when the result is not found (or NATS is unreachable), 2 when FILE is
    unreadable or not a task result.
    """
    source = _source(args)
    if source == "FILE":
        result = read_file(args.file)
    else:
        if args.task_id is not None and not _TASK_ID.match(args.task_id):
            raise UsageError(f"--task-id {args.task_id!r} is not a task id")
        latest = args.latest
        if latest and latest != MONITOR and TaskType.parse(latest) is None:
            raise UsageError(
                f"--latest {latest!r}: not a task type ({', '.join(TaskType)} or {MONITOR})"
            )
        settings = load_settings()
        if not settings.servers:
            raise UsageError(f"{source} reads the swarm's results: set NATS_URL")
        if args.agent:
            settings = settings.model_copy(update={"agent_id": args.agent})
        try:
            data = asyncio.run(
                fetch(settings, task_id=args.task_id, latest=latest, timeout=args.timeout)
            )
        except Unreachable:
            return EXIT_FAILURE
        looked = where(settings, args.task_id, latest)
        if data is None:
            print(f"no result found: {looked}", file=sys.stderr)
            return EXIT_FAILURE
        try:
            result = parse_result(data)
        except NotAResult as exc:
            print(f"the stored result ({looked}) is {exc}", file=sys.stderr)
            return EXIT_FAILURE
    show_result(result, args)
    return EXIT_OK


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "report", cmd_report)
    parser.add_argument(
        "file", nargs="?", metavar="FILE", help='a task_result/v1 JSON file ("-": stdin)'
    )
    parser.add_argument("--task-id", metavar="ID", help="the agent's recorded answer to a task")
    parser.add_argument(
        "--latest",
        nargs="?",
        const="",
        metavar="TASK_TYPE",
        help="the newest result on the results stream (of TASK_TYPE, or of any task type)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="markdown",
        help="markdown (default), html (one self-contained page with charts), json (the "
        "result as is) or text",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="file to write (default: stdout; html: report-<task_id>.html here)",
    )
    parser.add_argument("--agent", metavar="ID", help="the agent id (default: configuration's)")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for NATS (default 5)"
    )
    parser.set_defaults(json=False)
