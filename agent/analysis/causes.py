"""Cause, not only symptom: which breached metric is most likely behind another breached one.

A slow API is often a slow database or a cold cache, and a database is often slow because
the cache in front of it went cold. Any two breached metrics can be linked:
``rank_causes`` weighs every ordered pair (cause, symptom) of breached metrics by what the
series show, with ``DEPENDENCIES`` (what each metric waits on) as a prior that raises or
lowers a link but never decides it alone. ``root_order`` ranks causes above their symptoms.

Score of a link, in [0, 1] (rounded to 4 places), evidence that is missing counting as 0:

    score = W_ONSET × order + W_CORRELATION × max(0, ρ) + prior

- ``order`` (``W_ONSET`` 0.5): 1 when the cause's onset is earlier than the symptom's by
  more than one sampling step (the larger of the two metrics' median steps); 0.5 within
  one step (simultaneous), or when only one of the two has an onset and it lies inside
  the window (a change was seen, its order to the other's intermittent breach is
  unknown); 0 when the cause's onset is later, when both were breached from the start
  of the window they share, or when neither has an onset (no change was seen: no order);
- ``ρ`` (``W_CORRELATION`` 0.3): the best Spearman rank correlation of the cause's
  badness with the symptom's badness ``lag`` later, over lags 0 … ``MAX_LAG_SHARE`` (¼)
  of the window, on one time grid shared by every breached metric (the union of their
  spans in at most ``GRID_POINTS`` (200) equal steps, each metric interpolated onto it;
  badness = value when lower is better, −value when higher is better). The lag is
  reported (``lag_s``). Noise inside each regime shuffles ranks, so a clear incident
  scores ρ ≈ 0.4–0.7, not 1: the onset carries the order, the correlation says the two
  move together. Fewer than ``MIN_CORRELATION_POINTS`` samples of either metric over
  the span they share give no ρ;
- ``prior`` (plausibility, the dependency table; reported signed as ``prior``):
  +``W_PRIOR`` (0.2) when the symptom declares the cause as a dependency, × ``TRANSITIVE``
  (0.5) one level removed (S ← I ← C with I breached); −``W_PRIOR`` × ``CONTRARY``
  (0.5), i.e. −0.1 (−0.05 one level removed), when the table declares the opposite
  direction (the cause depends on the symptom); 0 otherwise.

The weights are chosen against the evidence threshold of 0.6 the strategies use:

- the table alone never reaches it: 0.2 with no series (scalars), 0.45 with simultaneous
  onsets and no correlation;
- a cause whose onset comes after its symptom never reaches it whatever the table says:
  at most 0.2 + 0.3 = 0.5;
- clear onset order with a fair correlation reaches it with no table entry:
  0.5 + 0.3 × ρ ≥ 0.6 from ρ = ⅓ on (0.62 at ρ = 0.4, 0.68 at ρ = 0.6); a declared
  dependency needs only the order (0.7, one level removed 0.6); the table declaring the
  opposite direction needs ρ ≥ ⅔ to be overruled (ρ ≥ 0.5 one level removed);
- simultaneous onsets (or one unknown) leave it to the table and correlation: with no
  table entry at most 0.25 + 0.3 = 0.55; a declared dependency from ρ = 0.5 on
  (0.45 + 0.3 × ρ), one level removed from ρ ≈ 0.83;
- so no pair reaches it in both directions: an earlier onset one way is a later one the
  other, and where the order is 0.5 both ways only a table entry can lift one
  direction, which the table (acyclic) then lowers the other way.

A pair is listed (as a possibility, whatever its score) when the table declares the
dependency, or when the cause breached clearly first and ρ > 0; other pairs are not.

Onset: when the metric has a level shift into breach (``CauseInput.shifts``, PELT's
worsening change points whose new level misses the target), the first raw sample
(``CauseInput.series``) from one bucket before that shift that is past the shift's midpoint:
where a level crossed halfway does not depend on where the target sits, and a marginal
breach in noise would otherwise be dated minutes late. Without one, the first sample
that breaches its target and from which at least ``ONSET_SHARE`` (80 %) of the remaining
samples breach, so one noisy spike is not an onset and a breach that recovered is none.
Scalars have neither onset nor correlation: only the dependency table links them, with
a low score.

Cost: per metric once, shared by every pair it is in: onset, badness, its values on
the grid and a table of rank counts (``O(n²)`` for n ≤ 200 grid points), from which the
ranks of any stretch of the grid follow without sorting; the ranks of the stretches a
lag search needs are kept, and partners covering the same stretch reuse them. Per
ordered pair, one vectorised pass over all lags. 20 breached metrics of 200 points
(380 pairs) take a few tens of milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from agent.analysis.catalog import MetricSpec
from agent.analysis.patterns import TIME_BOUND
from agent.analysis.series import MAX_BUCKETS, FloatArray, Series, bucketize
from protocols.messages import CauseLink, ChangePoint

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
"""Symptom metric → the metrics it depends on: the prior of the cause ranking (not a gate)."""

W_ONSET = 0.5
W_CORRELATION = 0.3
W_PRIOR = 0.2
"""The dependency table's weight: + for a declared dependency, − for the opposite one."""
TRANSITIVE = 0.5
"""A dependency of a dependency counts half as much as a direct one."""
CONTRARY = 0.5
"""The table declaring the opposite direction lowers a link by half the prior's weight."""
ONSET_SHARE = 0.8
MIN_CORRELATION_POINTS = 5
"""Fewer shared points than this give no correlation: a rank over 3 points is chance."""
GRID_POINTS = 200
"""At most this many points on the common time grid the lagged correlations use."""
MAX_LAG_SHARE = 0.25
"""Lags searched: 0 up to this share of the common grid's span."""


