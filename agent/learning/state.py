"""The learning state and how each event folds into it.

The state lives in KV, one key per part (``summary_key``, ``plan_key``, ``TOTALS_KEY``,
``INFEASIBLE_KEY``), each updated by read–apply–compare-and-set. Every ``apply_*`` here
is pure and idempotent by the event's id: applied twice it returns the very object it
was given (``is``), so the caller knows to skip the write. ``fold`` replays the event
log through the same functions in the same order as the live path (``apply_event``),
so a rebuilt state equals the live one.

Id memories are bounded (``APPLIED_CAP`` and friends): a duplicate arriving after that
many newer ids would count again. JetStream's own duplicate window and redelivery
limits make that far older than any realistic duplicate.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

from agent.learning.events import FeedbackEvent, LearningEvent, VerificationEvent
from agent.learning.model import RATIO_CLIP, Evidence, evidence_of
from agent.learning.outcomes import Outcome, outcome_of
from protocols.messages import ImplementationUpdate, VerificationResult

WINDOW = 200
"""Recent ratios and errors kept per summary, for quantiles."""
APPLIED_CAP = 2000
"""Verification ids remembered per summary, for idempotency."""
TOTALS_IDS_CAP = 1000
"""Ids remembered in the totals (one KV value: ~40 bytes each, three lists)."""
UNKNOWN_IDS_CAP = 500
PLAN_IDS_CAP = 500
"""Update and verification ids remembered per plan."""

TOTALS_KEY = "totals"
INFEASIBLE_KEY = "infeasible"


def _remember(ids: list[str], new: str, cap: int) -> list[str]:
    """``ids`` + ``new``, the oldest dropped beyond ``cap``."""
    return [*ids[len(ids) - cap + 1 :], new] if len(ids) >= cap else [*ids, new]


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default), non-empty input."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# --- per (approach, metric) --------------------------------------------------------

SERVICES_CAP = 64
"""Services tracked apart per summary; outcomes of more count for the pair alone."""


class ServiceEvidence(msgspec.Struct, frozen=True, kw_only=True):
    """The model's sums for one service's outcomes of a pair (``learning.model.Evidence``)."""

    n: int = 0
    xtx: list[float] = []
    xty: list[float] = []
    yty: float = 0.0

    def evidence(self) -> Evidence:
        return evidence_of(self.n, self.xtx, self.xty, self.yty)

    @classmethod
    def of(cls, e: Evidence) -> ServiceEvidence:
        return cls(n=e.n, xtx=list(e.xtx), xty=list(e.xty), yty=e.yty)


class OutcomeSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Every verified outcome of one approach on one metric, summed; the recent ones kept."""

    approach_key: str
    metric: str
    count: int = 0
    successes: int = 0
    ratio_count: int = 0
    """Outcomes with a ratio (a prediction of 0 has none)."""
    ratio_sum: float = 0.0
    ratio_sq_sum: float = 0.0
    abs_pct_error_sum: float = 0.0
    ratios: list[float] = []
    """The last ``WINDOW`` ratios (clipped to ±``RATIO_CLIP``), oldest first."""
    abs_pct_errors: list[float] = []
    """The last ``WINDOW`` absolute percentage errors, in %."""
    applied: list[str] = []
    """The last ``APPLIED_CAP`` verification ids applied."""
    fitted: int = 0
    """Outcomes in the model's sums below (those with a ratio, counted since the model)."""
    xtx: list[float] = []
    """Σ x xᵀ of the model's features (row-major, ``K``×``K``)."""
    xty: list[float] = []
    """Σ x·ratio."""
    yty: float = 0.0
    """Σ ratio²."""
    intervals: int = 0
    """Outcomes whose prediction stated a level: the denominator of ``coverage``."""
    covered: int = 0
    """Of which the actual fell inside the predicted interval."""
    width_sum: float = 0.0
    """Σ of those intervals' widths, in points."""
    level: float | None = None
    """The level those intervals were stated at (the latest seen)."""
    by_service: dict[str, ServiceEvidence] = {}
    """The same sums per named service (at most ``SERVICES_CAP``)."""

    def evidence(self) -> Evidence:
        """The model's sufficient statistics for this pair."""
        return evidence_of(self.fitted, self.xtx, self.xty, self.yty)

    @property
    def mean_width(self) -> float | None:
        return self.width_sum / self.intervals if self.intervals else None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.count if self.count else None

    @property
    def mean_ratio(self) -> float | None:
        return self.ratio_sum / self.ratio_count if self.ratio_count else None

    @property
    def ratio_sd(self) -> float | None:
        """Sample standard deviation of every ratio (from the sums); None below 2."""
        n = self.ratio_count
        if n < 2:
            return None
        var = (self.ratio_sq_sum - self.ratio_sum * self.ratio_sum / n) / (n - 1)
        return math.sqrt(max(var, 0.0))

    def ratio_quantiles(self) -> tuple[float, float, float] | None:
        """p10, p50, p90 of the recent ratios; None without any."""
        if not self.ratios:
            return None
        ordered = sorted(self.ratios)
        return _quantile(ordered, 0.1), _quantile(ordered, 0.5), _quantile(ordered, 0.9)

    @property
    def mape(self) -> float | None:
        """Mean absolute percentage error over every outcome, in %."""
        return self.abs_pct_error_sum / self.count if self.count else None


