"""Where samples come from: a task's own data, the live KPI store or Prometheus.

One ``SampleSource`` answers tasks, the monitor and the command line alike, so the rule
for choosing a source (``params.source``, else inline data when there is some, else
``default_source``: auto is Prometheus when configured, else the KPI store) is written
once.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from agent.analysis.series import parse_window
from agent.config import Settings
from agent.errors import InvalidParams
from agent.sources.prometheus import PROMETHEUS_MAX_POINTS, PrometheusSource
from agent.store import MetricStore
from agent.strategies import task_window
from protocols import TaskParams, TaskType


class SampleSource:
    def __init__(
        self,
        settings: Settings,
        *,
        live: MetricStore | None = None,
        prometheus: PrometheusSource | None = None,
    ) -> None:
        self.settings = settings
        self.live = live
        """The KPI store (None: KPI ingestion is off)."""
        self.prometheus = prometheus
        """None: no ``prometheus_url`` is configured."""

    @classmethod
    async def open(
        cls, settings: Settings, stack: AsyncExitStack, *, live: MetricStore | None = None
    ) -> SampleSource:
        """Prometheus when ``prometheus_url`` is set (closed with ``stack``), and ``live``."""
        prometheus = None
        if settings.prometheus_url:
            prometheus = await stack.enter_async_context(PrometheusSource.from_settings(settings))
        return cls(settings, live=live, prometheus=prometheus)

    def choose(self, params: TaskParams) -> str:
        """``inline``, ``kpi`` or ``prometheus`` for a task with ``params``."""
        source = params.source or (
            "inline" if params.metrics or params.samples else self.settings.default_source
        )
        if source == "auto":
            live = "kpi" if self.live is not None else "inline"
            source = "prometheus" if self.prometheus is not None else live
        return source

    async def for_task(
        self, task_type: TaskType, params: TaskParams, end: float
    ) -> tuple[MetricStore | None, dict[str, Any]]:
        """The store a task is judged on and the source's report; None: its inline data.

        Live data is the task's window up to ``end``; a source that is asked for and not
        configured is the task's error (``invalid_params``).
        """
        source = self.choose(params)
        if source == "inline":
            return None, {}
        window_s = parse_window(task_window(task_type, params, self.settings.default_window))
        if source == "prometheus":
            if self.prometheus is None:
                raise InvalidParams("source prometheus: no prometheus_url is configured")
            return await self.prometheus.fetch_window(self.settings, window_s, end)
        if source == "kpi":
            if self.live is None:
                raise InvalidParams("source kpi: KPI ingestion is disabled (kpi_enabled)")
            return self.live.snapshot(window_s=window_s, end=end), {"kpi": {"window_s": window_s}}
        raise InvalidParams(f"unknown source {source!r}: use inline, kpi or prometheus")

    async def history(self, window_s: float, end: float) -> MetricStore:
        """Every sample of ``[end - window_s, end]`` from the live sources (the monitor's read).

        From Prometheus in one range query per metric at as many steps as it serves
        (``PROMETHEUS_MAX_POINTS``): at a task's 240 steps, 7 days would leave 3 samples in
        the hour the trend, change-point and outlier rules judge. Empty without a source.
        """
        if self.prometheus is not None:
            store, _ = await self.prometheus.fetch_window(
                self.settings, window_s, end, max_points=PROMETHEUS_MAX_POINTS
            )
            return store
        if self.live is not None:
            return self.live.snapshot(window_s=window_s, end=end)
        return MetricStore()
