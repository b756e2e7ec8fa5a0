"""Bottlenecks: every judged metric that misses its target, with the evidence, ranked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.analysis.judge import Judgement
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


def _samples(n: int) -> str:
    return f"{n} sample{'' if n == 1 else 's'}"


def _quantity(x: float, unit: str) -> str:
    return f"{fmt(x)} {unit}"


def evidence(j: Judgement) -> str:
    """One sentence with the computed numbers behind a verdict.

    e.g. ``p95 api_response_time 240 ms vs target 100 ms (2.40×), declining +12.5 ms/h``.
    """
    spec = j.spec
    space = " of the error budget" if spec.bounded and spec.direction == "higher_is_better" else ""
    text = (
        f"{j.statistic} {spec.name} {_quantity(j.current, spec.unit)} "
        f"vs target {_quantity(j.target, spec.unit)} ({j.ratio:.2f}×{space})"
    )
    trend = j.trend
    if trend.trend == "unknown":
        return f"{text}, trend unknown ({_samples(trend.samples)})"
    if trend.slope_per_hour is None:
        return f"{text}, {trend.trend}"
    sign = "+" if trend.slope_per_hour >= 0 else "−"
    slope = f"{sign}{fmt(abs(trend.slope_per_hour))} {spec.unit}/h"
    return f"{text}, {trend.trend} {slope} over {_samples(trend.samples)}"


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
