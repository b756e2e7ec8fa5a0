"""``prompt_feed_backend_optimization``: feed retrieval, generation, caching and freshness."""

from __future__ import annotations

from agent.analysis.catalog import DOMAINS
from agent.strategies.base import TaskContext
from agent.strategies.domain import DomainScope, analyze_domain
from protocols.messages import AnalysisReport

DOMAIN = DomainScope(
    task_type="prompt_feed_backend_optimization",
    primary=DOMAINS["feed"],
    supporting=("database_query_time", "redis_cache_hit", "cpu_utilization"),
)


def analyze(ctx: TaskContext) -> AnalysisReport:
    return analyze_domain(ctx, DOMAIN)
