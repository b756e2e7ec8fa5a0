"""The seven task types of the wire contract: the one table routes, subjects, endpoints use."""

from __future__ import annotations

import enum


class TaskType(enum.StrEnum):
    """A task the strategist accepts; the value is the subject's last token."""

    API_OPTIMIZATION = "api_optimization"
    CHAT_BACKEND_OPTIMIZATION = "chat_backend_optimization"
    PROMPT_FEED_BACKEND_OPTIMIZATION = "prompt_feed_backend_optimization"
    REPORT_GENERATION_OPTIMIZATION = "report_generation_optimization"
    WEBSOCKET_SCALING_OPTIMIZATION = "websocket_scaling_optimization"
    CACHE_OPTIMIZATION = "cache_optimization"
    STRATEGIC_BACKEND_PLANNING = "strategic_backend_planning"

    @classmethod
    def parse(cls, value: str) -> TaskType | None:
        """The task type named by ``value``, or None when there is no such type."""
        try:
            return cls(value)
        except ValueError:
            return None
