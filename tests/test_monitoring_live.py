"""The monitor's judging (``agent.monitoring.live``): plain data in, plain data out, no bus."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from agent.analysis.causes import DEPENDENCIES
from agent.monitoring import MonitorConfig, MonitorState
from agent.monitoring.live import (
    SLO_WINDOW_S,
    STRUCTURAL_LINK,
    LiveConfig,
    judge_live,
    structural_links,
    trigger_crossings,
)
from agent.monitoring.triggers import SCALING_TRIGGERS
from agent.store import MetricStore
from agent.strategies import strategic_backend_planning
from agent.strategies.base import TaskContext
from agent.strategies.domain import Assessment
from protocols import TaskParams, TaskType
from protocols.messages import ChangePoint, Outlier
from tests import synthetic

DAY0 = 1_764_288_000.0  # 2025-11-28T00:00:00Z
CONFIG = LiveConfig(rules=MonitorConfig(anomaly_lookback_s=420.0), interval_s=420.0)


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def day_store(until: float) -> MetricStore:
    store = MetricStore(max_age_s=10 * 86_400.0)
    for metric, (ts, values) in synthetic.monitored_day(DAY0).items():
        keep = ts <= until
        store.add_many(metric, ts[keep], values[keep])
    return store


def context(store: MetricStore, now: float) -> TaskContext:
    return TaskContext(
        task_id="monitor-test",
        task_type=TaskType.API_OPTIMIZATION,
        now=at(now),
        params=TaskParams(window="1h"),
        store=store,
    )


def bare_assessment(
    change_points: dict[str, list[ChangePoint]], outliers: dict[str, list[Outlier]]
) -> Assessment:
    return Assessment(
        window="1h",
        window_s=3600.0,
        end=DAY0,
        store=MetricStore(),
        judged={},
        measured={},
        counts={},
        rejected={},
        findings=[],
        symptoms=frozenset(),
        links=[],
        evidenced=[],
        change_points=change_points,
        outliers=outliers,
        slo={},
        series={},
    )


def test_the_planning_strategy_and_the_monitor_read_one_trigger_table() -> None:
    assert strategic_backend_planning.SCALING_TRIGGERS is SCALING_TRIGGERS
    assert SCALING_TRIGGERS["cpu_utilization"] == 75.0


def test_a_recent_shift_is_linked_to_its_spiking_dependency_by_the_table_alone() -> None:
    symptom, cause = "api_response_time", DEPENDENCIES["api_response_time"][0]
    now = DAY0 + 3600.0
    shift = ChangePoint(
        at=at(now - 300.0), before=70.0, after=170.0, shift=100.0, shift_pct=143.0, worse=True
    )
    spike = Outlier(at=at(now - 120.0), value=400.0, robust_z=9.0)
    a = bare_assessment({symptom: [shift]}, {cause: [spike]})
    links = structural_links(a, since=now - 840.0)
    assert [(lk.symptom, lk.cause, lk.score) for lk in links] == [(symptom, cause, STRUCTURAL_LINK)]
    assert structural_links(a, since=now) == []  # both older than "right now": no link


def test_an_improving_shift_troubles_nothing() -> None:
    now = DAY0 + 3600.0
    better = ChangePoint(
        at=at(now - 60.0), before=170.0, after=70.0, shift=-100.0, shift_pct=-59.0, worse=False
    )
    a = bare_assessment({"api_response_time": [better]}, {"database_query_time": []})
    assert structural_links(a, since=now - 840.0) == []


def test_trigger_crossings_date_a_rising_metric_and_skip_what_has_no_samples() -> None:
    now = DAY0 + 7 * 86_400.0
    ts = np.arange(DAY0, now, 600.0)
    cpu = 40.0 + 4.0 * (ts - DAY0) / 86_400.0 + np.random.default_rng(3).normal(0, 0.5, ts.size)
    store = MetricStore(max_age_s=30 * 86_400.0)
    store.add_many("cpu_utilization", ts, cpu)
    out = trigger_crossings(
        store,
        {"cpu_utilization": 75.0, "memory_utilization": 80.0, "not_a_metric": 1.0},
        window_s=7 * 86_400.0,
        now=now,
        runway_days=30.0,
    )
    assert [t.metric for t in out] == ["cpu_utilization"]
    assert out[0].status == "expected"
    days = out[0].days_from_now
    assert days is not None
    assert 0.0 < days < 30.0


def test_judging_the_incident_raises_its_alerts_once_and_reports_them() -> None:
    now = DAY0 + 7.0 * 3600  # inside the database incident
    ctx = context(day_store(now), now)
    first = judge_live(ctx, MonitorState(), now=now, config=CONFIG, skipped_runs=2)
    raised = {d.metric for d in first.alerts if d.notification == "raise"}
    assert "database_query_time" in raised
    assert first.report.analysis_type == "monitor"
    assert first.report.findings is not None
    assert first.report.findings.alerts == [d.alert_id for d in first.alerts]
    assert first.report.findings.skipped_runs == 2
    assert not first.report.performance["database_query_time"].meeting_target
    later = now + CONFIG.interval_s
    again = judge_live(
        context(day_store(later), later), first.state, now=later, config=CONFIG, skipped_runs=2
    )
    assert not [d for d in again.alerts if d.notification == "raise" and d.metric in raised]


def test_history_covers_the_slo_and_the_trigger_window() -> None:
    assert CONFIG.history_s == max(SLO_WINDOW_S, 7 * 86_400.0)
    short = LiveConfig(rules=MonitorConfig(), interval_s=60.0, trigger_window="1h")
    assert short.history_s == SLO_WINDOW_S
