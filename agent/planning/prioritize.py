"""Prioritising: one playbook approach per bottleneck, scored, merged, ordered and phased.

docs/methods.md §11, "Prioritisation": expected gain × business weight, against effort; phases
by severity and score. Pure: findings in, planned items out.

How a plan is made from ranked findings:

1. **Targets.** Every finding is a target, except a symptom (its cause is another
   ranked bottleneck, so fixing the cause is the plan) and a repeat of a metric (the
   most urgent finding of a metric stands for it).
2. **Candidates.** The playbook's approaches for the target's bottleneck type, less
   those that cannot pay off there: one the implementer reported infeasible for that
   metric (``sinking``), and one whose ``needs`` condition was measured and is absent
   (``signals[need] is False``: a pool for a database whose pools are healthy). Each is
   kept as a ``Skipped`` with its reason, on the item chosen instead
   (``PlannedItem.skipped``, and its rationale) and by ``sunk_candidates`` (which also
   names targets left with no approach at all). A candidate whose calibrated gain for
   the target is at or below 0 is skipped too: verified outcomes say it does no good
   in this context (the learning model's prediction, not the playbook's).
3. **Score** of a candidate for a target, ``score_candidate``: a blend of urgency,
   expected gain and business weight, times an effort factor (see there). An approach
   that is a candidate for k targets is one piece of work, so each target is charged
   effort / k: a single 4-week cache project that fixes two breached metrics beats two
   3-week projects that fix one each, per engineer-week spent.
4. **Rank** a target's candidates, ``rank_candidates``: a candidate whose need nobody
   measured (``signals`` has no value for it) after every candidate with no unmet need,
   because its score assumes it pays off and that is just what is unknown; then by
   score, highest first; ties in the playbook's own order (``approaches_for``). This
   ranking is the one way a finding's approach is chosen: the plan takes its first,
   ``planning.recommend`` its first one or two, so a report and a plan made from the
   same findings, calibration, sinking, signals and weights name the same first fix.
5. **One approach per target**, the first of its ranking. The same approach chosen
   for several targets is **one item** covering all of them: its score is the best of
   its targets', its primary target (whose name makes the ``recommendation_id``) the
   best-scoring one. Nothing is fixed twice.
6. **Phase**, ``phase_for``: the more urgent of the phase of the item's most severe
   finding (critical → Phase_1, high → Phase_2, medium → Phase_3, low → Phase_4) and
   the phase of its score (≥ 80 → Phase_1, ≥ 60 → Phase_2, ≥ 40 → Phase_3, else
   Phase_4). An item another item ``requires`` is promoted to that item's phase when it
   was later: what is built upon is not scheduled after what builds on it.
7. **Order**: by phase, then score (highest first), then key, except that an approach
   comes after every approach it ``requires`` that is also in the plan. A required
   approach that is not in the plan is not added (the findings did not call for it —
   it may be in place already); the rationale says it is needed first.

No findings give no items: a healthy backend has nothing in Phase_1.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Literal

import msgspec

from agent.analysis.bottlenecks import Finding, fmt
from agent.analysis.catalog import MetricSpec
from agent.learning.model import EMPTY_POOL, Context, Gain, context_of, gain
from agent.planning.playbook import CONDITIONS, Approach, approaches_for
from protocols.messages import BusinessImpactWeights, Phase, PlanEntry, Severity

Category = Literal["api_performance", "scalability", "ai_processing", "infrastructure_efficiency"]
CATEGORIES: tuple[Category, ...] = (
    "api_performance",
    "scalability",
    "ai_processing",
    "infrastructure_efficiency",
)
PHASES: tuple[Phase, ...] = ("Phase_1_Critical", "Phase_2_High", "Phase_3_Medium", "Phase_4_Low")

Calibration = Callable[[str, Finding], Gain]
"""(approach key, finding) → the expected gain in % in the finding's context."""
Signals = Mapping[str, bool | None]
"""Condition (``Approach.needs``) → ``True`` seen in the data, ``False`` measured and
absent, ``None`` (or no entry) not measured."""
NO_SIGNALS: Signals = MappingProxyType({})
NO_SINKING: Mapping[tuple[str, str], str] = MappingProxyType({})


