"""What an approach will do here: its effect as a function of the state it meets, learned.

The playbook gives one figure per approach. What really happens depends on where it is
applied: an index helps a slow database more than a fast one, replicas cost more than
they save on an idle pool, autoscaling does nothing below its threshold. This module
predicts the effect in context and says how sure it is.

**The model.** The unknown is the ratio ``r`` of the actual improvement to the
playbook's expected one (so every approach and metric share one scale), linear in a few
features of the state (``FEATURES``)::

    r = β₀ + β₁·miss + β₂·load + ε,      ε ~ N(0, σ²)

- ``miss``: how far the metric misses its target, ``log(baseline / target)`` in the
  bad direction (for a bounded percentage the gap to 100 %), clipped to ±``MISS_CLIP``;
  positive = missing. With fixed targets this is the baseline's own coordinate.
- ``load``: the utilisation of the resource the approach relieves
  (``Approach.load``: CPU for autoscaling, the connection pool for pooling and
  replicas), as a fraction minus ``LOAD_CENTRE``; 0 when the approach has none or it
  was not measured.

**Partial pooling, shrinking to the playbook.** Each (approach, metric) pair's
coefficients start from the playbook, ``β ~ N((1, 0, 0), diag(τ₀², SLOPE_SD², SLOPE_SD²))``
with ``τ₀`` read from the playbook range as a 95 % interval of the mean ratio. The same
approach's outcomes on its *other* metrics update that prior (conjugate normal update)
and the result is widened by ``BETWEEN_SD`` (metrics differ): the prior ``N(m₀, V₀)`` of
the pair's coefficients across backends.

**Services: a random intercept, its spread learnt.** A backend (``params.service``)
differs from the others in what no feature measures (a far region, a query mix), so each
service ``s`` has its own coefficients ``β_s = β + u_s``, ``u_s ~ N(0, τ²·SERVICE_SHAPE)``
(the intercept moves; how the effect grows with miss and load is the mechanism's,
shared). How far services sit apart, ``τ``, is not assumed but learnt from how far their
outcomes do: its hyperprior is half-normal with scale ``SERVICE_SD`` on ``TAU_GRID``, and
each ``τ`` is weighted by the marginal likelihood of the pair's outcomes. For each ``τ``
the posterior is exact (closed form, from the stored sums): the other services' outcomes,
their own deviations integrated out, inform ``β``; the service's own outcomes then inform
``β_s`` (outcomes that named no service form one group of their own; a service with none
gets ``β`` plus a new deviation). The ``τ``-weighted posteriors are averaged (mean and
covariance of the mixture). So a pair whose services truly differ (batching on delivery,
harmful for a far region) learns them apart, and one whose services differ only by the
luck of a bimodal draw (a second cache tier that warms or not) is not split by it.

**Noise** ``σ²``: the least-squares residuals *within* each service (so that what tells
services apart is not counted as noise) against ``NU0`` pseudo-observations of the
approach's pooled within-service variance, itself pooled against ``NU0`` of the variance
across all approaches, itself against ``ASSUMED_SD`` (an assumption, stated). With no
evidence the prediction is the playbook's; as evidence grows the prior's weight
(``Gain.prior_weight``) falls.

**Intervals.** The prediction in context ``x`` is ``E·x·m`` (``E`` the playbook's
expected figure, ``m`` the posterior mean). Two intervals, never confused:

- ``low``–``high``: where the NEXT single outcome lands with probability ``LEVEL``
  (80 %): ``E·(x·m ± t·√(σ² + xᵀVx))``, ``t`` Student-t with the degrees of freedom
  behind ``σ²``. It stays wide for a bimodal or heavy-tailed approach, however much evidence.
- ``mean_low``–``mean_high``: the ``MEAN_LEVEL`` (95 %) interval of the mean effect
  here, ``E·(x·m ± z·√(xᵀVx))``: it narrows as evidence grows.

Everything here is pure: plain numbers in, a ``Gain`` out (numpy for the algebra, scipy
for the t quantile).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from agent.analysis.catalog import CATALOG
from agent.planning.playbook import PLAYBOOK, Approach
from protocols.messages import Direction, ImprovementRange, Interval, Provenance

FEATURES: tuple[str, ...] = ("intercept", "miss", "load")
K = len(FEATURES)
LEVEL = 0.8
"""Coverage level of ``low``–``high`` for one outcome; named on the wire (``level``)."""
MEAN_LEVEL = 0.95
MISS_CLIP = 3.0
LOAD_CENTRE = 0.7
"""``load`` is 0 at 70 % utilisation: the intercept is the effect at a busy-but-not-
saturated resource, the playbook's implicit setting."""
LOAD_CAP = 0.97
TAU_MIN = 0.4
"""ASSUMED: the playbook's figure is a prior for *a* backend, not this one: it never claims
its mean to better than ±40 % (1 sd) of itself, however narrow its range."""
RATIO_CLIP = 10.0
"""Ratios enter clipped to ±10: one wild measurement cannot outweigh the rest."""
SLOPE_SD = 1.0
"""Prior sd of each slope: the playbook says nothing of how an effect depends on the state,
so a unit of miss or of load may move the ratio by ±1 (1 sd)."""
BETWEEN_SD = 0.4
"""How far one metric's coefficients may sit from its siblings' (1 sd, per coefficient)."""
SERVICE_SD = 0.5
"""ASSUMED: the scale of the half-normal hyperprior of ``τ``, the sd of one service's
intercept about the pair's (ratio units): backends differ by some ±0.4 of the playbook's
figure a priori (the hyperprior's mean); the outcomes move it."""
SERVICE_SHAPE = np.diag([1.0, 0.0, 0.0])
"""Which coefficients a service's deviation moves: the intercept (what no feature measures
shifts the effect; how it grows with miss and load is the mechanism's, shared)."""
TAU_GRID = np.linspace(0.0, 4.0 * SERVICE_SD, 17)
"""The values of ``τ`` averaged over: 0 (services alike) to 4 hyperprior scales."""
NU0 = 4.0
"""Pseudo-observations the pooled noise variance counts for, at each level."""
ASSUMED_SD = 0.6
"""ASSUMED: the sd of one outcome's ratio before anything is verified (single roll-outs
vary by ±60 % of the expected figure). Only the prior interval rests on it."""
FLOOR_PCT = -100.0
CEIL_PCT = 10_000.0


