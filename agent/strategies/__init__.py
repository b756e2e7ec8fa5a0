"""The route table: one strategy per task type, registered here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from agent.errors import NotImplementedTask
from agent.strategies import (
    api_optimization,
    cache_optimization,
    chat_backend_optimization,
    prompt_feed_backend_optimization,
    report_generation_optimization,
    websocket_scaling_optimization,
)
from agent.strategies.base import Report, Strategy, TaskContext
from protocols import TaskType


def _not_implemented(ctx: TaskContext) -> Report:
    raise NotImplementedTask(
        f"{ctx.task_type} is registered but its strategy has not landed yet; "
        "no report is made up in its place"
    )


ROUTES: Mapping[TaskType, Strategy] = MappingProxyType(
    {
        TaskType.API_OPTIMIZATION: api_optimization.analyze,
        TaskType.CHAT_BACKEND_OPTIMIZATION: chat_backend_optimization.analyze,
        TaskType.PROMPT_FEED_BACKEND_OPTIMIZATION: prompt_feed_backend_optimization.analyze,
        TaskType.REPORT_GENERATION_OPTIMIZATION: report_generation_optimization.analyze,
        TaskType.WEBSOCKET_SCALING_OPTIMIZATION: websocket_scaling_optimization.analyze,
        TaskType.CACHE_OPTIMIZATION: cache_optimization.analyze,
        TaskType.STRATEGIC_BACKEND_PLANNING: _not_implemented,
    }
)

__all__ = [
    "ROUTES",
    "Report",
    "Strategy",
    "TaskContext",
    "api_optimization",
    "cache_optimization",
    "chat_backend_optimization",
    "prompt_feed_backend_optimization",
    "report_generation_optimization",
    "websocket_scaling_optimization",
]
