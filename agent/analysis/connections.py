"""WebSocket connection capacity per node and headroom, from observed connections and latency.

No capacity figure is assumed: the capacity of a node is where the observed delivery
latency, fitted linearly against connections per node over the window, reaches its
target. When latency does not rise with connections (no slope, poor fit, too few
buckets) the capacity is said to be unobserved, with the reason, not guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from msgspec.structs import replace

from agent.analysis.series import FloatArray, Series
from protocols.reports import BusiestNode, ConnectionCapacity, LinearFit

Labels = tuple[tuple[str, str], ...]

MIN_FIT_POINTS = 6
MIN_R2 = 0.3


def _grid(start: float, end: float, buckets: int) -> FloatArray:
    return np.linspace(start, end, buckets + 1)


def _bucket_medians(series: Series, edges: FloatArray) -> FloatArray:
    """Median of the samples in each bucket (NaN where a bucket is empty)."""
    out = np.full(edges.size - 1, np.nan)
    if len(series) == 0 or series.scalar:
        return out
    idx = np.clip(np.searchsorted(edges, series.ts, side="right") - 1, 0, edges.size - 2)
    order = np.argsort(idx, kind="stable")
    idx_sorted, values = idx[order], series.values[order]
    bounds = np.flatnonzero(np.diff(idx_sorted)) + 1
    for group_idx, group in zip(
        np.split(idx_sorted, bounds), np.split(values, bounds), strict=True
    ):
        out[int(group_idx[0])] = float(np.median(group))
    return out


def _fit(x: FloatArray, y: FloatArray) -> tuple[float, float, float] | None:
    """Least-squares ``y = a + b·x`` with its r²; None when x does not vary."""
    if x.size < 2 or float(np.ptp(x)) == 0.0:
        return None
    b, a = np.polyfit(x, y, 1)
    residual = y - (a + b * x)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 0.0
    return float(a), float(b), r2


def _busiest(current: Mapping[Labels, float]) -> BusiestNode:
    labels, connections = max(current.items(), key=lambda item: item[1])
    return BusiestNode(labels=dict(labels), connections=_round(connections))


def _round(x: float | None, digits: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def connection_capacity(
    connections: Mapping[Labels, Series],
    *,
    latency: Series | None,
    latency_metric: str,
    latency_target: float,
    throughput: Series | None = None,
    buckets: int = 60,
) -> ConnectionCapacity:
    """Connections per node now, the capacity per node the latency allows, and the headroom.

    ``connections`` is one gauge series per node (label set); ``latency`` the delivery
    latency over the same window. Per time bucket: total connections, nodes reporting,
    connections per node and the median latency; ``latency ≈ a + b·per_node`` fitted over
    the buckets; capacity per node = ``(target − a) / b`` when ``b > 0`` and r² ≥ 0.3.
    Headroom = capacity / current per node − 1.
    """
    live = {k: s for k, s in connections.items() if len(s) > 0 and not s.scalar}
    if not live:
        return ConnectionCapacity(
            status="no_data", reason="no per-node websocket_connections samples"
        )
    start = min(float(s.ts[0]) for s in live.values())
    end = max(float(s.ts[-1]) for s in live.values())
    current = {k: float(s.values[-1]) for k, s in live.items()}
    total_now = sum(current.values())
    per_node_now = total_now / len(current)
    now = ConnectionCapacity(
        status="ok",
        nodes=len(current),
        connections_total=_round(total_now),
        connections_per_node=_round(per_node_now),
        busiest_node=_busiest(current),
        latency_metric=latency_metric,
        latency_target=latency_target,
    )
    if end <= start:
        return replace(now, capacity_basis="a single instant of data")
    edges = _grid(start, end, buckets)
    per_series = np.vstack([_bucket_medians(s, edges) for s in live.values()])
    reporting = np.sum(~np.isnan(per_series), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_node = np.nansum(per_series, axis=0) / reporting

    capacity: float | None = None
    fitted: LinearFit | None = None
    basis: str
    if latency is None or len(latency) == 0 or latency.scalar:
        basis = f"no {latency_metric} samples to relate latency to connections"
    else:
        lat = _bucket_medians(latency, edges)
        ok = ~np.isnan(lat) & ~np.isnan(per_node)
        fit = _fit(per_node[ok], lat[ok]) if int(ok.sum()) >= MIN_FIT_POINTS else None
        if fit is None:
            basis = (
                f"too few buckets with both connections and {latency_metric} "
                f"({int(ok.sum())} < {MIN_FIT_POINTS}) or connections did not vary"
            )
        else:
            a, b, r2 = fit
            fitted = LinearFit(
                intercept=_round(a, 4),
                slope_per_connection=_round(b, 6),
                r2=_round(r2, 3),
                points=int(ok.sum()),
            )
            if b <= 0 or r2 < MIN_R2:
                basis = (
                    f"{latency_metric} does not rise with connections per node in the window "
                    f"(slope {b:.3g}, r² {r2:.2f}): capacity not observed"
                )
            else:
                capacity = (latency_target - a) / b
                basis = (
                    f"{latency_metric} reaches its {latency_target:g} target at "
                    f"{capacity:,.0f} connections per node (linear fit, r² {r2:.2f})"
                )
    per_node_capacity = _round(capacity) if capacity is not None and capacity > 0 else None
    headroom = needed = None
    if per_node_capacity is not None and per_node_now > 0:
        headroom = _round((per_node_capacity / per_node_now - 1.0) * 100.0, 1)
        needed = math.ceil(total_now / per_node_capacity)
    elif capacity is not None and capacity <= 0:
        basis += "; the fitted latency is above target at any load"
    per_connection = throughput_capacity = None
    if throughput is not None and len(throughput) > 0 and total_now > 0:
        per_connection = float(np.mean(throughput.values)) / max(
            float(np.nanmean(per_node * reporting)), 1e-9
        )
        if per_node_capacity is not None:
            throughput_capacity = _round(per_connection * per_node_capacity)
    return replace(
        now,
        observed_peak_per_node=_round(float(np.nanmax(per_node))),
        fit=fitted,
        capacity_per_node=per_node_capacity,
        capacity_basis=basis,
        headroom_pct=headroom,
        nodes_needed_now=needed,
        throughput_per_connection=_round(per_connection, 4) if per_connection is not None else None,
        throughput_capacity_per_node=throughput_capacity,
    )
