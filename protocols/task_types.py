"""The seven task types of the wire contract: the one table routes, subjects, endpoints use."""

from __future__ import annotations

import enum


class TaskType(enum.StrEnum):
    """A task the strategist accepts; the value is the subject's last token."""

    API_OPTIMIZATION = "api_optimization"
    """API latency, availability, throughput and errors, and what a request waits on."""
    CHAT_BACKEND_OPTIMIZATION = "chat_backend_optimization"
    """Real-time messaging: WebSocket throughput, processing, stability, delivery."""
    PROMPT_FEED_BACKEND_OPTIMIZATION = "prompt_feed_backend_optimization"
    """Feed retrieval, generation, caching and freshness."""
    REPORT_GENERATION_OPTIMIZATION = "report_generation_optimization"
    """AI report generation and its data pipeline."""
    WEBSOCKET_SCALING_OPTIMIZATION = "websocket_scaling_optimization"
    """Connection capacity per node and headroom."""
    CACHE_OPTIMIZATION = "cache_optimization"
    """Hit rate by key class, memory, evictions, and what limits the hit rate."""
    STRATEGIC_BACKEND_PLANNING = "strategic_backend_planning"
    """A prioritised, phased plan with ROI, risks, timeline and capacity projections."""

    @classmethod
    def parse(cls, value: str) -> TaskType | None:
        """The task type named by ``value``, or None when there is no such type."""
        try:
            return cls(value)
        except ValueError:
            return None