def recommendation_id(task_id: str, metric: str, approach_key: str) -> str:
    """``rec-`` + 12 hex of sha256 over (task, metric, approach): a redelivery gets the same id.

    Here rather than in ``recommend`` because the plan names its items with it and
    ``recommend`` ranks with this module: one direction of import.
    """
    digest = hashlib.sha256(f"{task_id}\x1f{metric}\x1f{approach_key}".encode()).hexdigest()
    return f"rec-{digest[:12]}"


@dataclass(frozen=True, slots=True)
class BusinessWeights:
    """How much each business category counts; the directive's ``business_impact_weights``.

    Checked by the wire's one rule (``BusinessImpactWeights``), whoever gives them (a
    directive, the settings): each weight in [0, 1], summing to 1 within 1e-6, so the
    largest is at least 0.25 and ``relative`` never divides by zero.
    """

    api_performance: float = 0.35
    scalability: float = 0.25
    ai_processing: float = 0.20
    infrastructure_efficiency: float = 0.20

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        try:
            msgspec.convert(values, BusinessImpactWeights)
        except msgspec.ValidationError as exc:
            raise ValueError(f"business weights {values}: {exc}") from None

    @classmethod
    def from_wire(cls, weights: BusinessImpactWeights | None) -> BusinessWeights:
        """The directive's weights, or the defaults when it names none."""
        if weights is None:
            return cls()
        return cls(
            api_performance=weights.api_performance,
            scalability=weights.scalability,
            ai_processing=weights.ai_processing,
            infrastructure_efficiency=weights.infrastructure_efficiency,
        )

    def weight(self, category: Category) -> float:
        value: float = getattr(self, category)
        return value

    def relative(self, category: Category) -> float:
        """The category's weight over the largest weight: 1 for the heaviest category."""
        return self.weight(category) / max(self.weight(c) for c in CATEGORIES)


DEFAULT_WEIGHTS = BusinessWeights()

CATEGORY: Mapping[tuple[str, str], Category] = MappingProxyType(
    {
        # api: user-facing request latency and correctness; throughput is capacity.
        ("api", "processing_latency"): "api_performance",
        ("api", "availability"): "api_performance",
        ("api", "reliability"): "api_performance",
        ("api", "throughput_capacity"): "scalability",
        # chat: connections and message rate are capacity; message latency is what a
        # user feels the way they feel API latency.
        ("chat", "connection_scaling"): "scalability",
        ("chat", "processing_latency"): "api_performance",
        ("chat", "delivery_latency"): "api_performance",
        # feed: served through the API, so its latency and freshness are API
        # performance; its cache hit rate is infrastructure efficiency like Redis's.
        ("feed", "data_access"): "api_performance",
        ("feed", "processing_latency"): "api_performance",
        ("feed", "data_staleness"): "api_performance",
        ("feed", "cache_efficiency"): "infrastructure_efficiency",
        # ai: everything the models and their pipeline do.
        ("ai", "ai_processing_speed"): "ai_processing",
        ("ai", "nlp_computation"): "ai_processing",
        ("ai", "data_pipeline"): "ai_processing",
        # infra: how well the shared resources are used.
        ("infra", "cache_efficiency"): "infrastructure_efficiency",
        ("infra", "database_latency"): "infrastructure_efficiency",
        ("infra", "resource_saturation"): "infrastructure_efficiency",
    }
)
"""(catalog domain, bottleneck type) → business category: the one table of that fact."""

DEFAULT_CATEGORY: Category = "api_performance"
"""For a metric outside the catalog: the user-facing category, the heaviest by default."""


def category_of(spec: MetricSpec) -> Category:
    """The business category a metric's findings count towards."""
    return CATEGORY.get((spec.domain, spec.bottleneck_type), DEFAULT_CATEGORY)


# --- the score -------------------------------------------------------------------

