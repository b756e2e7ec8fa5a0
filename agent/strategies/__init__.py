"""The route table: one strategy per task type, registered here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from agent.errors import NotImplementedTask
from agent.strategies import api_optimization
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
        TaskType.CHAT_BACKEND_OPTIMIZATION: _not_implemented,
        TaskType.PROMPT_FEED_BACKEND_OPTIMIZATION: _not_implemented,
        TaskType.REPORT_GENERATION_OPTIMIZATION: _not_implemented,
        TaskType.WEBSOCKET_SCALING_OPTIMIZATION: _not_implemented,
        TaskType.CACHE_OPTIMIZATION: _not_implemented,
        TaskType.STRATEGIC_BACKEND_PLANNING: _not_implemented,
    }
)

__all__ = ["ROUTES", "Report", "Strategy", "TaskContext", "api_optimization"]