# --- the state an approach meets -------------------------------------------------------


def miss_of(direction: Direction, bounded: bool, baseline: float, target: float | None) -> float:
    """How far ``baseline`` misses ``target`` (log ratio, positive = missing), clipped; 0
    without a target."""
    if target is None:
        return 0.0
    if direction == "lower_is_better":
        a, b = baseline, target
    elif bounded:
        a, b = 100.0 - baseline, 100.0 - target
    else:
        a, b = target, baseline
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0.0 or b <= 0.0:
        return 0.0 if a == b else (MISS_CLIP if a > b else -MISS_CLIP)
    return min(max(math.log(a) - math.log(b), -MISS_CLIP), MISS_CLIP)


def queueing(utilisation: float) -> float:
    """The load feature: waiting grows as ``u/(1 − u)`` (queueing theory: M/M/1, Kingman),
    taken relative to its value at ``LOAD_CENTRE`` and less 1, so 0 is a busy-but-sane
    resource, −1 an idle one and large values a saturated one (``u`` capped at 97 %)."""
    u = min(max(utilisation, 0.0), LOAD_CAP)
    return (u / (1.0 - u)) / (LOAD_CENTRE / (1.0 - LOAD_CENTRE)) - 1.0


@dataclass(frozen=True, slots=True)
class Context:
    """The state an approach is applied in, as the model's features see it."""

    miss: float
    load: float | None
    """Utilisation (fraction) of the resource the approach relieves; None: none or unmeasured."""

    def x(self) -> np.ndarray:
        return np.array([1.0, self.miss, 0.0 if self.load is None else queueing(self.load)])

    def as_dict(self) -> dict[str, float]:
        out = {"miss": round(self.miss, 4)}
        if self.load is not None:
            out["load"] = round(self.load, 4)
        return out


