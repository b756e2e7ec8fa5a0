"""``request``: send one task to a running agent over NATS and print its result."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from agent.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    add_task_type,
    load_settings,
)
from agent.cli.nats import open_connection
from agent.cli.output import add_output_options, show_result
from agent.cli.params import read_params
from agent.cli.report import NotAResult, parse_result
from agent.config import Settings
from protocols import TaskParams, TaskRequest, TaskType, encode, subjects


class Spinner:
    """A spinner on stderr while waiting, only when stderr is a terminal (logs stay clean)."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, what: str) -> None:
        self.what = what
        self.enabled = sys.stderr.isatty()
        self._task: asyncio.Task[None] | None = None

    async def _spin(self) -> None:
        t0 = time.monotonic()
        for frame in itertools.cycle(self.FRAMES):
            sys.stderr.write(f"\r{frame} {self.what} {time.monotonic() - t0:4.1f}s")
            sys.stderr.flush()
            await asyncio.sleep(0.1)

    def __enter__(self) -> Spinner:
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._spin())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def build_task(task_type: TaskType, params: TaskParams, timeout: float) -> TaskRequest:
    now = datetime.now(UTC)
    return TaskRequest(
        task_id=f"cli-{uuid.uuid4().hex[:16]}",
        task_type=task_type,
        issued_at=now,
        issuer="prometheus-backend-cli",
        deadline=now + timedelta(seconds=timeout),
        params=params,
    )


async def send(
    settings: Settings, servers: list[str], task: TaskRequest, *, durable: bool, timeout: float
) -> dict[str, Any] | None:
    """The task's result as data, or None after saying on stderr why none came."""
    import nats.errors
    from nats.js.errors import NoStreamResponseError

    nc = await open_connection(settings, servers, min(timeout, 5.0))
    if nc is None:
        return None
    agent = settings.agent_id
    try:
        with Spinner(f"waiting for {agent} ({task.task_type}, task {task.task_id})"):
            if not durable:
                subject = subjects.rpc(agent, task.task_type)
                reply = await nc.request(subject, encode(task), timeout=timeout)
                return dict(orjson.loads(reply.data))
            results = await nc.subscribe(subjects.results(agent, task.task_type))
            js = nc.jetstream()
            await js.publish(
                subjects.tasks(agent, task.task_type),
                encode(task),
                headers={"Nats-Msg-Id": task.task_id},
                timeout=min(timeout, 5.0),
            )
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                msg = await results.next_msg(timeout=left)
                answer = orjson.loads(msg.data)
                if isinstance(answer, dict) and answer.get("task_id") == task.task_id:
                    return answer
            raise nats.errors.TimeoutError
    except nats.errors.NoRespondersError:
        print(
            f"no agent {agent!r} is serving {task.task_type} (prometheus-backend status)",
            file=sys.stderr,
        )
    except (nats.errors.TimeoutError, TimeoutError):
        print(f"no answer from {agent!r} within {timeout:g}s", file=sys.stderr)
    except NoStreamResponseError:
        print(f"no task stream for {agent!r}: is the agent running?", file=sys.stderr)
    finally:
        await nc.close()
    return None


def cmd_request(args: argparse.Namespace) -> int:
    """Send one task to a running agent over NATS and print its result.

    By default the task goes request/reply to the agent's service (swarm.rpc.<agent>.<type>);
    --durable publishes it to the agent's JetStream task stream and waits for its result on
    swarm.results.<agent>.<type>. Params come from --metrics FILE (as for analyze); without
    it the agent reads its live source (KPI stream or Prometheus) over --window.
    Exit 0 when the task completed, 1 when it failed, was rejected or no answer came in
    --timeout seconds, 2 for bad arguments, an unreadable file or no NATS_URL.
    """
    settings = load_settings()
    if args.agent:
        settings = settings.model_copy(update={"agent_id": args.agent})
    if not settings.servers:
        raise UsageError("request needs a running swarm: set NATS_URL")
    params = read_params(args.metrics) if args.metrics is not None else TaskParams()
    if args.window or args.source:
        changes = {"window": args.window, "source": args.source}
        params = msgspec.structs.replace(params, **{k: v for k, v in changes.items() if v})
    task = build_task(TaskType(args.task_type), params, args.timeout)
    result = asyncio.run(
        send(settings, settings.servers, task, durable=args.durable, timeout=args.timeout)
    )
    if result is None:
        return EXIT_FAILURE
    try:
        typed = parse_result(orjson.dumps(result))
    except NotAResult as exc:
        print(f"the answer is {exc}", file=sys.stderr)
        return EXIT_FAILURE
    show_result(typed, args)
    return EXIT_OK if typed.status == "completed" else EXIT_FAILURE


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "request", cmd_request)
    add_task_type(parser)
    parser.add_argument("--metrics", metavar="FILE", help="inline samples and params (- = stdin)")
    parser.add_argument("--window", help="the window to judge, e.g. 1h, 24h, 7d")
    parser.add_argument(
        "--source",
        choices=("inline", "kpi", "prometheus"),
        help="where the agent reads samples (default: inline when --metrics, else the agent's)",
    )
    parser.add_argument("--agent", help="the agent id to ask (default: the configured agent_id)")
    parser.add_argument("--durable", action="store_true", help="via the JetStream task stream")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    add_output_options(parser)
