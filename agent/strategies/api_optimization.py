"""``api_optimization``: the API's own metrics and the infrastructure a request waits on."""

from __future__ import annotations

from agent.analysis.catalog import DOMAINS
from agent.planning.recommend import recommendation_id
from agent.strategies.base import TaskContext
from agent.strategies.domain import DomainScope, analyze_domain
from protocols.messages import AnalysisReport

DOMAIN = DomainScope(
    task_type="api_optimization",
    primary=DOMAINS["api"],
    supporting=("redis_cache_hit", "database_query_time", "cpu_utilization", "memory_utilization"),
)
SCOPE = DOMAIN.metrics


def analyze(ctx: TaskContext) -> AnalysisReport:
    return analyze_domain(ctx, DOMAIN)


__all__ = ["DOMAIN", "SCOPE", "analyze", "recommendation_id"]
