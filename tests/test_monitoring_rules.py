"""The pure alerting core: one alert per problem, re-notified on a rise, resolved after a streak."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.analysis.catalog import CATALOG
from agent.analysis.judge import Judgement, judge, miss_ratio
from agent.analysis.series import Series
from agent.analysis.trend import TrendResult
from agent.monitoring import (
    AlertDraft,
    MonitorConfig,
    MonitorInputs,
    MonitorState,
    alert_id_for,
    evaluate,
    hours_to_breach,
)
from protocols.messages import Alert, BurnRate, CauseLink, ChangePoint, Outlier, SloStatus
from protocols.messages import Trend as TrendName
from protocols.reports import TriggerCrossing

NOW = 1_790_000_000.0
STEP = 420.0
CONFIG = MonitorConfig()


def jdg(
    metric: str,
    current: float,
    *,
    trend: TrendName = "stable",
    slope: float | None = None,
    target: float | None = None,
) -> Judgement:
    spec = CATALOG[metric]
    # a throughput has no catalog target: these tests judge it against a configured 500
    goal = (spec.target if spec.target is not None else 500.0) if target is None else target
    return Judgement(
        spec=spec,
        current=current,
        statistic=spec.statistic,
        target=goal,
        target_source="catalog",
        ratio=miss_ratio(spec, current, goal),
        trend=TrendResult(
            trend=trend,
            samples=60,
            slope_per_hour=slope if slope is not None else 0.0,
            p_value=0.001 if trend in ("declining", "improving") else 0.5,
        ),
    )


def judged(**values: float) -> MonitorInputs:
    return MonitorInputs(judged={m: jdg(m, v) for m, v in values.items()})


def run(
    steps: Sequence[MonitorInputs],
    state: MonitorState | None = None,
    *,
    start: float = NOW,
    config: MonitorConfig = CONFIG,
) -> tuple[list[list[AlertDraft]], MonitorState]:
    """Evaluate each input one interval apart; the drafts of every step and the last state."""
    out: list[list[AlertDraft]] = []
    for i, inputs in enumerate(steps):
        drafts, state = evaluate(inputs, state, now=start + i * STEP, config=config)
        out.append(drafts)
    assert state is not None
    return out, state


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --- target_breach ------------------------------------------------------------------


def test_crossing_the_target_raises_one_alert_and_staying_bad_raises_no_more() -> None:
    steps = [judged(api_response_time=90.0), *[judged(api_response_time=130.0)] * 4]
    out, state = run(steps)
    assert out[0] == []
    [alert] = out[1]
    assert (alert.kind, alert.severity, alert.notification) == ("target_breach", "medium", "raise")
    assert alert.alert_id == f"alert-api_response_time-target_breach-{int(NOW + STEP)}"
    assert alert.msg_id == alert.alert_id
    assert (alert.current, alert.target) == (130.0, 100.0)
    assert "130" in alert.message
    assert "100" in alert.message
    assert out[2:] == [[], [], []]
    assert state.totals.raised == 1
    wire = alert.to_alert()
    assert wire.kind == "target_breach"
    assert wire.raised_at == at(NOW + STEP)


def test_worsening_re_notifies_once_per_rise_and_never_on_a_fall() -> None:
    values = [160.0, 250.0, 160.0, 250.0, 300.0]  # high, critical, high, critical, critical
    out, _ = run([judged(api_response_time=v) for v in values])
    [first] = out[0]
    assert first.severity == "high"
    [rise] = out[1]
    assert rise.notification == "renotify"
    assert rise.severity == "critical"
    assert rise.alert_id == first.alert_id
    assert rise.msg_id == f"{first.alert_id}:critical"
    assert "high → critical" in rise.message
    assert out[2:] == [[], [], []]


def test_recovery_resolves_after_the_configured_count_and_a_relapse_does_not_re_raise() -> None:
    bad, good = judged(error_rate=1.6), judged(error_rate=0.4)
    config = MonitorConfig(resolve_after=3)
    out, state = run([bad, good, good, bad, good, good], config=config)
    [raised] = out[0]
    assert out[1:] == [[], [], [], [], []]  # the relapse at step 3 reset the streak quietly
    assert state.episodes["target_breach:error_rate"].healthy_streak == 2
    [resolved], state = evaluate(good, state, now=NOW + 6 * STEP, config=config)
    assert resolved.kind == "resolved"
    assert resolved.notification == "resolve"
    assert resolved.metric == "error_rate"
    assert resolved.severity == raised.severity
    assert raised.alert_id in resolved.message
    assert resolved.msg_id == f"{raised.alert_id}:resolved"
    assert state.episodes == {}
    assert (state.totals.raised, state.totals.resolved) == (1, 1)


def test_missing_data_neither_heals_nor_re_raises() -> None:
    out, state = run([judged(cpu_utilization=90.0), MonitorInputs(), MonitorInputs()])
    assert len(out[0]) == 1
    assert out[1:] == [[], []]
    assert state.episodes["target_breach:cpu_utilization"].healthy_streak == 0


# --- degradation_trend --------------------------------------------------------------


def test_slow_drift_under_target_alerts_with_hours_to_breach() -> None:
    # 60 ms rising 5 ms/h towards 100 ms: 8 h to breach.
    j = jdg("api_response_time", 60.0, trend="declining", slope=5.0)
    assert hours_to_breach(j) == pytest.approx(8.0)
    [alert], state = evaluate(
        MonitorInputs(judged={"api_response_time": j}), None, now=NOW, config=CONFIG
    )
    assert (alert.kind, alert.severity) == ("degradation_trend", "low")
    assert "8.0 h" in alert.message
    # Higher-is-better: cache hit rate 96 % falling 1 %/h towards 90 %: 6 h, medium.
    j2 = jdg("cache_hit_rate", 96.0, trend="declining", slope=-1.0)
    assert hours_to_breach(j2) == pytest.approx(6.0)
    [alert2], _ = evaluate(
        MonitorInputs(judged={"cache_hit_rate": j2}), state, now=NOW, config=CONFIG
    )
    assert (alert2.severity, alert2.metric) == ("medium", "cache_hit_rate")


def test_drift_judged_from_a_real_series_projects_close_to_the_true_time() -> None:
    hours = np.arange(0, 6, 1 / 60)  # six hours of one-minute scrapes
    rng = np.random.default_rng(7)
    values = 40.0 + 4.0 * hours + rng.normal(0.0, 0.3, hours.size)
    series = Series(ts=NOW - 6 * 3600 + hours * 3600, values=values)
    j = judge(CATALOG["api_response_time"], series, target=100.0)
    assert j.meets_target
    assert j.trend.declining
    true_hours = (100.0 - (40.0 + 4.0 * 6)) / 4.0  # from the last level at 4 ms/h: 9 h
    projected = hours_to_breach(j)
    assert projected == pytest.approx(true_hours, rel=0.1)
    [alert], _ = evaluate(
        MonitorInputs(judged={"api_response_time": j}), None, now=NOW, config=CONFIG
    )
    assert alert.kind == "degradation_trend"
    assert f"{projected:.1f} h" in alert.message


def test_drift_beyond_the_horizon_or_improving_does_not_alert() -> None:
    far = jdg("api_response_time", 60.0, trend="declining", slope=1.0)  # 40 h away
    better = jdg("api_response_time", 60.0, trend="improving", slope=-5.0)
    for j in (far, better):
        drafts, _ = evaluate(
            MonitorInputs(judged={"api_response_time": j}), None, now=NOW, config=CONFIG
        )
        assert drafts == []


def test_a_trend_that_breaches_hands_over_silently_and_one_that_stops_resolves() -> None:
    drifting = MonitorInputs(
        judged={"api_response_time": jdg("api_response_time", 80.0, trend="declining", slope=5.0)}
    )
    breached = MonitorInputs(
        judged={"api_response_time": jdg("api_response_time", 120.0, trend="declining", slope=5.0)}
    )
    out, state = run([drifting, breached])
    assert [d.kind for d in out[0]] == ["degradation_trend"]
    assert [(d.kind, d.notification) for d in out[1]] == [("target_breach", "raise")]
    assert set(state.episodes) == {"target_breach:api_response_time"}

    out, state = run([drifting, *[judged(api_response_time=80.0)] * 3])
    assert out[1:3] == [[], []]
    [resolved] = out[3]
    assert resolved.kind == "resolved"
    assert out[0][0].alert_id in resolved.message
    assert state.episodes == {}


# --- SLO burn rates -----------------------------------------------------------------


def burn(
    long: float, short: float, *, threshold: float, severity: str, lw: str, sw: str
) -> BurnRate:
    return msgspec.convert(
        {
            "long_window": lw,
            "short_window": sw,
            "threshold": threshold,
            "severity": severity,
            "long_burn": long,
            "short_burn": short,
            "firing": long >= threshold and short >= threshold,
            "coverage": 1.0,
        },
        BurnRate,
    )


def slo(*rates: BurnRate) -> MonitorInputs:
    status = SloStatus(
        objective_pct=99.9, bad_fraction=0.01, error_budget_remaining=-9.0, burn_rates=list(rates)
    )
    return MonitorInputs(slo={"api_availability": status})


def test_page_burn_fires_critical_naming_the_rule() -> None:
    inputs = slo(
        burn(15.2, 16.0, threshold=14.4, severity="page", lw="1h", sw="5m"),
        burn(7.0, 8.0, threshold=6.0, severity="page", lw="6h", sw="30m"),
    )
    [alert], state = evaluate(inputs, None, now=NOW, config=CONFIG)
    assert (alert.kind, alert.severity) == ("target_breach", "critical")
    assert "15.2× over 1h and 16.0× over 5m (page: 14.4×)" in alert.message
    assert alert.alert_id == f"alert-api_availability-slo_burn-{int(NOW)}"
    assert set(state.episodes) == {"slo_burn:api_availability"}
    assert (alert.current, alert.target) == pytest.approx((99.0, 99.9))


def test_ticket_burn_fires_high() -> None:
    inputs = slo(
        burn(2.0, 2.5, threshold=14.4, severity="page", lw="1h", sw="5m"),
        burn(3.5, 4.0, threshold=3.0, severity="ticket", lw="1d", sw="2h"),
    )
    [alert], _ = evaluate(inputs, None, now=NOW, config=CONFIG)
    assert alert.severity == "high"
    assert "(ticket: 3×)" in alert.message


def test_a_short_spike_only_the_short_window_sees_does_not_fire() -> None:
    inputs = slo(burn(2.0, 40.0, threshold=14.4, severity="page", lw="1h", sw="5m"))
    drafts, state = evaluate(inputs, None, now=NOW, config=CONFIG)
    assert drafts == []
    assert state.episodes == {}


def test_burn_and_breach_of_one_metric_are_separate_episodes_with_distinct_ids() -> None:
    inputs = slo(burn(15.2, 16.0, threshold=14.4, severity="page", lw="1h", sw="5m"))
    inputs = MonitorInputs(
        slo=inputs.slo, judged={"api_availability": jdg("api_availability", 99.0)}
    )
    drafts, _ = evaluate(inputs, None, now=NOW, config=CONFIG)
    assert len({d.alert_id for d in drafts}) == len(drafts) == 2


# --- grouping -----------------------------------------------------------------------


def link(cause: str, symptom: str, score: float = 0.8) -> CauseLink:
    return CauseLink(
        symptom=symptom,
        cause=cause,
        score=score,
        cause_onset=None,
        symptom_onset=None,
        correlation=0.9,
    )


def test_db_slowdown_dragging_api_and_feed_is_one_problem_naming_the_db() -> None:
    inputs = MonitorInputs(
        judged={
            "database_query_time": jdg("database_query_time", 120.0),
            "api_response_time": jdg("api_response_time", 160.0),
            "feed_generation_time": jdg("feed_generation_time", 700.0),
            "cpu_utilization": jdg("cpu_utilization", 95.0),  # breached, but unrelated
        },
        links=[
            link("database_query_time", "api_response_time"),
            link("database_query_time", "feed_generation_time"),
        ],
    )
    drafts, state = evaluate(inputs, None, now=NOW, config=CONFIG)
    by_metric = {d.metric: d for d in drafts}
    db = by_metric["database_query_time"]
    assert db.problem_id == db.alert_id
    assert db.symptoms == ["api_response_time", "feed_generation_time"]
    assert db.caused_by == []
    for name in ("api_response_time", "feed_generation_time"):
        assert by_metric[name].problem_id == db.alert_id
        assert by_metric[name].caused_by == ["database_query_time"]
        assert state.episodes[f"target_breach:{name}"].problem_id == db.alert_id
    assert by_metric["cpu_utilization"].problem_id is None
    wire = msgspec.json.decode(msgspec.json.encode(db.to_alert()), type=Alert)
    assert wire.symptoms == db.symptoms


def test_a_symptom_breaching_later_joins_its_open_cause() -> None:
    first = MonitorInputs(judged={"database_query_time": jdg("database_query_time", 120.0)})
    later = MonitorInputs(
        judged={
            "database_query_time": jdg("database_query_time", 120.0),
            "api_response_time": jdg("api_response_time", 160.0),
        },
        links=[link("database_query_time", "api_response_time")],
    )
    out, state = run([first, later])
    [db] = out[0]
    [api] = out[1]
    assert api.problem_id == db.alert_id
    assert api.caused_by == ["database_query_time"]
    assert state.episodes["target_breach:database_query_time"].problem_id == db.alert_id


# --- anomaly ------------------------------------------------------------------------


def change(ts: float, before: float, after: float, *, worse: bool = True) -> ChangePoint:
    return ChangePoint(
        at=at(ts),
        before=before,
        after=after,
        shift=after - before,
        shift_pct=(after - before) / before * 100.0,
        worse=worse,
    )


def test_a_recent_worse_change_point_fires_and_an_old_one_does_not() -> None:
    recent = MonitorInputs(
        judged={"api_response_time": jdg("api_response_time", 70.0)},
        change_points={"api_response_time": [change(NOW - 60, 40.0, 70.0)]},
    )
    [alert], _ = evaluate(recent, None, now=NOW, config=CONFIG)
    assert (alert.kind, alert.severity) == ("anomaly", "high")  # +75 %
    assert "40 to 70" in alert.message
    old = MonitorInputs(change_points={"api_response_time": [change(NOW - 3600, 40.0, 70.0)]})
    assert evaluate(old, None, now=NOW, config=CONFIG)[0] == []
    better = MonitorInputs(
        change_points={"api_response_time": [change(NOW - 60, 70.0, 40.0, worse=False)]}
    )
    assert evaluate(better, None, now=NOW, config=CONFIG)[0] == []


def test_an_anomaly_on_a_breached_metric_adds_no_second_alert() -> None:
    inputs = MonitorInputs(
        judged={"api_response_time": jdg("api_response_time", 180.0)},
        change_points={"api_response_time": [change(NOW - 60, 100.0, 180.0)]},
    )
    drafts, _ = evaluate(inputs, None, now=NOW, config=CONFIG)
    assert [d.kind for d in drafts] == ["target_breach"]


def test_an_outlier_fires_medium_only_the_wrong_way_and_resolves_after_quiet() -> None:
    spike = MonitorInputs(
        outliers={"api_response_time": [Outlier(at=at(NOW - 30), value=400.0, robust_z=9.0)]}
    )
    dip = MonitorInputs(
        outliers={"api_response_time": [Outlier(at=at(NOW - 30), value=5.0, robust_z=-9.0)]}
    )
    assert evaluate(dip, None, now=NOW, config=CONFIG)[0] == []
    out, state = run([spike, MonitorInputs(), MonitorInputs(), MonitorInputs()], start=NOW)
    [alert] = out[0]
    assert (alert.kind, alert.severity) == ("anomaly", "medium")
    assert out[1:3] == [[], []]
    [resolved] = out[3]
    assert resolved.kind == "resolved"
    assert alert.alert_id in resolved.message
    assert state.episodes == {}


# --- capacity_runway ----------------------------------------------------------------


def trigger(
    status: str,
    days: float | None,
    metric: str = "cpu_utilization",
    threshold: float | None = 75.0,
    current: float | None = 62.0,
) -> TriggerCrossing:
    return TriggerCrossing(
        metric=metric,
        status=status,
        reason="",
        threshold=threshold,
        direction="lower_is_better",
        current=current,
        slope_per_day=1.2,
        p_value=None,
        expected_at=None,
        expected_ts=None,
        days_from_now=days,
        days_from_now_range=[],
        horizon_days=None,
        samples=0,
        span_days=None,
    )


@pytest.mark.parametrize(
    ("trig", "severity"),
    [
        (trigger("expected", 10.0), "medium"),
        (trigger("expected", 2.0), "high"),
        (trigger("already_crossed", None), "high"),
        (trigger("expected", 40.0), None),
        (trigger("not_within_horizon", None), None),
        (trigger("insufficient_data", None), None),
    ],
)
def test_capacity_runway(trig: Mapping[str, Any], severity: str | None) -> None:
    drafts, _ = evaluate(MonitorInputs(triggers=[trig]), None, now=NOW, config=CONFIG)
    if severity is None:
        assert drafts == []
        return
    [alert] = drafts
    assert (alert.kind, alert.severity, alert.target) == ("capacity_runway", severity, 75.0)


def test_capacity_runway_closes_when_no_longer_expected() -> None:
    near = MonitorInputs(triggers=[trigger("expected", 5.0)])
    far = MonitorInputs(triggers=[trigger("not_within_horizon", None)])
    out, state = run([near, near, far, far, far])
    assert len(out[0]) == 1
    assert out[1:4] == [[], [], []]
    assert [d.kind for d in out[4]] == ["resolved"]
    assert state.episodes == {}


# --- restart ------------------------------------------------------------------------


def test_a_state_round_tripped_through_json_behaves_identically() -> None:
    steps = [
        judged(api_response_time=160.0, error_rate=1.5),
        judged(api_response_time=250.0, error_rate=1.5),
        judged(api_response_time=90.0, error_rate=1.5),
        judged(api_response_time=90.0, error_rate=0.5),
        judged(api_response_time=90.0, error_rate=0.5),
        judged(api_response_time=90.0, error_rate=0.5),
    ]
    straight, _ = run(steps)
    restarted: list[list[AlertDraft]] = []
    state: MonitorState | None = None
    for i, inputs in enumerate(steps):
        if state is not None:
            state = msgspec.json.decode(msgspec.json.encode(state), type=MonitorState)
        drafts, state = evaluate(inputs, state, now=NOW + i * STEP, config=CONFIG)
        restarted.append(drafts)
    assert restarted == straight
    assert sum(d.notification == "raise" for step in straight for d in step) == 2


def test_alert_ids_are_wire_safe() -> None:
    weird = alert_id_for("anomaly", "a metric/with spaces" * 10, NOW)
    plain = alert_id_for("anomaly", "a metric/with spaces", NOW)
    assert len(weird) <= 100
    assert all(c.isalnum() or c in "._:-" for c in weird + plain)
    assert plain != alert_id_for("anomaly", "a metric_with spaces", NOW)


# --- properties ---------------------------------------------------------------------

_metric_names = st.sampled_from(sorted(CATALOG))
_trends: st.SearchStrategy[TrendName] = st.sampled_from(
    ["improving", "stable", "declining", "unknown"]
)


@st.composite
def judgements(draw: st.DrawFn) -> dict[str, Judgement]:
    names = draw(st.lists(_metric_names, max_size=6, unique=True))
    out: dict[str, Judgement] = {}
    for name in names:
        current = draw(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
        slope = draw(st.none() | st.floats(allow_nan=False))
        spec = CATALOG[name]
        goal = spec.target if spec.target is not None else 500.0  # a configured throughput
        out[name] = Judgement(
            spec=spec,
            current=current,
            statistic=spec.statistic,
            target=goal,
            target_source="catalog",
            ratio=miss_ratio(spec, current, goal),
            trend=TrendResult(trend=draw(_trends), samples=30, slope_per_hour=slope),
        )
    return out


_triggers = st.builds(
    trigger,
    status=st.sampled_from(["expected", "already_crossed", "not_within_horizon", "no_data"]),
    days=st.none() | st.floats(),
    metric=_metric_names,
    threshold=st.none() | st.floats(),
    current=st.none() | st.floats(),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            judgements(),
            st.lists(st.tuples(_metric_names, _metric_names), max_size=4),
            st.lists(_triggers, max_size=3),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_evaluate_never_raises_and_never_raises_an_open_key_twice(
    steps: list[tuple[dict[str, Judgement], list[tuple[str, str]], list[TriggerCrossing]]],
) -> None:
    state = MonitorState()
    for i, (values, pairs, triggers) in enumerate(steps):
        inputs = MonitorInputs(
            judged=values, links=[link(c, s) for c, s in pairs], triggers=triggers
        )
        drafts, after = evaluate(inputs, state, now=NOW + i * STEP, config=CONFIG)
        raised = [d.episode_key for d in drafts if d.notification == "raise"]
        assert len(raised) == len(set(raised))
        assert not set(raised) & set(state.episodes)
        assert {d.alert_id for d in drafts if d.notification == "raise"} <= {
            e.alert_id for e in after.episodes.values()
        }
        for d in drafts:
            d.to_alert()  # every draft is a valid wire message
        state = msgspec.json.decode(msgspec.json.encode(after), type=MonitorState)
