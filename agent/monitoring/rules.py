"""The alert rules: what one assessment says about each episode key, before any memory.

Each rule reads the assessment's figures and emits one ``Signal`` per episode key it has
evidence for. A rule is silent about a key it has no evidence for (no data for the
metric, an ``insufficient_data`` trigger): silence neither opens nor heals an episode,
so a gap in the data cannot resolve an alert. ``episodes.evaluate`` turns signals into
episodes and notifications.

Signal states:

- ``firing``: the condition holds; opens an episode (or keeps one open);
- ``holding``: keeps an open episode open but is not enough to open one (hysteresis,
  so an alert does not flap around the opening threshold);
- ``clear``: the condition is gone; counts towards ``resolve_after``;
- ``handover``: another rule owns the problem now; the episode closes silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from agent.analysis.catalog import CATALOG, Direction
from agent.analysis.judge import Judgement
from agent.analysis.series import finite
from agent.analysis.trend import hours_to_reach
from protocols.messages import BurnRate, CauseLink, ChangePoint, Outlier, Severity, SloStatus
from protocols.reports import TriggerCrossing

AlertKind = Literal["target_breach", "degradation_trend", "anomaly", "capacity_runway", "resolved"]
RuleName = Literal["target_breach", "slo_burn", "degradation_trend", "anomaly", "capacity_runway"]
SignalState = Literal["firing", "holding", "clear", "handover"]

SEVERITY_RANK: Mapping[Severity, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
WIRE_LIMIT = 1e15
"""``Finite`` on the wire is ±1e15: a draft's numbers are clamped into it, NaN becomes 0."""
ANOMALY_HIGH_SHIFT_PCT = 50.0
"""A change point that moves the level by at least this much is a ``high`` anomaly."""
RUNWAY_HIGH_DAYS = 3.0
"""A scaling trigger this close (or already crossed) is a ``high`` capacity alert."""
TREND_MEDIUM_SHARE = 0.25
"""A projected breach within this share of ``trend_horizon_h`` makes the trend ``medium``."""
MESSAGE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """How eager the monitor is; every figure is the caller's, none is hidden in the rules."""

    resolve_after: int = 3
    """Consecutive clear assessments before an episode closes with a ``resolved`` alert."""
    trend_horizon_h: float = 24.0
    """A degradation trend alerts when its projected breach is at most this many hours away."""
    runway_days: float = 14.0
    """A scaling trigger expected within this many days raises ``capacity_runway``."""
    anomaly_lookback_s: float = 420.0
    """Only anomalies this recent (the monitor's interval) are new: older ones were seen."""
    trend_alpha: float = 0.001
    """Mann–Kendall p-value a degradation trend needs to page anyone. The analyses' 0.05
    would, over 20 metrics every 7 minutes, wake someone about once an hour on noise."""

    def __post_init__(self) -> None:
        if self.resolve_after < 1:
            raise ValueError("resolve_after must be at least 1")
        for name in ("trend_horizon_h", "runway_days", "anomaly_lookback_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number ≥ 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class MonitorInputs:
    """What the runtime can take from one assessment; every part may be empty.

    ``links`` are the evidenced cause links only; ``triggers`` are
    ``trigger_crossing(...).to_dict()`` dicts with a ``"metric"`` key added.
    """

    judged: Mapping[str, Judgement] = field(default_factory=dict)
    slo: Mapping[str, SloStatus] = field(default_factory=dict)
    change_points: Mapping[str, list[ChangePoint]] = field(default_factory=dict)
    outliers: Mapping[str, list[Outlier]] = field(default_factory=dict)
    links: Sequence[CauseLink] = ()
    triggers: Sequence[TriggerCrossing] = ()


@dataclass(frozen=True, slots=True)
class Signal:
    """One rule's verdict on one episode key in this assessment."""

    rule: RuleName
    metric: str
    state: SignalState
    severity: Severity | None = None
    """Set when ``firing`` (and for a ``holding`` breach): what the alert would say."""
    current: float = 0.0
    target: float = 0.0
    message: str = ""
    """What is wrong, for a raise; what is fine again, for a clear."""

    @property
    def key(self) -> str:
        return episode_key(self.rule, self.metric)

    @property
    def kind(self) -> AlertKind:
        """The wire kind: an SLO burn is a ``target_breach`` of the SLO's metric."""
        return "target_breach" if self.rule == "slo_burn" else self.rule


def episode_key(rule: RuleName, metric: str) -> str:
    """``f"{kind}:{metric}"``, with ``slo_burn`` standing apart from the plain breach."""
    return f"{rule}:{metric}"


def wire_float(x: float) -> float:
    """A number the wire accepts: finite and within ±1e15 (NaN, which means nothing, is 0)."""
    if math.isnan(x):
        return 0.0
    return min(max(x, -WIRE_LIMIT), WIRE_LIMIT)


def _unit(metric: str, judged: Mapping[str, Judgement]) -> str:
    j = judged.get(metric)
    if j is not None:
        return j.spec.unit
    spec = CATALOG.get(metric)
    return spec.unit if spec is not None else ""


def _direction(metric: str, judged: Mapping[str, Judgement]) -> Direction | None:
    j = judged.get(metric)
    if j is not None:
        return j.spec.direction
    spec = CATALOG.get(metric)
    return spec.direction if spec is not None else None


def _catalog_target(metric: str, judged: Mapping[str, Judgement]) -> float:
    j = judged.get(metric)
    if j is not None:
        return j.target
    spec = CATALOG.get(metric)
    return spec.target if spec is not None and spec.target is not None else 0.0


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


# --- target_breach ------------------------------------------------------------------


def target_breach(judged: Mapping[str, Judgement]) -> Iterator[Signal]:
    """A metric missing its target (miss ratio > 1) fires at the judge's severity.

    Severity comes from ``agent.analysis.judge`` (> 1.0 low, ≥ 1.2 medium, ≥ 1.5 high,
    ≥ 2.0 critical), so the alert and the report never disagree. Meeting the target is
    ``clear``; a ratio that is neither (NaN) is no evidence.
    """
    for metric, j in judged.items():
        unit = f" {j.spec.unit}" if j.spec.unit else ""
        sev = j.severity
        if sev is not None:
            yield Signal(
                rule="target_breach",
                metric=metric,
                state="firing",
                severity=sev,
                current=j.current,
                target=j.target,
                message=_clip(
                    f"{metric} is {_fmt(j.current)}{unit} ({j.statistic}) against a target of "
                    f"{_fmt(j.target)}{unit}: miss ratio {j.ratio:.3g}, severity {sev}"
                ),
            )
        elif j.meets_target:
            yield Signal(
                rule="target_breach",
                metric=metric,
                state="clear",
                current=j.current,
                target=j.target,
                message=(
                    f"{metric} is {_fmt(j.current)}{unit}, within its target {_fmt(j.target)}{unit}"
                ),
            )


# --- degradation_trend --------------------------------------------------------------


def hours_to_breach(j: Judgement) -> float | None:
    """Hours until ``current`` reaches ``target`` at the trend's slope, in the metric's direction.

    ``hours_to_reach``: lower-is-better rises towards its target, higher-is-better (bounded
    or not: the target is a level either way) falls towards it. None when the slope is
    missing or points away from the target; 0 when the target is already reached.
    """
    reach = hours_to_reach(j.current, j.target, j.spec.direction, j.trend.slope_per_hour)
    return None if reach is None else reach[0]


def degradation_trend(judged: Mapping[str, Judgement], config: MonitorConfig) -> Iterator[Signal]:
    """A metric still meeting its target but significantly worsening, due within the horizon.

    Fires when the trend is ``declining`` (Mann–Kendall significant, in the metric's
    direction) and ``hours_to_breach`` ≤ ``trend_horizon_h``. Severity ``medium`` when
    the breach is within a quarter of the horizon (6 h by default), else ``low``: it has
    not hurt anyone yet. A declining trend further out ``holds`` an open episode (no
    flapping at the horizon). Once the metric breaches, ``handover``: target_breach
    owns it and the trend episode closes without a ``resolved`` alert, which would
    read as good news. ``unknown`` trends (too few samples) are no evidence.
    """
    for metric, j in judged.items():
        if j.trend.trend == "unknown":
            continue
        if j.severity is not None:
            yield Signal(rule="degradation_trend", metric=metric, state="handover")
            continue
        if not j.meets_target:
            continue
        unit = f" {j.spec.unit}" if j.spec.unit else ""
        p_value = j.trend.p_value
        strong = p_value is not None and p_value <= config.trend_alpha
        if not j.trend.declining or not strong:
            yield Signal(
                rule="degradation_trend",
                metric=metric,
                state="clear",
                current=j.current,
                target=j.target,
                message=f"{metric} is no longer worsening (trend {j.trend.trend}, "
                f"p {p_value if p_value is not None else 'n/a'})",
            )
            continue
        hours = hours_to_breach(j)
        if hours is None or hours > config.trend_horizon_h:
            yield Signal(
                rule="degradation_trend",
                metric=metric,
                state="holding",
                current=j.current,
                target=j.target,
            )
            continue
        slope = abs(j.trend.slope_per_hour or 0.0)
        p = j.trend.p_value
        why = f"Theil–Sen, Mann–Kendall p {p:.2g}" if p is not None else "Theil–Sen"
        sev: Severity = "medium" if hours <= TREND_MEDIUM_SHARE * config.trend_horizon_h else "low"
        yield Signal(
            rule="degradation_trend",
            metric=metric,
            state="firing",
            severity=sev,
            current=j.current,
            target=j.target,
            message=_clip(
                f"{metric} is {_fmt(j.current)}{unit}, still within its target "
                f"{_fmt(j.target)}{unit}, but worsening by {slope:.3g}{unit}/h "
                f"({why}): "
                f"projected to breach in {hours:.1f} h"
            ),
        )


# --- anomaly ------------------------------------------------------------------------


def _recent(at: datetime, now: float, lookback_s: float) -> bool:
    return at.timestamp() >= now - lookback_s


def _bad_outlier(o: Outlier, direction: Direction | None) -> bool:
    """An outlier the wrong way for the metric (a latency dip is no anomaly to page about)."""
    if direction is None:
        return True
    return o.robust_z > 0.0 if direction == "lower_is_better" else o.robust_z < 0.0


def anomaly(inputs: MonitorInputs, now: float, config: MonitorConfig) -> Iterator[Signal]:
    """A worse change point, or an outlier the wrong way, within ``anomaly_lookback_s`` of now.

    Only what happened since the last assessment is new: the window slides, so an older
    change point keeps being found but was already judged. Severity ``medium``, ``high``
    when a change point moves the level by ≥ 50 %. On a metric already in breach the
    anomaly only ``holds`` an open episode: the breach alert (re-notified on a rise)
    says it already. Every metric without a recent anomaly is ``clear``: each
    assessment without one is a quiet one.
    """
    judged = inputs.judged
    metrics = sorted({*inputs.change_points, *inputs.outliers, *judged})
    for metric in metrics:
        direction = _direction(metric, judged)
        unit = _unit(metric, judged)
        unit_s = f" {unit}" if unit else ""
        points = [
            cp
            for cp in inputs.change_points.get(metric, [])
            if cp.worse and _recent(cp.at, now, config.anomaly_lookback_s)
        ]
        spikes = [
            o
            for o in inputs.outliers.get(metric, [])
            if _bad_outlier(o, direction) and _recent(o.at, now, config.anomaly_lookback_s)
        ]
        j = judged.get(metric)
        target = _catalog_target(metric, judged)
        if not points and not spikes:
            yield Signal(
                rule="anomaly",
                metric=metric,
                state="clear",
                current=j.current if j is not None else 0.0,
                target=target,
                message=f"no new anomaly on {metric}",
            )
            continue
        sev: Severity = "medium"
        parts: list[str] = []
        current = j.current if j is not None else math.nan
        if points:
            cp = max(points, key=lambda c: (abs(c.shift_pct or 0.0), c.at))
            if cp.shift_pct is not None and abs(cp.shift_pct) >= ANOMALY_HIGH_SHIFT_PCT:
                sev = "high"
            pct = f" ({cp.shift_pct:+.0f} %)" if cp.shift_pct is not None else ""
            parts.append(
                f"{metric} shifted from {_fmt(cp.before)} to {_fmt(cp.after)}{unit_s}{pct} "
                f"at {cp.at.isoformat()}"
            )
            if math.isnan(current):
                current = cp.after
        if spikes:
            o = max(spikes, key=lambda s: abs(s.robust_z))
            parts.append(
                f"{metric} spiked to {_fmt(o.value)}{unit_s} ({abs(o.robust_z):.1f} robust σ "
                f"from the window's median) at {o.at.isoformat()}"
            )
            if math.isnan(current):
                current = o.value
        breached = j is not None and j.severity is not None
        yield Signal(
            rule="anomaly",
            metric=metric,
            state="holding" if breached else "firing",
            severity=sev,
            current=current,
            target=target,
            message=_clip("; ".join(parts)),
        )


# --- capacity_runway ----------------------------------------------------------------


def capacity_runway(
    triggers: Sequence[TriggerCrossing], judged: Mapping[str, Judgement], config: MonitorConfig
) -> Iterator[Signal]:
    """A scaling trigger already crossed, or expected within ``runway_days``.

    Severity ``high`` when crossed or at most 3 days away, else ``medium``. A trigger
    ``not_within_horizon``, or expected later than ``runway_days``, is ``clear``;
    ``insufficient_data``/``no_data`` is no evidence. With several triggers for one
    metric the nearest speaks.
    """
    best: dict[str, Signal] = {}
    for trig in triggers:
        metric, status = trig.metric, trig.status
        if not metric:
            continue
        threshold, current = finite(trig.threshold), finite(trig.current)
        days = finite(trig.days_from_now)
        unit = _unit(metric, judged)
        unit_s = f" {unit}" if unit else ""
        th = threshold if threshold is not None else 0.0
        cur = current if current is not None else 0.0
        signal: Signal | None = None
        if status == "already_crossed":
            signal = Signal(
                rule="capacity_runway",
                metric=metric,
                state="firing",
                severity="high",
                current=cur,
                target=th,
                message=_clip(
                    f"{metric} at {_fmt(cur)}{unit_s} has crossed its scaling trigger "
                    f"{_fmt(th)}{unit_s}: scale now"
                ),
            )
        elif status == "expected" and days is not None and days <= config.runway_days:
            slope = finite(trig.slope_per_day)
            rate = f" (moving {slope:+.3g}{unit_s}/day)" if slope is not None else ""
            signal = Signal(
                rule="capacity_runway",
                metric=metric,
                state="firing",
                severity="high" if days <= RUNWAY_HIGH_DAYS else "medium",
                current=cur,
                target=th,
                message=_clip(
                    f"{metric} at {_fmt(cur)}{unit_s}{rate} is expected to cross its scaling "
                    f"trigger {_fmt(th)}{unit_s} in {days:.1f} days"
                ),
            )
        elif status in ("expected", "not_within_horizon"):
            signal = Signal(
                rule="capacity_runway",
                metric=metric,
                state="clear",
                current=cur,
                target=th,
                message=f"{metric} is not expected to reach {_fmt(th)}{unit_s} "
                f"within {config.runway_days:g} days",
            )
        if signal is not None and _stronger(signal, best.get(metric)):
            best[metric] = signal
    yield from best.values()


def _stronger(a: Signal, b: Signal | None) -> bool:
    if b is None:
        return True
    if (a.state == "firing") != (b.state == "firing"):
        return a.state == "firing"
    ra = SEVERITY_RANK[a.severity] if a.severity is not None else 0
    rb = SEVERITY_RANK[b.severity] if b.severity is not None else 0
    return ra > rb


# --- SLO burn rate ------------------------------------------------------------------


def _burn_message(metric: str, rule: BurnRate) -> str:
    long = f"{rule.long_burn:.1f}×" if rule.long_burn is not None else "?"
    short = f"{rule.short_burn:.1f}×" if rule.short_burn is not None else "?"
    return (
        f"{metric} error budget burning {long} over {rule.long_window} and {short} over "
        f"{rule.short_window} ({rule.severity}: {rule.threshold:g}×)"
    )


def _slo_levels(
    metric: str, status: SloStatus, judged: Mapping[str, Judgement]
) -> tuple[float, float]:
    """(current, target) of the SLO's metric: the judged ones, else from the SLO itself."""
    j = judged.get(metric)
    if j is not None:
        return j.current, j.target
    if _direction(metric, judged) == "lower_is_better":  # error rate: bad share in %
        return status.bad_fraction * 100.0, 100.0 - status.objective_pct
    return (1.0 - status.bad_fraction) * 100.0, status.objective_pct


def slo_burn(slo: Mapping[str, SloStatus], judged: Mapping[str, Judgement]) -> Iterator[Signal]:
    """Any firing multi-window burn rate: ``critical`` for a page rule, ``high`` for a ticket.

    ``BurnRate.firing`` already needs both windows at or over the threshold, so a short
    spike the long window does not see never fires. The most severe firing rule names
    the message (page before ticket, then the fastest burn). No rule firing while at
    least one rule has data for both windows is ``clear``; no data is no evidence.
    The wire kind is ``target_breach`` (PROTOCOL's kinds are fixed), the episode key
    ``slo_burn:<metric>``, apart from the plain breach of the same metric.
    """
    for metric, status in slo.items():
        current, target = _slo_levels(metric, status, judged)
        firing = [b for b in status.burn_rates if b.firing]
        if firing:
            rule = max(
                firing,
                key=lambda b: (b.severity == "page", b.threshold, b.long_burn or 0.0),
            )
            yield Signal(
                rule="slo_burn",
                metric=metric,
                state="firing",
                severity="critical" if rule.severity == "page" else "high",
                current=current,
                target=target,
                message=_clip(_burn_message(metric, rule)),
            )
        elif any(b.long_burn is not None and b.short_burn is not None for b in status.burn_rates):
            yield Signal(
                rule="slo_burn",
                metric=metric,
                state="clear",
                current=current,
                target=target,
                message=f"{metric} error budget no longer burning over any alerting rule",
            )


def signals(inputs: MonitorInputs, *, now: float, config: MonitorConfig) -> dict[str, Signal]:
    """Every rule's signals for one assessment, keyed by episode key."""
    out: dict[str, Signal] = {}
    for signal in (
        *target_breach(inputs.judged),
        *slo_burn(inputs.slo, inputs.judged),
        *degradation_trend(inputs.judged, config),
        *anomaly(inputs, now, config),
        *capacity_runway(inputs.triggers, inputs.judged, config),
    ):
        out[signal.key] = signal
    return out
