"""``analyze``: one task on this machine, no bus: samples from a file or from Prometheus."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import msgspec

from agent.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    add_task_type,
    load_settings,
)
from agent.cli.output import add_output_options, show_result
from agent.cli.params import read_params
from agent.config import Settings
from agent.store import MetricStore
from protocols import ErrorInfo, TaskParams, TaskResult, TaskType
from protocols.reports import Report


async def _samples(
    settings: Settings, task_type: TaskType, params: TaskParams, now: datetime
) -> tuple[MetricStore | None, dict[str, Any]]:
    """The task's samples as the agent would get them (``SampleSource``); None: inline."""
    from agent.runtime.samples import SampleSource

    async with AsyncExitStack() as stack:
        source = await SampleSource.open(settings, stack)
        return await source.for_task(task_type, params, now.timestamp())


def analyze(settings: Settings, task_type: TaskType, params: TaskParams) -> TaskResult:
    """Run one task's strategy as the agent would, minus the bus: a completed or failed result.

    No directive and no learning state are read (they live on the bus): recommendations
    carry the playbook's priors, marked uncalibrated.
    """
    from agent.errors import AgentError
    from agent.runtime.handler import configured_context
    from agent.strategies import ROUTES

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    task_id = f"cli-{int(started.timestamp())}"
    ctx = configured_context(
        settings, task_id=task_id, task_type=task_type, now=started, params=params
    )
    report: Report | None = None
    error: ErrorInfo | None = None
    try:
        store, source_report = asyncio.run(_samples(settings, task_type, params, started))
        if store is not None:
            ctx = dataclasses.replace(ctx, store=store, source_report=source_report)
        report = ROUTES[task_type](ctx)
    except AgentError as exc:
        error = ErrorInfo(code=exc.code, message=exc.message[:4000])
    return TaskResult(
        task_id=task_id,
        task_type=task_type,
        agent_id=settings.agent_id,
        status="completed" if error is None else "failed",
        started_at=started,
        completed_at=datetime.now(UTC),
        duration_ms=round((time.perf_counter() - t0) * 1000.0, 3),
        report=report,
        error=error,
    )


def cmd_analyze(args: argparse.Namespace) -> int:
    """Run one task here, without NATS, and print its report.

    Samples come from --metrics FILE (a task_request/v1, a kpi_batch/v1, or a task's params
    object; - reads stdin) or from a Prometheus server (--prometheus URL, queried over the
    task's window up to now). Exit 0 when the task completed, 1 when it failed (e.g.
    insufficient_data), 2 for bad arguments or an unreadable file.
    """
    settings = load_settings()
    if args.metrics is None and args.prometheus is None:
        raise UsageError("give --metrics FILE or --prometheus URL")
    params = read_params(args.metrics) if args.metrics is not None else TaskParams()
    if args.window:
        params = msgspec.structs.replace(params, window=args.window)
    if args.prometheus:
        settings = settings.model_copy(update={"prometheus_url": args.prometheus})
    else:
        settings = settings.model_copy(update={"prometheus_url": None})
    result = analyze(settings, TaskType(args.task_type), params)
    show_result(result, args)
    return EXIT_OK if result.status == "completed" else EXIT_FAILURE


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "analyze", cmd_analyze)
    add_task_type(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--metrics", metavar="FILE", help="samples and params as JSON (- = stdin)")
    source.add_argument("--prometheus", metavar="URL", help="a Prometheus server's base URL")
    parser.add_argument(
        "--window",
        help="the window to judge, e.g. 1h, 24h, 7d (default: the "
        "file's, else the task type's or the configured default)",
    )
    add_output_options(parser)
