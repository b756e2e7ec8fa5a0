"""``websocket_scaling_optimization``: connection scaling, with capacity per node and headroom."""

from __future__ import annotations

from agent.analysis.connections import connection_capacity
from agent.strategies.base import TaskContext
from agent.strategies.domain import DomainInput, DomainScope, analyze_domain
from protocols.reports import AnalysisReport, ConnectionCapacity, Findings

LATENCY_METRIC = "real_time_delivery"
FALLBACK_LATENCY_METRIC = "message_processing_time"


def websocket_capacity(data: DomainInput) -> Findings:
    """Capacity per node from ``websocket_connections{instance}`` against delivery latency."""
    metric = LATENCY_METRIC if LATENCY_METRIC in data.judged else FALLBACK_LATENCY_METRIC
    latency = data.store.merged(metric, window_s=data.window_s, end=data.end)
    judged = data.judged.get(metric)
    target = judged.target if judged is not None else None
    if target is None:
        why = f"no {LATENCY_METRIC} or {metric} samples"
        return Findings(websocket_capacity=ConnectionCapacity(status="no_data", reason=why))
    throughput = data.store.merged("websocket_throughput", window_s=data.window_s, end=data.end)
    capacity = connection_capacity(
        data.store.select("websocket_connections", window_s=data.window_s, end=data.end),
        latency=latency,
        latency_metric=metric,
        latency_target=target,
        throughput=throughput if len(throughput) else None,
    )
    return Findings(websocket_capacity=capacity)


DOMAIN = DomainScope(
    task_type="websocket_scaling_optimization",
    primary=(
        "websocket_throughput",
        "connection_stability",
        "real_time_delivery",
        "message_processing_time",
    ),
    supporting=("cpu_utilization", "memory_utilization"),
    findings=websocket_capacity,
)


def analyze(ctx: TaskContext) -> AnalysisReport:
    return analyze_domain(ctx, DOMAIN)