URGENCY_SHARE = 0.45
GAIN_SHARE = 0.30
WEIGHT_SHARE = 0.25
GAIN_CAP_PCT = 100.0
"""Gains above 100 % (added capacity) count as 100: the score measures need, not headroom."""
EFFORT_HALF_WEEKS = 8.0
"""Engineer-weeks that halve a score: two months of one engineer is a big commitment."""


def _unit(x: float) -> float:
    """``x`` clamped to [0, 1]; NaN counts as 0."""
    return min(max(x, 0.0), 1.0) if not math.isnan(x) else 0.0


def effort_factor(effort_weeks: float) -> float:
    """``1 / (1 + effort / 8)``: 1 week keeps 0.89 of a score, 4 weeks 0.67, 8 weeks 0.5."""
    effort = effort_weeks if math.isfinite(effort_weeks) and effort_weeks > 0.0 else 0.0
    return 1.0 / (1.0 + effort / EFFORT_HALF_WEEKS)


def score_candidate(
    urgency: float, gain_pct: float, relative_weight: float, effort_weeks: float
) -> float:
    """backend_strategic_score, 0–100, of an approach for one finding.

    ``100 × (0.45·u + 0.30·g + 0.25·w) × 1/(1 + e/8)`` with
    ``u`` = urgency / 100 (the finding's 1–100), ``g`` = min(expected gain %, 100) / 100,
    ``w`` = the category's weight / the largest weight, ``e`` = engineer-weeks charged.

    Urgency leads because it already folds in how far off and how fast worsening the
    metric is; gain and weight then separate approaches and categories. Each term is
    clamped to [0, 1] (NaN → 0), so the score is finite, in [0, 100], rises with
    urgency, gain and weight and falls with effort. Raising a category's weight never
    lowers its items' scores and raises them unless it was already the largest weight;
    the other categories' scores fall, so its items move up the plan either way.
    """
    blend = (
        URGENCY_SHARE * _unit(urgency / 100.0)
        + GAIN_SHARE * _unit(min(gain_pct, GAIN_CAP_PCT) / 100.0)
        + WEIGHT_SHARE * _unit(relative_weight)
    )
    return min(max(100.0 * blend * effort_factor(effort_weeks), 0.0), 100.0)


_SEVERITY_PHASE: Mapping[Severity, Phase] = MappingProxyType(
    {
        "critical": "Phase_1_Critical",
        "high": "Phase_2_High",
        "medium": "Phase_3_Medium",
        "low": "Phase_4_Low",
    }
)
_SCORE_PHASE: tuple[tuple[float, Phase], ...] = (
    (80.0, "Phase_1_Critical"),
    (60.0, "Phase_2_High"),
    (40.0, "Phase_3_Medium"),
)
_SEVERITY_RANK: Mapping[Severity, int] = MappingProxyType(
    {"critical": 0, "high": 1, "medium": 2, "low": 3}
)


def phase_for(severity: Severity, score: float) -> Phase:
    """The more urgent of the severity's phase and the score's phase (see the module doc)."""
    by_score: Phase = "Phase_4_Low"
    for floor, phase in _SCORE_PHASE:
        if score >= floor:
            by_score = phase
            break
    return min(_SEVERITY_PHASE[severity], by_score, key=PHASES.index)


def driving(findings: Iterable[Finding]) -> Finding:
    """The most severe, then most urgent, then first-named of non-empty ``findings``."""
    return min(findings, key=lambda f: (_SEVERITY_RANK[f.severity], -f.urgency, f.metric))


def _score_floor(phase: Phase) -> float:
    return next((floor for floor, p in _SCORE_PHASE if p == phase), 0.0)


# --- the items -------------------------------------------------------------------


def context_of_finding(
    approach_key: str, f: Finding, state: Mapping[str, float] | None = None
) -> Context:
    """The state ``f``'s metric is in, as the learning model reads it (``state``: every
    measured metric's current value, for the approach's ``load``)."""
    j = f.judgement
    return context_of(approach_key, f.metric, j.spec.direction, j.current, j.target, state or {})