NO_CONTEXT = Context(miss=0.0, load=None)


def context_of(
    approach_key: str,
    metric: str,
    direction: Direction,
    baseline: float,
    target: float,
    state: Mapping[str, float],
) -> Context:
    """The context of a prediction: the metric's miss and, where it has one, the approach's
    load read from ``state`` (metric → current value, utilisations in %)."""
    spec = CATALOG.get(metric)
    miss = miss_of(direction, spec.bounded if spec is not None else False, baseline, target)
    approach = PLAYBOOK.get(approach_key)
    load_metric = approach.load if approach is not None else None
    value = state.get(load_metric) if load_metric is not None else None
    load = value / 100.0 if value is not None and math.isfinite(value) else None
    return Context(miss=miss, load=load)


# --- evidence ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """Sufficient statistics of verified ratios: additive, so a fold can keep them."""

    n: int = 0
    xtx: tuple[float, ...] = (0.0,) * (K * K)
    xty: tuple[float, ...] = (0.0,) * K
    yty: float = 0.0

    def add(self, x: np.ndarray, y: float) -> Evidence:
        y = min(max(y, -RATIO_CLIP), RATIO_CLIP)
        return Evidence(
            n=self.n + 1,
            xtx=tuple((np.array(self.xtx) + np.outer(x, x).ravel()).tolist()),
            xty=tuple((np.array(self.xty) + x * y).tolist()),
            yty=self.yty + y * y,
        )

    def __add__(self, other: Evidence) -> Evidence:
        return Evidence(
            n=self.n + other.n,
            xtx=tuple((np.array(self.xtx) + np.array(other.xtx)).tolist()),
            xty=tuple((np.array(self.xty) + np.array(other.xty)).tolist()),
            yty=self.yty + other.yty,
        )

    def __sub__(self, other: Evidence) -> Evidence:
        return Evidence(
            n=self.n - other.n,
            xtx=tuple((np.array(self.xtx) - np.array(other.xtx)).tolist()),
            xty=tuple((np.array(self.xty) - np.array(other.xty)).tolist()),
            yty=self.yty - other.yty,
        )

    @property
    def XtX(self) -> np.ndarray:  # noqa: N802 - the algebra's name
        return np.array(self.xtx).reshape(K, K)

    @property
    def Xty(self) -> np.ndarray:  # noqa: N802
        return np.array(self.xty)


NO_EVIDENCE = Evidence()


def evidence_of(n: int, xtx: Sequence[float], xty: Sequence[float], yty: float) -> Evidence:
    """Stored sums as ``Evidence``; none when they are missing or malformed."""
    if n <= 0 or len(xtx) != K * K or len(xty) != K:
        return NO_EVIDENCE
    return Evidence(n=n, xtx=tuple(xtx), xty=tuple(xty), yty=yty)


def total(evidence: Iterable[Evidence]) -> Evidence:
    out = NO_EVIDENCE
    for e in evidence:
        out = out + e
    return out


# --- fitting ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fit:
    """A posterior: coefficients ``mean`` with covariance ``cov``, noise variance ``s2``."""

    mean: np.ndarray
    cov: np.ndarray
    s2: float
    dof: float
    """Degrees of freedom behind ``s2`` (pseudo-observations plus residual ones)."""
    n: int
    prior_cov: np.ndarray
    """The covariance the service's coefficients started from (for the prior's weight)."""


def prior_tau(approach: Approach | None) -> float:
    """The prior sd of the mean ratio, the playbook range read as a 95 % interval."""
    if approach is None or approach.impact_expected == 0.0:
        return RATIO_CLIP
    tau = (approach.impact_high - approach.impact_low) / (
        2.0 * 1.96 * abs(approach.impact_expected)
    )
    return min(max(tau, TAU_MIN), RATIO_CLIP) if math.isfinite(tau) else RATIO_CLIP