def apply_outcome(summary: OutcomeSummary | None, outcome: Outcome) -> OutcomeSummary:
    """``summary`` with ``outcome`` counted; the same object if it was counted already."""
    if summary is None:
        summary = OutcomeSummary(approach_key=outcome.approach_key, metric=outcome.metric)
    elif outcome.verification_id in summary.applied:
        return summary
    ratio_count, ratio_sum, ratio_sq_sum = (
        summary.ratio_count,
        summary.ratio_sum,
        summary.ratio_sq_sum,
    )
    ratios = summary.ratios
    evidence = summary.evidence()
    by_service = summary.by_service
    if outcome.ratio is not None:
        r = min(max(outcome.ratio, -RATIO_CLIP), RATIO_CLIP)
        ratio_count, ratio_sum, ratio_sq_sum = ratio_count + 1, ratio_sum + r, ratio_sq_sum + r * r
        ratios = [*ratios[-(WINDOW - 1) :], r]
        x = outcome.context.x()
        evidence = evidence.add(x, r)
        svc = outcome.service
        if svc and (svc in by_service or len(by_service) < SERVICES_CAP):
            known = by_service.get(svc, ServiceEvidence()).evidence()
            by_service = {**by_service, svc: ServiceEvidence.of(known.add(x, r))}
    stated = outcome.covered is not None
    return msgspec.structs.replace(
        summary,
        fitted=evidence.n,
        xtx=list(evidence.xtx) if evidence.n else [],
        xty=list(evidence.xty) if evidence.n else [],
        yty=evidence.yty,
        intervals=summary.intervals + int(stated),
        covered=summary.covered + int(bool(outcome.covered)),
        width_sum=summary.width_sum + (outcome.width_pct or 0.0),
        level=outcome.level if stated else summary.level,
        by_service=by_service,
        count=summary.count + 1,
        successes=summary.successes + int(outcome.success),
        ratio_count=ratio_count,
        ratio_sum=ratio_sum,
        ratio_sq_sum=ratio_sq_sum,
        abs_pct_error_sum=summary.abs_pct_error_sum + outcome.abs_pct_error,
        ratios=ratios,
        abs_pct_errors=[*summary.abs_pct_errors[-(WINDOW - 1) :], outcome.abs_pct_error],
        applied=_remember(summary.applied, outcome.verification_id, APPLIED_CAP),
    )


# --- per plan ----------------------------------------------------------------------


class FeasibilityNote(msgspec.Struct, frozen=True, kw_only=True):
    feasibility: str
    reason: str | None = None
    reported_at: float
    """Epoch seconds of the update that said so."""


class PlanProgress(msgspec.Struct, frozen=True, kw_only=True):
    """What Hephaestus reported and Athena verified for one plan's items."""

    plan_id: str
    statuses: dict[str, str] = {}
    """Recommendation id → the latest reported status."""
    reported_at: dict[str, float] = {}
    """Recommendation id → epoch seconds of the update that set its status."""
    feasibility: dict[str, FeasibilityNote] = {}
    """Recommendation id → the latest feasibility note."""
    verified: list[str] = []
    """Recommendation ids with at least one verified outcome, sorted."""
    applied_updates: list[str] = []
    applied_verifications: list[str] = []