def prior(approach_key: str, f: Finding) -> Gain:
    """The playbook's figure for the approach with nothing verified (the default).

    The one ``Calibration`` used before anything was verified, by the plan and the
    reports alike: ``rank_candidates`` (so ``prioritize`` and ``planning.recommend``,
    which re-exports it) falls back to it when given none, the one place that default is
    set. The model with no evidence, so its interval is a predictive one at the stated
    level, like a calibrated one.
    """
    return gain(EMPTY_POOL, approach_key, f.metric, context_of_finding(approach_key, f))


def does_no_good(g: Gain) -> bool:
    """Whether verified outcomes say the approach does no good here: its calibrated
    expected gain in this context is at or below 0.

    The expected gain, not the upper end of the mean's interval: a plan recommends what
    is expected to help, and the gain is in context (miss, load, service), so an approach
    that hurts one backend or state stays a candidate where it is expected to help and
    keeps being verified there. (Skipping only when the mean's whole 95 % interval lies
    below 0, to re-try what merely looks harmful, did no better in the simulator:
    docs/learning.md.)
    """
    return g.calibrated and g.expected <= 0.0


def _harmful(g: Gain) -> str:
    return (
        f"verified to do no good here: expected {fmt(g.expected)} % "
        f"({g.verifications} verified outcome(s) on this metric, {g.pooled} pooled)"
    )


def _gain(calibrate: Calibration, approach: Approach, f: Finding) -> Gain:
    """The calibrated gain, or the prior when calibration returns anything non-finite."""
    g = calibrate(approach.key, f)
    if not all(math.isfinite(x) for x in (g.low, g.expected, g.high)):
        return prior(approach.key, f)
    return g


@dataclass(frozen=True, slots=True)
class Coverage:
    """One target an item fixes: the finding, its category, the gain there and the score."""

    finding: Finding
    category: Category
    gain: Gain
    score: float
    relative_weight: float
    """The category's weight over the largest weight, as scored."""
    effort_share_weeks: float
    """The approach's effort divided by the number of targets it was a candidate for."""

    @property
    def metric(self) -> str:
        return self.finding.metric


@dataclass(frozen=True, slots=True)
class Skipped:
    """An approach that is no candidate for a metric, and why.

    Either the implementer reported it infeasible there (``sinking``), or the condition
    it ``needs`` was measured and is absent (``CONDITIONS[need].absent`` is the reason).
    """

    approach_key: str
    metric: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """One approach in the plan and every target it fixes (best-scoring target first)."""

    recommendation_id: str
    approach: Approach
    covers: tuple[Coverage, ...]
    score: float
    """0–100: the best of its targets' scores."""
    phase: Phase
    rationale: str
    order: int
    """0-based position in the plan."""
    skipped: tuple[Skipped, ...] = ()
    """Approaches for this item's targets that were no candidates (infeasible, or a need
    measured absent), in target order: the item was chosen instead of them."""

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(c.metric for c in self.covers)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(c.finding for c in self.covers)

    @property
    def primary(self) -> Coverage:
        """The best-scoring target: it names the item and its ``recommendation_id``."""
        return self.covers[0]

    @property
    def driving(self) -> Finding:
        """The most severe (then most urgent) finding the item fixes: it sets the phase."""
        return driving(self.findings)

    @property
    def expected_gain_pct(self) -> float:
        """The expected gain on the primary target."""
        return self.primary.gain.expected

    def to_entry(self) -> PlanEntry:
        """The wire entry of ``prioritized_plan``; ``target`` is the primary target."""
        return PlanEntry(
            recommendation_id=self.recommendation_id,
            target=self.primary.metric,
            approach=self.approach.name,
            backend_strategic_score=round(self.score, 2),
            implementation_phase=self.phase,
            score_rationale=self.rationale,
        )