def _playbook_prior(approach: Approach | None) -> tuple[np.ndarray, np.ndarray]:
    return np.array([1.0, 0.0, 0.0]), np.diag([prior_tau(approach) ** 2, SLOPE_SD**2, SLOPE_SD**2])


def _update(
    m0: np.ndarray, v0: np.ndarray, e: Evidence, s2: float
) -> tuple[np.ndarray, np.ndarray]:
    """The conjugate normal update of N(m0, v0) by ``e`` at noise variance ``s2``."""
    p0 = np.linalg.inv(v0)
    precision = p0 + e.XtX / s2
    cov = np.linalg.inv(precision)
    cov = (cov + cov.T) / 2.0
    return cov @ (p0 @ m0 + e.Xty / s2), cov


def _ssr(m: np.ndarray, e: Evidence) -> float:
    """Residual sum of squares of coefficients ``m`` on ``e`` (from the sums alone)."""
    return max(float(e.yty - 2.0 * m @ e.Xty + m @ e.XtX @ m), 0.0)


def _residuals(e: Evidence) -> tuple[float, int]:
    """(residual sum of squares, degrees of freedom) of ``e``'s own least-squares fit."""
    if e.n == 0:
        return 0.0, 0
    xtx = e.XtX
    b = np.linalg.pinv(xtx) @ e.Xty
    return _ssr(b, e), max(e.n - int(np.linalg.matrix_rank(xtx)), 0)


def _noise(e: Evidence, s0: float, nu0: float) -> float:
    """``σ²``: the least-squares residuals of ``e`` pooled with ``nu0`` observations of ``s0``.

    The residuals are the data's own (least squares, not the prior-pulled posterior):
    measured against the prior's mean they would count the prior's error as noise, and
    more noise would let the prior pull harder still.
    """
    ssr, dof = _residuals(e)
    return (nu0 * s0 + ssr) / (nu0 + dof) if nu0 + dof > 0 else s0


def fit(m0: np.ndarray, v0: np.ndarray, e: Evidence, s0: float, nu0: float = NU0) -> Fit:
    """The posterior of N(m0, v0) after ``e``, noise pooled with ``nu0`` observations of ``s0``."""
    s2 = _noise(e, s0, nu0)
    m, v = _update(m0, v0, e, s2) if e.n else (m0, v0)
    return Fit(mean=m, cov=v, s2=s2, dof=nu0 + e.n, n=e.n, prior_cov=v0)


def _within(groups: Iterable[Evidence]) -> tuple[float, int]:
    """(residual sum of squares, degrees of freedom) of a least-squares fit within each
    group: the noise once each service's own coefficients are allowed for."""
    ssr, dof = 0.0, 0
    for e in groups:
        s, d = _residuals(e)
        ssr, dof = ssr + s, dof + d
    return ssr, dof


def _by_service(own: Evidence, named: Mapping[str, Evidence]) -> dict[str, Evidence]:
    """A pair's evidence by service; outcomes that named none form the group ``""``."""
    out = {s: e for s, e in sorted(named.items()) if s and e.n > 0}
    rest = own - total(out.values())
    if rest.n > 0:
        out[""] = rest
    return out


@dataclass(frozen=True, slots=True)
class Pool:
    """Every pair's evidence, and the pooled noise it implies (computed once per state)."""

    by_pair: Mapping[tuple[str, str], Evidence]
    services: Mapping[tuple[str, str], Mapping[str, Evidence]]
    """(approach, metric) → service → that service's share of the pair's evidence; ``""``
    holds the outcomes that named no service."""
    by_approach: Mapping[str, Evidence]
    noise_by_approach: Mapping[str, float]
    noise_all: float
    fits: dict[tuple[str, str, str], Fit] = field(default_factory=dict, compare=False)
    """The fits made so far: a pool never changes, nor does a pair's fit on a service."""