@dataclass(frozen=True, slots=True)
class CauseInput:
    """One judged metric: its spec, windowed samples, the target used and the verdict."""

    spec: MetricSpec
    series: Series
    target: float
    breached: bool
    shifts: tuple[ChangePoint, ...] = ()
    """The metric's level shifts (oldest first): a worsening one into breach is its onset."""


@dataclass(frozen=True, slots=True)
class _Profile:
    """What one metric contributes to every pair it is in, computed once."""

    ts: FloatArray
    badness: FloatArray
    onset: float | None
    step: float


@dataclass(frozen=True, slots=True)
class _Grid:
    times: FloatArray
    step: float
    max_lag: int


@dataclass(frozen=True, slots=True)
class _RankTable:
    """A metric's badness on the grid, points ``first`` … ``first + size - 1``, for ranking.

    ``below[i, j]`` counts the points before local index ``j`` that are worse-ranked than
    point ``i`` (ties ½, point ``i`` itself ½), so the average rank of point ``i`` among
    the points ``[lo, hi)`` is ``0.5 + below[i, hi] - below[i, lo]``.
    """

    first: int
    below: FloatArray
    windows: dict[tuple[bytes, bytes], tuple[FloatArray, FloatArray]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Centred ranks and their squared norms by windows: a window set is ranked once."""

    @property
    def size(self) -> int:
        return int(self.below.shape[0])


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


def _onset_at(obs: CauseInput, ts: FloatArray, values: FloatArray) -> float | None:
    breach = _breaching(obs, values)
    into_breach = [
        c
        for c in obs.shifts
        if c.worse and bool(_breaching(obs, np.array([c.after], dtype=np.float64))[0])
    ]
    if into_breach and ts.size > 1:
        # The step located by PELT (to a bucket), refined to the first sample from one
        # bucket before it that is past the step's midpoint: where the level crossed the
        # target depends on the target, where it crossed halfway does not, and a marginal
        # breach in noise would otherwise be dated when 80 % of the rest breached.
        shift = into_breach[0]
        at = shift.at.timestamp()
        width = float(ts[-1] - ts[0]) / MAX_BUCKETS
        halfway = (shift.before + shift.after) / 2.0
        past = values > halfway if shift.after > shift.before else values < halfway
        near = np.flatnonzero(past & (ts >= at - width))
        return float(ts[near[0]]) if near.size else at
    remaining = np.arange(breach.size, 0, -1)
    breaching_after = np.cumsum(breach[::-1])[::-1]
    sustained = breach & (breaching_after >= ONSET_SHARE * remaining)
    hits = np.flatnonzero(sustained)
    return float(ts[hits[0]]) if hits.size else None


def onset(obs: CauseInput) -> float | None:
    """Epoch seconds a breach began: at a level shift into breach (the first breaching
    sample from one bucket before it), else the first breaching sample after which
    ≥ 80 % of samples breach."""
    timed = _timed(obs.series)
    return None if timed is None else _onset_at(obs, *timed)


def _step(ts: FloatArray) -> float:
    steps = np.diff(ts)
    return float(np.median(steps)) if steps.size else 0.0


def _badness(obs: CauseInput, values: FloatArray) -> FloatArray:
    """Higher is worse, scaled into [-1, 1] so interpolation cannot overflow (ranks unchanged)."""
    scale = float(np.max(np.abs(values)))
    scaled = values / scale if scale > 0.0 else values
    return scaled if obs.spec.direction == "lower_is_better" else -scaled


def _profile(obs: CauseInput) -> _Profile | None:
    """Badness on at most ``GRID_POINTS`` bucket medians (a median per bucket keeps a noisy
    or mixed series' level, which the grid's interpolation of raw samples would not); the
    onset and its sampling step on the raw samples (a cascade 30 s apart would otherwise
    fall inside one bucket's tolerance)."""
    raw = _timed(obs.series)
    timed = _timed(bucketize(obs.series, GRID_POINTS))
    if raw is None or timed is None:
        return None
    ts, values = timed
    return _Profile(ts, _badness(obs, values), _onset_at(obs, *raw), _step(raw[0]))


def _grid(profiles: Iterable[_Profile]) -> _Grid | None:
    """Equal steps over the union of the metrics' spans, as many as the densest has (≤ 200)."""
    timed = [p for p in profiles if p.ts.size >= MIN_CORRELATION_POINTS]
    if not timed:
        return None
    start = min(float(p.ts[0]) for p in timed)
    end = max(float(p.ts[-1]) for p in timed)
    points = min(GRID_POINTS, max(p.ts.size for p in timed))
    if not end > start:
        return None
    times = np.linspace(start, end, points)
    return _Grid(times, (end - start) / (points - 1), int(MAX_LAG_SHARE * (points - 1)))


def _rank_table(profile: _Profile, grid: _Grid) -> _RankTable | None:
    first = int(np.searchsorted(grid.times, profile.ts[0], side="left"))
    stop = int(np.searchsorted(grid.times, profile.ts[-1], side="right"))
    if stop - first < MIN_CORRELATION_POINTS:
        return None
    values = np.interp(grid.times[first:stop], profile.ts, profile.badness)
    worse = values[:, None] > values[None, :]
    tied = values[:, None] == values[None, :]
    below = np.zeros((values.size, values.size + 1))
    np.cumsum(worse + 0.5 * tied, axis=1, out=below[:, 1:])
    return _RankTable(first, below)


def _centred(
    table: _RankTable, lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]
) -> tuple[FloatArray, FloatArray]:
    """Row ``k``: average ranks of grid points ``[lo[k], hi[k])`` minus their mean, then 0s.

    With the rows' squared norms. Remembered per window set: a metric sees the same
    windows with every partner that covers the same stretch of the grid.
    """
    key = (lo.tobytes(), hi.tobytes())
    found = table.windows.get(key)
    if found is None:
        n = hi - lo
        start, stop = (lo - table.first)[:, None], (hi - table.first)[:, None]
        offsets = np.arange(int(n.max()))
        rows = np.minimum(start + offsets, table.size - 1)
        ranks = 0.5 + table.below[rows, stop] - table.below[rows, start]
        centre = (n[:, None] + 1) / 2  # the mean of average ranks, ties or not
        x: FloatArray = np.where(offsets < n[:, None], ranks - centre, 0.0)
        found = (x, np.einsum("ij,ij->i", x, x))
        table.windows[key] = found
    return found


def _lagged(cause: _RankTable, symptom: _RankTable, max_lag: int) -> tuple[float, int] | None:
    """The best Spearman ρ of the cause at grid point i with the symptom at i + lag, and lag.

    Every lag 0 … ``max_lag`` at once; ties go to the shorter lag.
    """
    lags = np.arange(max_lag + 1)
    lo = np.maximum(cause.first, symptom.first - lags)
    hi = np.minimum(cause.first + cause.size, symptom.first + symptom.size - lags)
    usable = hi - lo >= MIN_CORRELATION_POINTS
    if not usable.any():
        return None
    lags, lo, hi = lags[usable], lo[usable], hi[usable]
    x, xx = _centred(cause, lo, hi)
    y, yy = _centred(symptom, lo + lags, hi + lags)
    norm = np.sqrt(xx * yy)
    ok = norm > 0.0  # a constant stretch ranks nothing
    if not ok.any():
        return None
    rho = np.full(lags.size, -np.inf)
    rho[ok] = np.einsum("ij,ij->i", x[ok], y[ok]) / norm[ok]
    best = int(np.argmax(rho))
    return min(1.0, max(-1.0, float(rho[best]))), int(lags[best])


def _shared_samples(a: _Profile, b: _Profile) -> int:
    """The fewer of the two metrics' own samples within the span both cover."""
    start, end = max(a.ts[0], b.ts[0]), min(a.ts[-1], b.ts[-1])
    if end < start:
        return 0
    return min(
        int(np.searchsorted(p.ts, end, side="right") - np.searchsorted(p.ts, start, side="left"))
        for p in (a, b)
    )


def _pair_correlation(
    cause: _Profile | None,
    symptom: _Profile | None,
    tables: Mapping[str, _RankTable],
    names: tuple[str, str],
    grid: _Grid | None,
) -> tuple[float, float] | None:
    """(ρ, lag in seconds) of a pair from the shared per-metric work, or None."""
    if cause is None or symptom is None or grid is None:
        return None
    table_c, table_s = tables.get(names[0]), tables.get(names[1])
    if table_c is None or table_s is None:
        return None
    if _shared_samples(cause, symptom) < MIN_CORRELATION_POINTS:
        return None
    found = _lagged(table_c, table_s, grid.max_lag)
    if found is None:
        return None
    rho, lag = found
    return rho, lag * grid.step


def _tables(profiles: Mapping[str, _Profile | None], grid: _Grid | None) -> dict[str, _RankTable]:
    if grid is None:
        return {}
    found = {n: _rank_table(p, grid) for n, p in profiles.items() if p is not None}
    return {n: t for n, t in found.items() if t is not None}


def lagged_correlation(cause: CauseInput, symptom: CauseInput) -> tuple[float, float] | None:
    """(ρ, lag in seconds): the cause's badness leading the symptom's at its best lag.

    The grid is the two metrics' own; ``rank_causes`` shares one among all breached ones.
    """
    profiles = {"cause": _profile(cause), "symptom": _profile(symptom)}
    grid = _grid(p for p in profiles.values() if p is not None)
    return _pair_correlation(
        profiles["cause"],
        profiles["symptom"],
        _tables(profiles, grid),
        ("cause", "symptom"),
        grid,
    )


def correlation(cause: CauseInput, symptom: CauseInput) -> float | None:
    """Spearman's ρ of the two badness series at the lag where the cause leads best."""
    found = lagged_correlation(cause, symptom)
    return None if found is None else found[0]


def _timing(cause: _Profile | None, symptom: _Profile | None) -> tuple[float, str, bool]:
    """(order, how the onsets compare, whether both were breached from the window start)."""
    c_at = None if cause is None else cause.onset
    s_at = None if symptom is None else symptom.onset
    tolerance = max((p.step for p in (cause, symptom) if p is not None), default=0.0)
    if cause is not None and symptom is not None and c_at is not None and s_at is not None:
        started = max(float(cause.ts[0]), float(symptom.ts[0]))
        if c_at <= started + tolerance and s_at <= started + tolerance:
            return 0.0, "both breached from the window start", True  # no order was observed
        lead = s_at - c_at
        if lead > tolerance:
            return 1.0, f"onset {_duration(lead)} earlier", False
        if lead < -tolerance:
            return 0.0, f"onset {_duration(-lead)} later", False
        return 0.5, "onsets within one step", False
    for at, own, other in ((c_at, cause, "symptom"), (s_at, symptom, "cause")):
        if at is not None and own is not None and at > float(own.ts[0]) + tolerance:
            # a breach began inside the window; the other has none to compare it with
            return 0.5, f"no sustained breach of the {other} to compare", False
    return 0.0, "no onset to compare", False


def _when(epoch: float | None) -> datetime | None:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _strengths(symptom: str, breached: set[str]) -> dict[str, float]:
    """Breached dependencies of ``symptom`` → strength (1 direct, 0.5 one level removed)."""
    direct = {d: 1.0 for d in DEPENDENCIES.get(symptom, ()) if d in breached and d != symptom}
    found = dict(direct)
    for middle in direct:
        for dep in DEPENDENCIES.get(middle, ()):
            if dep in breached and dep != symptom and dep not in found:
                found[dep] = TRANSITIVE
    return found


def _duration(seconds: float) -> str:
    if seconds < 120.0:
        return f"{seconds:.0f} s"
    if seconds < 7200.0:
        return f"{round(seconds / 60.0, 1):g} min"
    return f"{round(seconds / 3600.0, 1):g} h"


def _basis(when: str, found: tuple[float, float] | None, declared: float, contrary: float) -> str:
    moved = "no correlation" if found is None else f"ρ {found[0]:.2f} at lag {_duration(found[1])}"
    if declared:
        table = "declared dependency" if declared == 1.0 else "dependency one level removed"
    elif contrary:
        table = "table declares the opposite" + ("" if contrary == 1.0 else " one level removed")
    else:
        table = "no table entry"
    return f"{when}, {moved}, {table}"


def _link(
    cause: str,
    symptom: str,
    profiles: Mapping[str, _Profile | None],
    tables: Mapping[str, _RankTable],
    grid: _Grid | None,
    strengths: Mapping[str, Mapping[str, float]],
) -> CauseLink | None:
    """The link cause → symptom, or None when neither the table nor the data suggest it."""
    p_c, p_s = profiles[cause], profiles[symptom]
    declared = strengths[symptom].get(cause, 0.0)
    contrary = strengths[cause].get(symptom, 0.0)
    prior = W_PRIOR * (declared - CONTRARY * contrary)
    order, when, from_start = _timing(p_c, p_s)
    found = _pair_correlation(p_c, p_s, tables, (cause, symptom), grid)
    rho = None if found is None else found[0]
    if prior <= 0.0 and not (order == 1.0 and rho is not None and rho > 0.0):
        return None
    score = W_ONSET * order + W_CORRELATION * max(0.0, rho or 0.0) + prior
    return CauseLink(
        symptom=symptom,
        cause=cause,
        score=round(min(1.0, max(0.0, score)), 4),
        cause_onset=None if from_start or p_c is None else _when(p_c.onset),
        symptom_onset=None if from_start or p_s is None else _when(p_s.onset),
        correlation=None if rho is None else round(rho, 4),
        lag_s=None if found is None else round(found[1], 3),
        prior=round(prior, 4),
        basis=_basis(when, found, declared, contrary),
    )


def rank_causes(observations: Mapping[str, CauseInput]) -> list[CauseLink]:
    """Links between breached metrics, by (symptom, score desc, cause).

    Every ordered pair of breached metrics is weighed; a pair is listed when the table
    declares the dependency or when the cause breached clearly first and ρ > 0. A
    breached metric with no listed cause is its own cause.
    """
    breached = sorted(name for name, obs in observations.items() if obs.breached)
    profiles = {name: _profile(observations[name]) for name in breached}
    grid = _grid(p for p in profiles.values() if p is not None)
    tables = _tables(profiles, grid)
    breached_set = set(breached)
    strengths = {name: _strengths(name, breached_set) for name in breached}
    links = [
        link
        for symptom in breached
        for cause in breached
        if cause != symptom
        and (link := _link(cause, symptom, profiles, tables, grid, strengths)) is not None
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
    A cycle (links weighed from data may point both ways; pass the evidenced ones) is
    broken in the given order.
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