# --- choosing: the one ranking of a target's candidates ----------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """One approach scored for one target: what ``rank_candidates`` orders."""

    approach: Approach
    coverage: Coverage
    """The target, its gain from this approach and the score."""
    unmeasured: str | None = None
    """The condition the approach ``needs`` that nobody measured, if any: such a
    candidate ranks after every candidate without one, whatever its score."""

    @property
    def score(self) -> float:
        return self.coverage.score


@dataclass(frozen=True, slots=True)
class Choice:
    """One target's candidates, best first, and the approaches that were no candidates."""

    finding: Finding
    ranked: tuple[Candidate, ...]
    """Best first: the plan takes the first, a report the first one or two. May be empty."""
    skipped: tuple[Skipped, ...] = ()

    @property
    def metric(self) -> str:
        return self.finding.metric


def _targets(findings: Sequence[Finding], symptoms: frozenset[str]) -> list[Finding]:
    """One finding per metric (the most urgent), symptoms left out, in the given order."""
    best: dict[str, Finding] = {}
    for f in findings:
        if f.metric in symptoms:
            continue
        kept = best.get(f.metric)
        if kept is None or (f.urgency, f.judgement.ratio) > (kept.urgency, kept.judgement.ratio):
            best[f.metric] = f
    return list(best.values())


def _need(approach: Approach, signals: Signals) -> bool | None:
    """Whether what the approach needs is there: True (or nothing needed), False, None."""
    if approach.needs is None:
        return True
    seen = signals.get(approach.needs)
    return None if seen is None else bool(seen)


def _absent(need: str) -> str:
    condition = CONDITIONS.get(need)
    return condition.absent if condition is not None else f"{need} measured absent"


def _unmeasured(need: str) -> str:
    condition = CONDITIONS.get(need)
    return condition.unmeasured if condition is not None else f"{need} not measured"


def _candidates(
    targets: Sequence[Finding], sinking: Mapping[tuple[str, str], str], signals: Signals
) -> tuple[dict[str, list[tuple[Approach, str | None]]], list[Skipped]]:
    """Per target, its candidates in playbook order with their unmeasured need; the rest.

    The implementer's word (``sinking``) comes first: an approach both infeasible and
    unneeded is skipped once, as infeasible.
    """
    viable: dict[str, list[tuple[Approach, str | None]]] = {}
    skipped: list[Skipped] = []
    for f in targets:
        viable[f.metric] = []
        for approach in approaches_for(f.judgement.spec.bottleneck_type):
            reason = sinking.get((approach.key, f.metric))
            need = _need(approach, signals)
            if reason is not None:
                skipped.append(Skipped(approach.key, f.metric, reason))
            elif need is False and approach.needs is not None:
                skipped.append(Skipped(approach.key, f.metric, _absent(approach.needs)))
            else:
                viable[f.metric].append((approach, approach.needs if need is None else None))
    return viable, skipped


def rank_candidates(
    findings: Sequence[Finding],
    *,
    weights: BusinessWeights = DEFAULT_WEIGHTS,
    calibrate: Calibration | None = None,
    symptoms: frozenset[str] = frozenset(),
    sinking: Mapping[tuple[str, str], str] = NO_SINKING,
    signals: Signals = NO_SIGNALS,
) -> dict[str, Choice]:
    """Every target's candidate approaches, best first (steps 1–4 of the module doc).

    Metric → ``Choice``, in target order. The one way an approach is chosen for a
    finding: ``prioritize`` takes each target's first, ``recommend`` the first k, so
    the two cannot disagree on the same inputs. It takes every finding rather than one
    because a candidate's effort is shared by all the targets it is a candidate for.

    Order within a target: a candidate whose need is unmeasured last (its score assumes
    a condition nobody saw), then the higher score, then the playbook's order.
    """
    calibration = calibrate or prior
    targets = _targets(findings, symptoms)
    viable, skipped = _candidates(targets, sinking, signals)
    reach: dict[str, int] = {}
    for approaches in viable.values():
        for a, _ in approaches:
            reach[a.key] = reach.get(a.key, 0) + 1

    chosen: dict[str, Choice] = {}
    for f in targets:
        category = category_of(f.judgement.spec)
        relative = weights.relative(category)
        scored: list[tuple[bool, float, int, Candidate]] = []
        for position, (a, unmeasured) in enumerate(viable[f.metric]):
            gain = _gain(calibration, a, f)
            if does_no_good(gain):
                skipped.append(Skipped(a.key, f.metric, _harmful(gain)))
                continue
            share = a.effort_weeks / reach[a.key]
            score = score_candidate(f.urgency, gain.expected, relative, share)
            coverage = Coverage(f, category, gain, score, relative, share)
            scored.append(
                (unmeasured is not None, -score, position, Candidate(a, coverage, unmeasured))
            )
        scored.sort(key=lambda s: s[:3])
        chosen[f.metric] = Choice(
            finding=f,
            ranked=tuple(s[3] for s in scored),
            skipped=tuple(s for s in skipped if s.metric == f.metric),
        )
    return chosen