def pool(
    by_pair: Mapping[tuple[str, str], Evidence],
    by_service: Mapping[tuple[str, str, str], Evidence] | None = None,
) -> Pool:
    """Pool ``by_pair`` (split by service with ``by_service``): each approach's evidence,
    and the residual variance within services, pooled as the module doc says."""
    named: dict[tuple[str, str], dict[str, Evidence]] = {}
    for (approach, metric, service), e in (by_service or {}).items():
        named.setdefault((approach, metric), {})[service] = e
    services = {pair: _by_service(e, named.get(pair, {})) for pair, e in by_pair.items()}
    by_approach: dict[str, Evidence] = {}
    per: dict[str, tuple[float, int]] = {}
    for (approach, metric), e in by_pair.items():
        by_approach[approach] = by_approach.get(approach, NO_EVIDENCE) + e
        ssr, dof = _within(services[(approach, metric)].values())
        before = per.get(approach, (0.0, 0))
        per[approach] = (before[0] + ssr, before[1] + dof)
    ssr, n = sum(s for s, _ in per.values()), sum(c for _, c in per.values())
    noise_all = (NU0 * ASSUMED_SD**2 + ssr) / (NU0 + n)
    noise = {k: (NU0 * noise_all + s) / (NU0 + c) for k, (s, c) in per.items()}
    return Pool(
        by_pair=dict(by_pair),
        services=services,
        by_approach=by_approach,
        noise_by_approach=noise,
        noise_all=noise_all,
    )


EMPTY_POOL = pool({})


def _tau_weights() -> np.ndarray:
    """The hyperprior of ``τ`` on ``TAU_GRID``: half-normal with scale ``SERVICE_SD``."""
    w = np.exp(-0.5 * (TAU_GRID / SERVICE_SD) ** 2)
    return np.asarray(w / w.sum())