def apply_update(progress: PlanProgress | None, update: ImplementationUpdate) -> PlanProgress:
    """``progress`` with ``update`` recorded; the same object if it was recorded already.

    Updates can arrive out of order: the latest ``reported_at`` sets a status (a tie goes
    to the one applied last), and likewise the latest update carrying a feasibility.
    """
    if progress is None:
        progress = PlanProgress(plan_id=update.plan_id)
    elif update.update_id in progress.applied_updates:
        return progress
    rec, at = update.recommendation_id, update.reported_at.timestamp()
    statuses, reported_at, feasibility = (
        progress.statuses,
        progress.reported_at,
        progress.feasibility,
    )
    if at >= reported_at.get(rec, -math.inf):
        statuses = {**statuses, rec: update.status}
        reported_at = {**reported_at, rec: at}
    note = feasibility.get(rec)
    if update.feasibility is not None and (note is None or at >= note.reported_at):
        feasibility = {
            **feasibility,
            rec: FeasibilityNote(
                feasibility=update.feasibility, reason=update.reason, reported_at=at
            ),
        }
    return msgspec.structs.replace(
        progress,
        statuses=statuses,
        reported_at=reported_at,
        feasibility=feasibility,
        applied_updates=_remember(progress.applied_updates, update.update_id, PLAN_IDS_CAP),
    )


def apply_plan_verification(
    progress: PlanProgress | None, verified: Outcome | VerificationResult
) -> PlanProgress:
    """``progress`` with the item marked verified; the same object for a verification seen."""
    if progress is None:
        progress = PlanProgress(plan_id=verified.plan_id)
    elif verified.verification_id in progress.applied_verifications:
        return progress
    rec = verified.recommendation_id
    return msgspec.structs.replace(
        progress,
        verified=progress.verified
        if rec in progress.verified
        else sorted([*progress.verified, rec]),
        applied_verifications=_remember(
            progress.applied_verifications, verified.verification_id, PLAN_IDS_CAP
        ),
    )


# --- infeasible (approach, metric) pairs -------------------------------------------


def infeasible_key(approach_key: str, metric: str) -> str:
    return f"{approach_key}|{metric}"


def apply_infeasible(
    current: dict[str, str] | None, update: ImplementationUpdate, approach_key: str, metric: str
) -> dict[str, str]:
    """Set the pair on ``infeasible``, clear it on ``feasible``; the same object if unchanged.

    The value is the implementer's reason (or a note naming the update), which the next
    plan quotes when it passes the approach over for the metric.
    """
    known = current if current is not None else {}
    if not approach_key or not metric or update.feasibility is None:
        return known
    key = infeasible_key(approach_key, metric)
    if update.feasibility == "feasible":
        if key not in known:
            return known
        return {k: v for k, v in known.items() if k != key}
    reason = update.reason or f"reported infeasible by the implementer (update {update.update_id})"
    if known.get(key) == reason:
        return known
    return {**known, key: reason}


def sinking(infeasible: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """The infeasible map as ``prioritize``'s ``sinking``: (approach key, metric) → reason."""
    out: dict[tuple[str, str], str] = {}
    for key, reason in infeasible.items():
        approach, sep, metric = key.rpartition("|")
        if sep:
            out[(approach, metric)] = reason
    return out


# --- totals ------------------------------------------------------------------------


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """Counts across everything: the denominators of the effectiveness figures."""

    verifications: int = 0
    """Distinct verifications received, known or not."""
    unknown_verifications: int = 0
    """Of which for a recommendation we never made."""
    undefined_verifications: int = 0
    """Of which known, but with no defined improvement (e.g. a baseline of 0)."""
    unknown_ids: list[str] = []
    """The last ``UNKNOWN_IDS_CAP`` unknown recommendation ids, for the operator."""
    updates: int = 0
    unknown_updates: int = 0
    plans_issued: int = 0
    items_issued: int = 0
    applied_verifications: list[str] = []
    applied_updates: list[str] = []
    plan_ids: list[str] = []


def apply_totals_verification(totals: Totals | None, event: VerificationEvent) -> Totals:
    """``totals`` with the verification counted once."""
    totals = totals if totals is not None else Totals()
    v = event.verification
    if v.verification_id in totals.applied_verifications:
        return totals
    unknown = event.prediction is None
    undefined = event.prediction is not None and outcome_of(v, event.prediction) is None
    return msgspec.structs.replace(
        totals,
        verifications=totals.verifications + 1,
        unknown_verifications=totals.unknown_verifications + int(unknown),
        undefined_verifications=totals.undefined_verifications + int(undefined),
        unknown_ids=(
            _remember(totals.unknown_ids, v.recommendation_id, UNKNOWN_IDS_CAP)
            if unknown
            else totals.unknown_ids
        ),
        applied_verifications=_remember(
            totals.applied_verifications, v.verification_id, TOTALS_IDS_CAP
        ),
    )


def apply_totals_update(totals: Totals | None, event: FeedbackEvent) -> Totals:
    """``totals`` with the update counted once."""
    totals = totals if totals is not None else Totals()
    u = event.update
    if u.update_id in totals.applied_updates:
        return totals
    return msgspec.structs.replace(
        totals,
        updates=totals.updates + 1,
        unknown_updates=totals.unknown_updates + int(event.metric is None),
        applied_updates=_remember(totals.applied_updates, u.update_id, TOTALS_IDS_CAP),
    )


def apply_plan_issued(totals: Totals | None, plan_id: str, items: int) -> Totals:
    """``totals`` with a published plan of ``items`` items counted once."""
    totals = totals if totals is not None else Totals()
    if plan_id in totals.plan_ids:
        return totals
    return msgspec.structs.replace(
        totals,
        plans_issued=totals.plans_issued + 1,
        items_issued=totals.items_issued + max(0, items),
        plan_ids=_remember(totals.plan_ids, plan_id, TOTALS_IDS_CAP),
    )


def _uncounted(totals: Totals) -> Totals:
    return msgspec.structs.replace(totals, plans_issued=0, items_issued=0, plan_ids=[])


# --- the whole state ---------------------------------------------------------------


@dataclass(slots=True)
class LearningState:
    """Everything learned, as the KV holds it (one entry per key of the module doc)."""

    summaries: dict[tuple[str, str], OutcomeSummary] = field(default_factory=dict)
    plans: dict[str, PlanProgress] = field(default_factory=dict)
    infeasible: dict[str, str] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)

    def same_but_plans_counted(self, other: LearningState) -> bool:
        """Whether ``other`` differs from this at most in the plans its totals count: what
        the count folded off the answer path (``apply_plan_issued``) changes, which no task
        is promised to see at once (a plan's own task never counts it)."""
        return (
            self.summaries == other.summaries
            and self.plans == other.plans
            and self.infeasible == other.infeasible
            and _uncounted(self.totals) == _uncounted(other.totals)
        )

    def copy(self) -> LearningState:
        """New containers around the same frozen values: a state of its own to hand out
        (nothing here is changed in place but the containers)."""
        return LearningState(
            summaries=dict(self.summaries),
            plans=dict(self.plans),
            infeasible=dict(self.infeasible),
            totals=self.totals,
        )