def sunk_candidates(
    findings: Sequence[Finding],
    sinking: Mapping[tuple[str, str], str],
    *,
    symptoms: frozenset[str] = frozenset(),
    signals: Signals = NO_SIGNALS,
) -> list[Skipped]:
    """Every approach ``prioritize`` drops for a target, in target order, with the reason:
    reported infeasible (``sinking``) or its need measured absent (``signals``).

    A target all of whose approaches are here has no item in the plan: this list is
    where the report finds why.
    """
    return _candidates(_targets(findings, symptoms), sinking, signals)[1]


# --- prioritising ------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    """An item while the plan is assembled: its targets grow, its phase may be promoted."""

    approach: Approach
    covers: list[Coverage]
    score: float = 0.0
    phase: Phase = "Phase_4_Low"
    choices: dict[str, Choice] = field(default_factory=dict)
    """Target → its ranking, for the rationale (runner-up, unmeasured needs)."""
    promoted_by: list[str] = field(default_factory=list)


def _promote(items: dict[str, _Draft]) -> None:
    """Give an item at least the phase of any item in the plan that requires it."""
    changed = True
    while changed:
        changed = False
        for draft in items.values():
            for key in draft.approach.requires:
                needed = items.get(key)
                if needed is not None and PHASES.index(draft.phase) < PHASES.index(needed.phase):
                    needed.phase = draft.phase
                    needed.promoted_by.append(draft.approach.key)
                    changed = True


def _ordered(items: dict[str, _Draft]) -> list[_Draft]:
    """By (phase, −score, key), an item never before one it ``requires``."""
    remaining = dict(items)
    out: list[_Draft] = []

    def rank(d: _Draft) -> tuple[int, float, str]:
        return PHASES.index(d.phase), -d.score, d.approach.key

    while remaining:
        ready = [
            d for d in remaining.values() if not any(k in remaining for k in d.approach.requires)
        ]
        # The playbook is acyclic (tested); were it not, fall back to rank alone.
        pick = min(ready or remaining.values(), key=rank)
        out.append(pick)
        del remaining[pick.approach.key]
    return out


def score_terms(a: Approach, c: Coverage) -> str:
    """How ``c.score`` was computed, each term with its source (measured, prior, calibrated)."""
    f = c.finding
    share = (
        f"{fmt(a.effort_weeks)} engineer-weeks"
        if c.effort_share_weeks == a.effort_weeks
        else f"{fmt(a.effort_weeks)} engineer-weeks shared by the "
        f"{round(a.effort_weeks / c.effort_share_weeks)} breached targets it acts on"
    )
    return (
        f"score {c.score:.1f} = 100 × (0.45·{_unit(f.urgency / 100):.2f} urgency [measured] + "
        f"0.30·{_unit(min(c.gain.expected, GAIN_CAP_PCT) / 100):.2f} gain "
        f"[{fmt(c.gain.expected)} %, {c.gain.source_text()}] + "
        f"0.25·{c.relative_weight:.2f} {c.category} weight [business weights]) × "
        f"{effort_factor(c.effort_share_weeks):.2f} effort [{share}, playbook prior]"
    )


