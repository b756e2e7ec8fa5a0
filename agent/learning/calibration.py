"""From what was verified to what the next plan expects: the learning state read by the model.

``agent.learning.model`` holds the statistics (context features, partial pooling,
predictive intervals); this module hands it the verified evidence of every
(approach, metric) pair, once per task, and gives the planner its ``Calibration``.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.analysis.bottlenecks import Finding
from agent.learning.model import Gain, Pool, gain, pool
from agent.learning.state import OutcomeSummary
from agent.planning.prioritize import Calibration, context_of_finding


def pool_of(summaries: Mapping[tuple[str, str], OutcomeSummary]) -> Pool:
    """Every pair's evidence, pooled (``model.pool``)."""
    return pool(
        {pair: s.evidence() for pair, s in summaries.items() if s.fitted > 0},
        {
            (*pair, service): e.evidence()
            for pair, s in summaries.items()
            for service, e in s.by_service.items()
            if e.n > 0
        },
    )


def calibration_from(
    summaries: Mapping[tuple[str, str], OutcomeSummary],
    state: Mapping[str, float] | None = None,
    service: str | None = None,
) -> Calibration:
    """``prioritize``'s ``calibrate`` hook: the gain of an approach for a finding, in the
    finding's context (its miss, and the ``state``'s utilisations) on ``service``, from
    ``summaries``."""
    fitted = pool_of(summaries)
    known = dict(state or {})

    def calibrate(approach_key: str, f: Finding) -> Gain:
        context = context_of_finding(approach_key, f, known)
        return gain(fitted, approach_key, f.metric, context, service)

    return calibrate