def apply_event(state: LearningState, event: LearningEvent) -> None:
    """Fold one event into ``state`` in place: the live path's steps, one per KV key.

    Verification: totals; then, for a known recommendation with a defined outcome, its
    (approach, metric) summary and its plan (keyed by the verification's ``plan_id``).
    Update: totals; the plan's progress; the infeasible pairs when it names a
    feasibility for a known approach and metric.
    """
    if isinstance(event, VerificationEvent):
        state.totals = apply_totals_verification(state.totals, event)
        if event.prediction is None:
            return
        outcome = outcome_of(event.verification, event.prediction)
        if outcome is None:
            return
        pair = (outcome.approach_key, outcome.metric)
        state.summaries[pair] = apply_outcome(state.summaries.get(pair), outcome)
        state.plans[outcome.plan_id] = apply_plan_verification(
            state.plans.get(outcome.plan_id), outcome
        )
        return
    u = event.update
    state.totals = apply_totals_update(state.totals, event)
    before = state.plans.get(u.plan_id)
    state.plans[u.plan_id] = apply_update(before, u)
    if state.plans[u.plan_id] is before:
        return  # seen before: its feasibility was applied then
    if event.approach_key and event.metric and u.feasibility is not None:
        state.infeasible = apply_infeasible(state.infeasible, u, event.approach_key, event.metric)


def fold(
    events: Iterable[LearningEvent], plans_issued: Iterable[tuple[str, int]] = ()
) -> LearningState:
    """The rebuild: a fresh state with ``plans_issued`` counted and ``events`` replayed in order."""
    state = LearningState()
    for plan_id, items in plans_issued:
        state.totals = apply_plan_issued(state.totals, plan_id, items)
    for event in events:
        apply_event(state, event)
    return state


# --- KV keys -----------------------------------------------------------------------

_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _token(text: str) -> str:
    """``text`` as one KV key token: itself when safe, else a readable, hashed stand-in.

    KV keys allow ``[-/_=.a-zA-Z0-9]`` with ``.`` separating tokens; anything else (and
    ``.``, ``/``, ``=`` inside a name) becomes ``_``, and ``=`` + 12 hex of its sha256
    keeps two different names from meeting on one key.
    """
    if _SAFE_TOKEN.fullmatch(text):
        return text
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:48]
    return f"{readable}={hashlib.sha256(text.encode()).hexdigest()[:12]}"


def summary_key(approach_key: str, metric: str) -> str:
    return f"outcome.{_token(approach_key)}.{_token(metric)}"


def plan_key(plan_id: str) -> str:
    return f"plan.{_token(plan_id)}"
