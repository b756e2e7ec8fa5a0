"""Cause, not only symptom: which breached metric is most likely behind another breached one.

A slow API is often a slow database or a cold cache. ``DEPENDENCIES`` says what each
metric waits on; ``rank_causes`` weighs every breached dependency of a breached metric
by three pieces of evidence and ``root_order`` ranks causes above their symptoms.

Score of a link, in [0, 1], evidence that is missing counting as 0:

- ``W_DEPENDENCY`` (0.4) × 1 for a declared dependency, × ``TRANSITIVE`` (0.5) for a
  dependency of a breached dependency (one level: S ← I ← C with I breached);
- ``W_ONSET`` (0.3) × 1 when the cause's onset is earlier than the symptom's by more
  than one sampling step, × 0.5 within one step, × 0 when it is later;
- ``W_CORRELATION`` (0.3) × max(0, ρ), ρ Spearman's rank correlation of the two
  metrics' badness over the time they share (badness = value when lower is better,
  −value when higher is better), the cause interpolated onto the symptom's times.
  Noise inside each regime shuffles ranks, so a clear incident scores ρ ≈ 0.3–0.6,
  not 1: the onset carries the order, the correlation says the two move together.

Onset: the first sample that breaches its target and from which at least
``ONSET_SHARE`` (80 %) of the remaining samples breach, so one noisy spike is not an
onset and a breach that recovered is none. Scalars have neither onset nor
correlation: only the dependency table links them, with a lower score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from scipy import stats

from agent.analysis.catalog import MetricSpec
from agent.analysis.patterns import TIME_BOUND
from agent.analysis.series import FloatArray, Series
from protocols.messages import CauseLink

_API_BACKENDS = ("database_query_time", "cpu_utilization", "memory_utilization")

DEPENDENCIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "api_response_time": (
            "database_query_time",
            "redis_cache_hit",
            "cache_hit_rate",
            "cpu_utilization",
            "memory_utilization",
        ),
        # Errors and unavailability follow saturation, slow queries and timeouts.
        # failed requests are what unavailability is made of
        "api_availability": (*_API_BACKENDS, "api_response_time", "error_rate"),
        "error_rate": (*_API_BACKENDS, "api_response_time"),
        "api_throughput": ("cpu_utilization", "database_query_time"),
        "real_time_delivery": (
            "message_processing_time",
            "connection_stability",
            "websocket_throughput",
        ),
        "message_processing_time": ("cpu_utilization", "redis_cache_hit"),
        "feed_generation_time": ("content_retrieval_time", "cache_hit_rate", "database_query_time"),
        "content_retrieval_time": ("database_query_time", "cache_hit_rate", "redis_cache_hit"),
        "report_generation": (
            "data_processing_time",
            "ai_processing_efficiency",
            "sentiment_analysis",
        ),
        "data_processing_time": ("database_query_time", "cpu_utilization"),
        # Fresh data is as late as the pipeline that produces it.
        "data_freshness": ("data_processing_time",),
        "websocket_throughput": ("cpu_utilization", "memory_utilization", "connection_stability"),
    }
)
"""Symptom metric → the metrics it depends on: the backend's one dependency table."""

W_DEPENDENCY = 0.4
W_ONSET = 0.3
W_CORRELATION = 0.3
TRANSITIVE = 0.5
"""A dependency of a dependency counts half as much as a direct one."""
ONSET_SHARE = 0.8
MIN_CORRELATION_POINTS = 5
"""Fewer shared points than this give no correlation: a rank over 3 points is chance."""


@dataclass(frozen=True, slots=True)
class CauseInput:
    """One judged metric: its spec, windowed samples, the target used and the verdict."""

    spec: MetricSpec
    series: Series
    target: float
    breached: bool


def _timed(series: Series) -> tuple[FloatArray, FloatArray] | None:
    """Finite samples with one value per time (the last one wins), or None for a scalar.

    Samples stamped beyond ``TIME_BOUND`` are dropped, as in request patterns.
    """
    if series.scalar:
        return None
    keep = (np.abs(series.ts) <= TIME_BOUND) & np.isfinite(series.values)
    ts, values = series.ts[keep], series.values[keep]
    if ts.size == 0:
        return None
    last = np.append(ts[1:] != ts[:-1], True)
    return ts[last], values[last]


def _breaching(obs: CauseInput, values: FloatArray) -> npt.NDArray[np.bool_]:
    if obs.spec.direction == "lower_is_better":
        return values > obs.target
    return values < obs.target


def onset(obs: CauseInput) -> float | None:
    """Epoch seconds of the first breaching sample after which ≥ 80 % of samples breach."""
    timed = _timed(obs.series)
    if timed is None:
        return None
    ts, values = timed
    breach = _breaching(obs, values)
    remaining = np.arange(breach.size, 0, -1)
    breaching_after = np.cumsum(breach[::-1])[::-1]
    sustained = breach & (breaching_after >= ONSET_SHARE * remaining)
    hits = np.flatnonzero(sustained)
    return float(ts[hits[0]]) if hits.size else None


def _step(ts: FloatArray) -> float:
    steps = np.diff(ts)
    return float(np.median(steps)) if steps.size else 0.0


