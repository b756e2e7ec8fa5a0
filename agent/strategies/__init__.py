"""The route table: one strategy per task type, registered here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from agent.strategies import (
    api_optimization,
    cache_optimization,
    chat_backend_optimization,
    prompt_feed_backend_optimization,
    report_generation_optimization,
    strategic_backend_planning,
    websocket_scaling_optimization,
)
from agent.strategies.base import Report, Strategy, TaskContext
from agent.strategies.domain import DomainScope
from protocols import TaskParams, TaskType

ROUTES: Mapping[TaskType, Strategy] = MappingProxyType(
    {
        TaskType.API_OPTIMIZATION: api_optimization.analyze,
        TaskType.CHAT_BACKEND_OPTIMIZATION: chat_backend_optimization.analyze,
        TaskType.PROMPT_FEED_BACKEND_OPTIMIZATION: prompt_feed_backend_optimization.analyze,
        TaskType.REPORT_GENERATION_OPTIMIZATION: report_generation_optimization.analyze,
        TaskType.WEBSOCKET_SCALING_OPTIMIZATION: websocket_scaling_optimization.analyze,
        TaskType.CACHE_OPTIMIZATION: cache_optimization.analyze,
        TaskType.STRATEGIC_BACKEND_PLANNING: strategic_backend_planning.analyze,
    }
)

DEFAULT_WINDOWS: Mapping[TaskType, str] = MappingProxyType(
    {TaskType.STRATEGIC_BACKEND_PLANNING: strategic_backend_planning.PLANNING_WINDOW}
)
"""Windows of task types that need more history than the configured default."""


def task_window(task_type: TaskType, params: TaskParams, default: str) -> str:
    """The window a task is judged over: its own, its type's, or the configured default."""
    return params.window or DEFAULT_WINDOWS.get(task_type, default)


SCOPES: Mapping[str, DomainScope] = MappingProxyType(
    {
        scope.task_type: scope
        for scope in (
            api_optimization.DOMAIN,
            chat_backend_optimization.DOMAIN,
            prompt_feed_backend_optimization.DOMAIN,
            report_generation_optimization.DOMAIN,
            websocket_scaling_optimization.DOMAIN,
            cache_optimization.DOMAIN,
        )
    }
)
"""Task type → the metrics its analysis is about (a directive's focus areas name these)."""

__all__ = [
    "ROUTES",
    "SCOPES",
    "Report",
    "Strategy",
    "TaskContext",
    "api_optimization",
    "cache_optimization",
    "chat_backend_optimization",
    "prompt_feed_backend_optimization",
    "report_generation_optimization",
    "strategic_backend_planning",
    "task_window",
    "websocket_scaling_optimization",
]