def _message(e: Evidence, s2: float, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What one service's outcomes ``e`` say of the pair's coefficients once the service's
    own deviation is integrated out, for each deviation covariance ``t[i]``: precision,
    information vector and the log of the normalising constant.

    With ``P = XᵀX/σ²``, ``h = Xᵀy/σ²`` and ``A = (I + T·P)⁻¹·T``: precision ``P − P·A·P``,
    information ``h − P·A·h`` (Woodbury's identity without ``T⁻¹``: ``T`` may be 0).
    """
    p, h = e.XtX / s2, e.Xty / s2
    eye = np.eye(K)
    a = np.linalg.solve(eye + t @ p, t)
    a = (a + np.swapaxes(a, -1, -2)) / 2.0
    pap = p @ a @ p
    q = p - (pap + np.swapaxes(pap, -1, -2)) / 2.0
    r = h - (a @ h) @ p  # P symmetric
    log_z = (
        -0.5 * e.n * math.log(2.0 * math.pi * s2)
        - 0.5 * np.linalg.slogdet(eye + t @ p)[1]
        - 0.5 * (e.yty / s2 - (a @ h) @ h)
    )
    return q, r, log_z


def _times(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``a[i] @ v[i]`` for every ``i`` of stacked matrices and vectors."""
    return np.asarray(np.einsum("nij,nj->ni", a, v))


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``u[i] @ v[i]`` for every ``i`` of stacked vectors."""
    return np.asarray(np.einsum("ni,ni->n", u, v))


def _service_fit(
    m0: np.ndarray, v0: np.ndarray, by_service: Mapping[str, Evidence], target: str, s2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the ``target`` service's coefficients (the module doc).

    For each ``τ`` of ``TAU_GRID``, exactly: the pair's coefficients from their prior
    ``N(m0, v0)`` and the other services' outcomes, plus the target's deviation
    ``N(0, τ²·SERVICE_SHAPE)``, then the target's own outcomes; with the likelihood of
    all of them. The ``τ``s are then averaged, weighted by hyperprior × likelihood.
    """
    t = (TAU_GRID**2)[:, None, None] * SERVICE_SHAPE
    p0 = np.linalg.inv(v0)
    lam = np.broadcast_to(p0, t.shape).copy()
    eta = np.broadcast_to(p0 @ m0, (len(TAU_GRID), K)).copy()
    log_w = np.log(_tau_weights())
    full_lam, full_eta = lam.copy(), eta.copy()
    for name, e in by_service.items():
        q, r, log_z = _message(e, s2, t)
        log_w = log_w + log_z
        full_lam, full_eta = full_lam + q, full_eta + r
        if name != target:
            lam, eta = lam + q, eta + r
    # the pair's coefficients integrated out (terms equal for every τ left out)
    full_mean = np.linalg.solve(full_lam, full_eta[..., None])[..., 0]
    log_w = log_w - 0.5 * np.linalg.slogdet(full_lam)[1] + 0.5 * _dot(full_eta, full_mean)
    rest: np.ndarray = np.linalg.inv(lam)
    means: np.ndarray = _times(rest, eta)
    covs: np.ndarray = rest + t
    own = by_service.get(target)
    if own is not None:
        precision = np.linalg.inv(covs)
        covs = np.linalg.inv(precision + own.XtX / s2)
        means = _times(covs, _times(precision, means) + own.Xty / s2)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean = w @ means
    spread = means - mean
    cov = np.einsum("n,nij->ij", w, covs) + np.einsum("n,ni,nj->ij", w, spread, spread)
    return mean, (cov + cov.T) / 2.0


def fit_pair(p: Pool, approach_key: str, metric: str, service: str | None = None) -> Fit:
    """The coefficients of the pair on ``service`` (``None``: the outcomes that named no
    service, or a service not seen yet when there are none): playbook → siblings (widened
    by ``BETWEEN_SD``) → the pair's outcomes on every service (the module doc)."""
    key = (approach_key, metric, service or "")
    cached = p.fits.get(key)
    if cached is not None:
        return cached
    m0, v0 = _playbook_prior(PLAYBOOK.get(approach_key))
    own = p.by_pair.get((approach_key, metric), NO_EVIDENCE)
    siblings = p.by_approach.get(approach_key, NO_EVIDENCE) - own
    s0 = p.noise_by_approach.get(approach_key, p.noise_all)
    if siblings.n > 0:
        sib = fit(m0, v0, siblings, s0)
        m0, v0 = sib.mean, sib.cov + np.eye(K) * BETWEEN_SD**2
    by_service = p.services.get((approach_key, metric), {})
    ssr, dof = _within(by_service.values())
    s2 = (NU0 * s0 + ssr) / (NU0 + dof)
    prior_cov = v0 + float(_tau_weights() @ TAU_GRID**2) * SERVICE_SHAPE
    if by_service:
        mean, cov = _service_fit(m0, v0, by_service, service or "", s2)
    else:
        mean, cov = m0, prior_cov
    out = Fit(mean=mean, cov=cov, s2=s2, dof=NU0 + dof, n=own.n, prior_cov=prior_cov)
    p.fits[key] = out
    return out


# --- predicting ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gain:
    """An expected improvement in % in one context, its two intervals and what backs it."""

    low: float
    expected: float
    high: float
    """``low``–``high``: the ``level`` predictive interval of one outcome."""
    verifications: int = 0
    """Verified outcomes of this approach on this metric; 0 is the playbook's prior
    alone (siblings' outcomes may still have moved it: ``pooled``)."""
    level: float = LEVEL
    mean_low: float | None = None
    mean_high: float | None = None
    prior_weight: float = 1.0
    """Share of the mean's certainty that is still the prior's, 1 → 0 as evidence grows."""
    pooled: int = 0
    """Outcomes of the same approach on other metrics that informed it."""
    context: Mapping[str, float] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return self.verifications > 0 or self.pooled > 0

    def provenance(self, approach_key: str) -> Provenance:
        if not self.calibrated:
            return Provenance(
                source="prior",
                basis=f"playbook range for {approach_key}; interval widened by the assumed "
                f"±{ASSUMED_SD:.0%} spread of single outcomes",
            )
        return Provenance(
            source="calibrated",
            basis=f"{self.verifications} verified outcome(s) on this metric and "
            f"{self.pooled} on others, prior weight {self.prior_weight:.2f}",
            verifications=self.verifications,
        )

    def source_text(self) -> str:
        """The figure's source in a sentence: the report's text and the score's rationale."""
        if not self.calibrated:
            return "playbook prior"
        n = self.verifications
        pooled = f" + {self.pooled} pooled" if self.pooled else ""
        return f"calibrated from {n} verification{'' if n == 1 else 's'}{pooled}"

    def to_range(self, approach_key: str, digits: int = 2) -> ImprovementRange:
        mean = (
            Interval(
                low=round(self.mean_low, digits),
                high=round(self.mean_high, digits),
                level=MEAN_LEVEL,
            )
            if self.mean_low is not None and self.mean_high is not None
            else None
        )
        return ImprovementRange(
            low=round(self.low, digits),
            expected=round(self.expected, digits),
            high=round(self.high, digits),
            level=self.level,
            mean_interval=mean,
            provenance=self.provenance(approach_key),
        )


def predict(f: Fit, expected_pct: float, context: Context, ceiling: float = CEIL_PCT) -> Gain:
    """The gain in ``context`` from fit ``f`` and the playbook's expected figure; no figure
    above ``ceiling`` (100 for a reduction: nothing falls by more than all of it)."""

    def _clamp(x: float) -> float:
        return min(max(x, FLOOR_PCT), ceiling) if math.isfinite(x) else 0.0

    x = context.x()
    mean = float(x @ f.mean)
    var_mean = max(float(x @ f.cov @ x), 0.0)
    var_prior = max(float(x @ f.prior_cov @ x), 1e-12)
    t = float(stats.t.ppf(0.5 + LEVEL / 2.0, f.dof))
    z = float(stats.norm.ppf(0.5 + MEAN_LEVEL / 2.0))
    spread = t * math.sqrt(f.s2 + var_mean)
    e = expected_pct
    ends = sorted((_clamp(e * (mean - spread)), _clamp(e * (mean + spread))))
    mean_ends = sorted(
        (_clamp(e * (mean - z * math.sqrt(var_mean))), _clamp(e * (mean + z * math.sqrt(var_mean))))
    )
    mid = _clamp(e * mean)
    return Gain(
        low=min(ends[0], mid),
        expected=mid,
        high=max(ends[1], mid),
        verifications=f.n,
        mean_low=mean_ends[0],
        mean_high=mean_ends[1],
        prior_weight=min(var_mean / var_prior, 1.0),
        context=context.as_dict(),
    )


def gain(
    p: Pool,
    approach_key: str,
    metric: str,
    context: Context = NO_CONTEXT,
    service: str | None = None,
) -> Gain:
    """The expected gain of ``approach_key`` on ``metric`` in ``context`` (on ``service``),
    from ``p``."""
    approach = PLAYBOOK.get(approach_key)
    expected = approach.impact_expected if approach is not None else 0.0
    f = fit_pair(p, approach_key, metric, service)
    own = p.by_pair.get((approach_key, metric), NO_EVIDENCE).n
    pooled = p.by_approach.get(approach_key, NO_EVIDENCE).n - own
    ceiling = 100.0 if approach is None or approach.measure == "reduction" else CEIL_PCT
    g = predict(f, expected, context, ceiling)
    return dataclasses.replace(g, verifications=own, pooled=pooled)


def coefficients(f: Fit) -> dict[str, tuple[float, float]]:
    """Feature → (posterior mean, sd) of its coefficient, for ``learning show``."""
    sd: Sequence[float] = np.sqrt(np.clip(np.diag(f.cov), 0.0, None)).tolist()
    return {name: (float(f.mean[i]), float(sd[i])) for i, name in enumerate(FEATURES)}