def _rationale(draft: _Draft, items: Mapping[str, _Draft], skipped: Sequence[Skipped]) -> str:
    a = draft.approach
    parts = [
        f"{a.key} for {', '.join(c.metric for c in draft.covers)}: "
        f"{score_terms(a, draft.covers[0])}"
    ]
    worst = driving(c.finding for c in draft.covers)
    if draft.promoted_by:
        why = f"promoted, required by {', '.join(sorted(set(draft.promoted_by)))}"
    elif _SEVERITY_PHASE[worst.severity] == draft.phase:
        why = f"{worst.metric} is {worst.severity}"
    else:
        why = f"score {draft.score:.1f} ≥ {_score_floor(draft.phase):g}"
    parts.append(f"{draft.phase}: {why}")
    for key in a.requires:
        where = "earlier in this plan" if key in items else "not in this plan"
        parts.append(f"needs {key} first ({where})")
    for c in draft.covers:
        ranked = draft.choices[c.metric].ranked
        if len(ranked) > 1:
            parts.append(
                f"next best for {c.metric}: {ranked[1].approach.key} {ranked[1].score:.1f}"
            )
        for i, candidate in enumerate(ranked):
            if candidate.unmeasured is None:
                continue
            said = _unmeasured(candidate.unmeasured)
            parts.append(
                f"{candidate.approach.key} chosen for {c.metric} unconfirmed: {said}"
                if i == 0
                else f"{candidate.approach.key} ranked after every approach with no unmet "
                f"need for {c.metric}: {said}"
            )
    parts.extend(f"{s.approach_key} not chosen for {s.metric}: {s.reason}" for s in skipped)
    return "; ".join(parts)


def prioritize(
    task_id: str,
    findings: Sequence[Finding],
    *,
    weights: BusinessWeights = DEFAULT_WEIGHTS,
    calibrate: Calibration | None = None,
    symptoms: frozenset[str] = frozenset(),
    sinking: Mapping[tuple[str, str], str] = NO_SINKING,
    signals: Signals = NO_SIGNALS,
) -> list[PlannedItem]:
    """The prioritised plan for ``findings`` (the module doc says how, step by step).

    ``calibrate`` gives the expected gain per (approach, metric), the playbook prior by
    default; ``symptoms`` are metrics whose cause is another finding; ``sinking`` maps
    (approach key, metric) to why the implementer found it infeasible; ``signals`` says
    which conditions approaches ``need`` were seen, measured absent or not measured.
    Deterministic: the same inputs give the same items, ids and order.
    """
    chosen = rank_candidates(
        findings,
        weights=weights,
        calibrate=calibrate,
        symptoms=symptoms,
        sinking=sinking,
        signals=signals,
    )
    drafts: dict[str, _Draft] = {}
    for choice in chosen.values():
        if not choice.ranked:
            continue
        first = choice.ranked[0]
        draft = drafts.get(first.approach.key)
        if draft is None:
            draft = drafts[first.approach.key] = _Draft(first.approach, [])
        draft.covers.append(first.coverage)
        draft.choices[choice.metric] = choice

    for draft in drafts.values():
        draft.covers.sort(key=lambda c: (-c.score, -c.finding.urgency, c.metric))
        draft.score = draft.covers[0].score
        draft.phase = phase_for(driving(c.finding for c in draft.covers).severity, draft.score)
    _promote(drafts)

    items = []
    for order, draft in enumerate(_ordered(drafts)):
        mine = [
            s
            for choice in chosen.values()
            if choice.metric in draft.choices
            for s in choice.skipped
        ]
        items.append(
            PlannedItem(
                recommendation_id=recommendation_id(
                    task_id, draft.covers[0].metric, draft.approach.key
                ),
                approach=draft.approach,
                covers=tuple(draft.covers),
                score=draft.score,
                phase=draft.phase,
                rationale=_rationale(draft, drafts, mine),
                order=order,
                skipped=tuple(mine),
            )
        )
    return items
