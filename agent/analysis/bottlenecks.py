"""Bottlenecks: every judged metric that misses its target, with the evidence, ranked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.analysis.judge import Judgement
from agent.analysis.trend import TrendResult
from protocols.messages import Bottleneck, Severity


@dataclass(frozen=True, slots=True)
class Finding:
    """A metric missing its target; keeps its ``Judgement`` so planning can read the numbers."""

    judgement: Judgement
    severity: Severity
    urgency: int
    evidence: str

    @property
    def metric(self) -> str:
        return self.judgement.spec.name

    def to_bottleneck(self) -> Bottleneck:
        return Bottleneck(
            metric=self.metric,
            bottleneck_type=self.judgement.spec.bottleneck_type,
            severity=self.severity,
            optimization_urgency=self.urgency,
            evidence=self.evidence,
        )


def fmt(x: float) -> str:
    """A number for a sentence: two decimals at most, trailing zeros dropped, tiny values kept."""
    if x != 0.0 and abs(x) < 0.01:
        return f"{x:.3g}"
    text = f"{x:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``20 min``, ``5.5 h``, ``2.3 d``: a span as a person says it."""
    for unit, size in (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if abs(seconds) >= 2 * size or (unit == "min" and abs(seconds) >= size):
            return f"{fmt(round(seconds / size, 1))} {unit}"
    return f"{fmt(round(seconds, 1))} s"


def _samples(n: int) -> str:
    return f"{n} sample{'' if n == 1 else 's'}"


def _quantity(x: float, unit: str) -> str:
    return f"{fmt(x)} {unit}"


def describe_trend(trend: TrendResult, unit: str) -> str:
    """The trend as a clause: a level shift and what followed it, a slope, or why neither.

    e.g. ``stepped 60 → 180 ms at 10:40 UTC (+200 %), stable since (+1.2 ms/h over 20 min)``
    or ``declining +12.5 ms/h over 360 samples`` or ``trend unknown (7 samples)``.
    """
    parts = []
    shift = trend.level_shift
    if shift is not None:
        pct = f" ({shift.shift_pct:+.3g} %)" if shift.shift_pct is not None else ""
        parts.append(
            f"stepped {fmt(shift.before)} → {fmt(shift.after)} {unit} at "
            f"{shift.at.strftime('%Y-%m-%d %H:%M')} UTC{pct}"
        )
    since = " since" if shift is not None else ""
    if trend.trend == "unknown":
        why = trend.note or _samples(trend.samples)
        parts.append(f"trend{since} unknown ({why})")
    elif trend.slope_per_hour is None:
        parts.append(f"{trend.trend}{since}")
    else:
        sign = "+" if trend.slope_per_hour >= 0 else "−"
        slope = f"{sign}{fmt(abs(trend.slope_per_hour))} {unit}/h"
        over = (
            f"over {fmt_duration(trend.span_s)}"
            if shift is not None and trend.span_s is not None
            else f"over {_samples(trend.samples)}"
        )
        parts.append(f"{trend.trend}{since} {slope} {over}")
    return ", ".join(parts)


def evidence(j: Judgement) -> str:
    """One sentence with the computed numbers behind a verdict.

    e.g. ``p95 api_response_time 240 ms vs target 100 ms (2.40×), declining +12.5 ms/h``;
    the statistic is the one actually used (``mean`` where a source could measure no
    p95, with why).
    """
    spec = j.spec
    space = " of the error budget" if spec.bounded and spec.direction == "higher_is_better" else ""
    text = (
        f"{j.statistic} {spec.name} {_quantity(j.current, spec.unit)} "
        f"vs target {_quantity(j.target, spec.unit)} ({j.ratio:.2f}×{space}), "
        f"{describe_trend(j.trend, spec.unit)}"
    )
    if j.statistic_note:
        text += f"; {j.statistic} because {j.statistic_note}"
    if j.rejected:
        text += f"; {j.rejected} impossible sample{'' if j.rejected == 1 else 's'} left out"
    return text


def find_bottlenecks(judgements: Iterable[Judgement]) -> list[Finding]:
    """A ``Finding`` per metric that misses its target, by urgency, then miss ratio, then name."""
    findings = []
    for j in judgements:
        level = j.severity
        if level is None:
            continue
        findings.append(
            Finding(judgement=j, severity=level, urgency=j.urgency, evidence=evidence(j))
        )
    findings.sort(key=lambda f: (-f.urgency, -f.judgement.ratio, f.metric))
    return findings