def _badness(obs: CauseInput, values: FloatArray) -> FloatArray:
    """Higher is worse, scaled into [-1, 1] so interpolation cannot overflow (ranks unchanged)."""
    scale = float(np.max(np.abs(values)))
    scaled = values / scale if scale > 0.0 else values
    return scaled if obs.spec.direction == "lower_is_better" else -scaled


def correlation(cause: CauseInput, symptom: CauseInput) -> float | None:
    """Spearman's ρ of the two badness series on the symptom's times within the shared span."""
    a, b = _timed(cause.series), _timed(symptom.series)
    if a is None or b is None:
        return None
    (ts_c, v_c), (ts_s, v_s) = a, b
    shared = (ts_s >= max(ts_c[0], ts_s[0])) & (ts_s <= min(ts_c[-1], ts_s[-1]))
    if int(shared.sum()) < MIN_CORRELATION_POINTS:
        return None
    symptom_bad = _badness(symptom, v_s)[shared]
    cause_bad = np.interp(ts_s[shared], ts_c, _badness(cause, v_c))
    x = np.asarray(stats.rankdata(cause_bad), dtype=np.float64)
    y = np.asarray(stats.rankdata(symptom_bad), dtype=np.float64)
    x -= x.mean()
    y -= y.mean()
    norm = math.sqrt(float(x @ x) * float(y @ y))
    if norm == 0.0:  # a constant series ranks nothing
        return None
    return min(1.0, max(-1.0, float(x @ y) / norm))


def _onset_score(cause_at: float | None, symptom_at: float | None, tolerance: float) -> float:
    if cause_at is None or symptom_at is None:
        return 0.0
    lead = symptom_at - cause_at
    if lead > tolerance:
        return 1.0
    return 0.5 if lead >= -tolerance else 0.0


def _when(epoch: float | None) -> datetime | None:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _candidates(symptom: str, breached: set[str]) -> dict[str, float]:
    """Breached causes of ``symptom`` → dependency strength (1 direct, 0.5 one level removed)."""
    direct = {d: 1.0 for d in DEPENDENCIES.get(symptom, ()) if d in breached and d != symptom}
    found = dict(direct)
    for middle in direct:
        for dep in DEPENDENCIES.get(middle, ()):
            if dep in breached and dep != symptom and dep not in found:
                found[dep] = TRANSITIVE
    return found


def _link(
    symptom: str, cause: str, strength: float, observations: Mapping[str, CauseInput]
) -> CauseLink:
    s_obs, c_obs = observations[symptom], observations[cause]
    s_at, c_at = onset(s_obs), onset(c_obs)
    rho = correlation(c_obs, s_obs)
    timed = [t for t in (_timed(s_obs.series), _timed(c_obs.series)) if t is not None]
    tolerance = max((_step(ts) for ts, _ in timed), default=0.0)
    if len(timed) == 2 and c_at is not None and s_at is not None:
        started = max(float(ts[0]) for ts, _ in timed)
        if c_at <= started + tolerance and s_at <= started + tolerance:
            # both were breached when the window began: no order was observed
            c_at = s_at = None
    score = (
        W_DEPENDENCY * strength
        + W_ONSET * _onset_score(c_at, s_at, tolerance)
        + W_CORRELATION * max(0.0, rho or 0.0)
    )
    return CauseLink(
        symptom=symptom,
        cause=cause,
        score=round(min(1.0, max(0.0, score)), 4),
        cause_onset=_when(c_at),
        symptom_onset=_when(s_at),
        correlation=None if rho is None else round(rho, 4),
    )


def rank_causes(observations: Mapping[str, CauseInput]) -> list[CauseLink]:
    """A link per breached symptom and breached dependency, by (symptom, score desc, cause).

    A breached metric whose dependencies are all healthy gets no link: it is its own cause.
    """
    breached = {name for name, obs in observations.items() if obs.breached}
    links = [
        _link(symptom, cause, strength, observations)
        for symptom in sorted(breached)
        for cause, strength in _candidates(symptom, breached).items()
    ]
    links.sort(key=lambda link: (link.symptom, -link.score, link.cause))
    return links


def caused_by(links: Sequence[CauseLink], symptom: str) -> list[str]:
    """The ranked causes of one symptom (empty when it is its own cause)."""
    mine = sorted((link for link in links if link.symptom == symptom), key=lambda x: -x.score)
    return [link.cause for link in mine]


def root_order(links: Sequence[CauseLink], breached: Iterable[str]) -> list[str]:
    """``breached`` reordered so every cause comes before its symptoms.

    Among metrics whose causes are all placed, one that causes others goes first (a root
    cause), then the given order decides, so a ranking by urgency is kept otherwise.
    A cycle (not in ``DEPENDENCIES``, but links may come from elsewhere) is broken in
    the given order.
    """
    order = list(dict.fromkeys(breached))
    position = {name: i for i, name in enumerate(order)}
    edges = {
        (link.cause, link.symptom)
        for link in links
        if link.cause in position and link.symptom in position and link.cause != link.symptom
    }
    waiting = {name: {c for c, s in edges if s == name} for name in order}
    causes_others = {c for c, _ in edges}
    placed: list[str] = []
    left = set(order)
    while left:
        ready = [name for name in left if not waiting[name] & left]
        pool = ready or list(left)
        best = min(pool, key=lambda n: (n not in causes_others, position[n]))
        placed.append(best)
        left.remove(best)
    return placed
