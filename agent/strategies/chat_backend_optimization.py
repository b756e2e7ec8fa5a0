"""``chat_backend_optimization``: real-time messaging and what it runs on."""

from __future__ import annotations

from agent.analysis.catalog import DOMAINS
from agent.strategies.base import TaskContext
from agent.strategies.domain import DomainScope, analyze_domain
from protocols.messages import AnalysisReport

DOMAIN = DomainScope(
    task_type="chat_backend_optimization",
    primary=DOMAINS["chat"],
    supporting=("cpu_utilization", "memory_utilization", "redis_cache_hit"),
)


def analyze(ctx: TaskContext) -> AnalysisReport:
    return analyze_domain(ctx, DOMAIN)
