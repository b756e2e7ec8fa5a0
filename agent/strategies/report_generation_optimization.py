"""``report_generation_optimization``: AI report generation and its data pipeline."""

from __future__ import annotations

from agent.analysis.catalog import DOMAINS
from agent.strategies.base import TaskContext
from agent.strategies.domain import DomainScope, analyze_domain
from protocols.messages import AnalysisReport

DOMAIN = DomainScope(
    task_type="report_generation_optimization",
    primary=DOMAINS["ai"],
    supporting=("database_query_time", "cpu_utilization", "memory_utilization"),
)


def analyze(ctx: TaskContext) -> AnalysisReport:
    return analyze_domain(ctx, DOMAIN)
