"""Generated backend telemetry with known truth, for judging the agent's judgment.

Independent of the agent on purpose: this module imports nothing from ``agent/`` or
``protocols/`` (numpy and the standard library only; ``tests/test_corpora.py`` checks it).
Each scenario sets its OWN service-level targets (``GENERATORS`` below: api p95 150 ms,
availability 99.5 %, db p95 60 ms, Redis hit 92 %, CPU 80 %…, not the agent's catalog)
and passes them in the task as ``params["targets"]``, so "healthy" and "breached" are
the generator's word, not the agent's.

What production-like means here:

- AR(1) noise with φ = 0.9 between 10 s scrapes (φ^(Δt/10 s) at other scrape intervals),
  started from its stationary distribution;
- latencies lognormal (the AR(1) process lives in log space); good-event percentages
  (availability, hit rates) as 100 − a lognormal bad share, so they never pass 100;
  throughputs multiplicative; utilisations additive and clipped to 0–100;
- ``healthy_heavy``: Student-t innovations (ν = 3, unit variance, cut at ±6 sd) and a few
  isolated spikes per metric (a latency ×3–6 for one scrape, a dip of throughput…);
- multi-day windows (the planning task) carry a daily load cycle peaking at 14:00 UTC:
  throughput ±30 %, latencies and CPU following the load;
- values rounded as an exporter would give them.

A scenario is a function ``(rng, end_epoch) -> Scenario``; ``SCENARIOS`` names them all,
``generate(name, seed, end_epoch)`` makes one deterministically (the seed and the name
together seed the generator). ``truth`` says what a correct judgment finds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

PHI_10S = 0.9
"""Lag-1 autocorrelation of the noise between two 10 s scrapes."""
T_NU = 3.0
"""Degrees of freedom of the heavy-tailed (Student-t) innovations."""
T_CLIP = 6.0
"""Heavy-tailed shocks are cut at ±6 sd: a rarer one would be an incident, not noise."""
DAY = 86_400.0
CYCLE_AMPLITUDE = 0.3
"""Relative swing of the load over a day (multi-day windows only)."""
PEAK_HOUR_UTC = 14.0

Kind = Literal["latency", "good_pct", "bad_pct", "throughput", "level"]


@dataclass(frozen=True, slots=True)
class Gen:
    """How one metric is generated when healthy, and the target the generator sets for it.

    ``level`` is the centre in the kind's own terms: the median (ms) of a latency, the
    median bad share (%) of a good-event percentage (availability 99.92 % → 0.08), the
    median of an error rate, the mean of a throughput or a utilisation. ``noise`` is the
    log-space standard deviation of the multiplicative kinds and the standard deviation
    (in the unit) of ``level``. ``load`` is how strongly the daily cycle moves it.
    """

    kind: Kind
    unit: str
    level: float
    noise: float
    target: float
    higher_is_better: bool = False
    load: float = 0.0
    decimals: int = 2


GENERATORS: Mapping[str, Gen] = {
    # api
    "api_response_time": Gen("latency", "ms", 60.0, 0.25, 150.0, load=0.3, decimals=1),
    "api_availability": Gen("good_pct", "%", 0.08, 0.45, 99.5, True, load=0.5, decimals=3),
    "api_throughput": Gen("throughput", "req/s", 420.0, 0.06, 250.0, True, load=1.0),
    "error_rate": Gen("bad_pct", "%", 0.25, 0.45, 1.5, load=0.5, decimals=3),
    # chat
    "websocket_throughput": Gen("throughput", "msg/s", 650.0, 0.07, 300.0, True, load=1.0),
    "message_processing_time": Gen("latency", "ms", 45.0, 0.25, 120.0, load=0.3, decimals=1),
    "connection_stability": Gen("good_pct", "%", 0.4, 0.35, 98.5, True, load=0.3, decimals=3),
    "real_time_delivery": Gen("latency", "ms", 28.0, 0.25, 80.0, load=0.3, decimals=1),
    # feed
    "content_retrieval_time": Gen("latency", "ms", 90.0, 0.25, 250.0, load=0.3, decimals=1),
    "feed_generation_time": Gen("latency", "ms", 220.0, 0.22, 600.0, load=0.3, decimals=1),
    "cache_hit_rate": Gen("good_pct", "%", 8.0, 0.15, 85.0, True, load=0.2, decimals=3),
    "data_freshness": Gen("good_pct", "%", 2.5, 0.3, 93.0, True, load=0.2, decimals=3),
    # ai
    "report_generation": Gen("latency", "ms", 700.0, 0.25, 1800.0, load=0.2, decimals=0),
    "sentiment_analysis": Gen("latency", "ms", 80.0, 0.25, 250.0, load=0.2, decimals=1),
    "ai_processing_efficiency": Gen("level", "%", 82.0, 3.0, 70.0, True, load=-8.0, decimals=2),
    "data_processing_time": Gen("latency", "ms", 140.0, 0.25, 400.0, load=0.2, decimals=1),
    # infra
    "redis_cache_hit": Gen("good_pct", "%", 4.0, 0.18, 92.0, True, load=0.3, decimals=3),
    "database_query_time": Gen("latency", "ms", 18.0, 0.3, 60.0, load=0.4, decimals=2),
    "memory_utilization": Gen("level", "%", 58.0, 1.5, 85.0, load=4.0, decimals=2),
    "cpu_utilization": Gen("level", "%", 42.0, 4.0, 80.0, load=30.0, decimals=2),
}
"""Every metric the generator knows: catalog names the agent accepts inline, own targets."""

TASK_METRICS: Mapping[str, tuple[str, ...]] = {
    "api_optimization": (
        "api_response_time",
        "api_availability",
        "api_throughput",
        "error_rate",
        "redis_cache_hit",
        "database_query_time",
        "cpu_utilization",
        "memory_utilization",
    ),
    "chat_backend_optimization": (
        "websocket_throughput",
        "message_processing_time",
        "connection_stability",
        "real_time_delivery",
        "cpu_utilization",
        "memory_utilization",
        "redis_cache_hit",
    ),
    "prompt_feed_backend_optimization": (
        "content_retrieval_time",
        "feed_generation_time",
        "cache_hit_rate",
        "data_freshness",
        "database_query_time",
        "redis_cache_hit",
        "cpu_utilization",
    ),
    "report_generation_optimization": (
        "report_generation",
        "sentiment_analysis",
        "ai_processing_efficiency",
        "data_processing_time",
        "database_query_time",
        "cpu_utilization",
        "memory_utilization",
    ),
    "websocket_scaling_optimization": (
        "websocket_throughput",
        "connection_stability",
        "real_time_delivery",
        "message_processing_time",
        "cpu_utilization",
        "memory_utilization",
    ),
    "cache_optimization": (
        "cache_hit_rate",
        "redis_cache_hit",
        "memory_utilization",
        "content_retrieval_time",
        "database_query_time",
        "api_response_time",
    ),
    "strategic_backend_planning": tuple(GENERATORS),
}
"""The metrics each task type reads (our own list, written from the agent's documentation)."""
TASK_TYPES: tuple[str, ...] = tuple(TASK_METRICS)

SHORT = ("1h", 3600.0, 10.0)
"""Window text, span (s) and scrape interval (s) of the domain tasks: 360 samples."""
LONG = ("2d", 2 * DAY, 60.0)
"""The planning task's: 2 days at 60 s, 2 880 samples, with the daily cycle."""

Points = list[list[float]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One task and what a correct judgment of it finds.

    ``params`` is JSON-ready for ``TaskParams`` (``window``, ``metrics`` as
    ``{name: [[epoch_s, value], …]}``, ``targets``). ``truth`` keys: ``healthy`` (every
    metric inside its target with no trend), ``breached`` (metrics missing their target
    over the window), ``root`` and ``symptoms`` (a cascade), ``onsets`` (epoch s of each
    cascade breach), ``step_at`` and ``step_metric``, ``declining`` (metrics with a real
    worsening trend), ``breach_ahead``, ``impossible`` ({metric: count of impossible
    samples}), ``unit_mistake`` (a metric sent in the wrong unit), ``throughput_target``
    (whether one was given).
    """

    name: str
    family: str
    task_type: str
    params: dict[str, Any]
    truth: dict[str, Any]


ScenarioFn = Callable[[np.random.Generator, float], Scenario]


# --- noise and shapes ---------------------------------------------------------------


def phi_at(step_s: float) -> float:
    """The AR(1) coefficient between scrapes ``step_s`` apart (φ = 0.9 at 10 s)."""
    return float(PHI_10S ** (step_s / 10.0))


def ar1(rng: np.random.Generator, n: int, phi: float, *, heavy: bool = False) -> np.ndarray:
    """A stationary AR(1) series with unit marginal variance (Gaussian or Student-t shocks)."""
    if heavy:
        shocks = rng.standard_t(T_NU, n) / math.sqrt(T_NU / (T_NU - 2.0))
        shocks = np.clip(shocks, -T_CLIP, T_CLIP)
    else:
        shocks = rng.standard_normal(n)
    scale = math.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    x = float(shocks[0])
    out[0] = x
    for i in range(1, n):
        x = phi * x + scale * float(shocks[i])
        out[i] = x
    return out


def grid(end_epoch: float, span_s: float, step_s: float) -> np.ndarray:
    """Scrape times: ``span_s / step_s`` samples ending exactly at ``end_epoch``."""
    n = round(span_s / step_s)
    return end_epoch - step_s * np.arange(n - 1, -1, -1, dtype=np.float64)


def daily_cycle(ts: np.ndarray) -> np.ndarray:
    """Load relative to the day's mean, −1…1, peaking at ``PEAK_HOUR_UTC``."""
    hours = (ts % DAY) / 3600.0
    return np.cos(2.0 * math.pi * (hours - PEAK_HOUR_UTC) / 24.0)


def centre(name: str, ts: np.ndarray, *, cycle: bool) -> np.ndarray:
    """A metric's healthy centre over time (constant, or following the daily load)."""
    gen = GENERATORS[name]
    base = np.full(ts.size, gen.level)
    if not cycle:
        return base
    swing = CYCLE_AMPLITUDE * daily_cycle(ts)
    if gen.kind == "level":
        return base + gen.load * swing
    return base * (1.0 + gen.load * swing)


def smooth_step(ts: np.ndarray, onset: float, before: float, after: float, tau_s: float) -> Any:
    """``before`` until ``onset``, then a first-order approach to ``after`` (time constant τ)."""
    dt = np.maximum(ts - onset, 0.0)
    approach = np.where(ts >= onset, 1.0 - np.exp(-dt / tau_s), 0.0)
    return before + (after - before) * approach


def render(
    rng: np.random.Generator,
    name: str,
    ts: np.ndarray,
    centre_values: np.ndarray,
    *,
    heavy: bool,
    step_s: float,
) -> np.ndarray:
    """Samples of ``name`` around ``centre_values``: AR(1) noise, spikes when heavy, rounded."""
    gen = GENERATORS[name]
    z = ar1(rng, ts.size, phi_at(step_s), heavy=heavy)
    if gen.kind == "level":
        values = centre_values + gen.noise * z
    elif gen.kind == "throughput":
        values = centre_values * np.exp(gen.noise * z - gen.noise**2 / 2.0)
    else:
        values = centre_values * np.exp(gen.noise * z)
    if heavy:
        values = _spikes(rng, gen, values)
    if gen.kind == "good_pct":
        values = 100.0 - np.clip(values, 0.0, 100.0)
    elif gen.kind in ("bad_pct", "level"):
        values = np.clip(values, 0.0, 100.0)
    return np.round(values, gen.decimals)


def _spikes(rng: np.random.Generator, gen: Gen, values: np.ndarray) -> np.ndarray:
    """A few isolated one-scrape spikes (Poisson, 1.5 per series on average)."""
    out = values.copy()
    count = int(rng.poisson(1.5))
    if count == 0:
        return out
    at = rng.choice(values.size, size=min(count, values.size), replace=False)
    if gen.kind == "level":
        sign = -1.0 if gen.higher_is_better else 1.0
        out[at] += sign * gen.noise * rng.uniform(3.0, 5.0, at.size)
    elif gen.kind == "throughput":
        out[at] *= rng.uniform(0.4, 0.6, at.size)
    else:  # a latency ×3–6, a bad share ×4–10
        low, high = (3.0, 6.0) if gen.kind == "latency" else (4.0, 10.0)
        out[at] *= rng.uniform(low, high, at.size)
    return out


def points(ts: np.ndarray, values: np.ndarray) -> Points:
    return [[float(t), float(v)] for t, v in zip(ts.tolist(), values.tolist(), strict=True)]


def truth(**overrides: Any) -> dict[str, Any]:
    """Truth of a healthy task; a scenario overrides what it breaks."""
    base: dict[str, Any] = {
        "healthy": True,
        "breached": set(),
        "root": None,
        "symptoms": set(),
        "onsets": {},
        "step_at": None,
        "step_metric": None,
        "declining": set(),
        "breach_ahead": False,
        "impossible": {},
        "unit_mistake": None,
        "throughput_target": True,
    }
    base.update(overrides)
    return base


def _build(
    rng: np.random.Generator,
    task_type: str,
    end_epoch: float,
    *,
    heavy: bool = False,
    shapes: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    levels: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Samples of every metric of ``task_type``: healthy unless ``shapes`` (ts → centre)
    or ``levels`` (a different healthy centre) say otherwise."""
    window, span, step = LONG if task_type == "strategic_backend_planning" else SHORT
    ts = grid(end_epoch, span, step)
    cycle = span > DAY
    series: dict[str, np.ndarray] = {}
    for name in TASK_METRICS[task_type]:
        if shapes and name in shapes:
            c = shapes[name](ts)
        else:
            c = centre(name, ts, cycle=cycle)
            if levels and name in levels:
                c = c * (levels[name] / GENERATORS[name].level)
        series[name] = render(rng, name, ts, c, heavy=heavy, step_s=step)
    return ts, series, window


def _params(
    ts: np.ndarray,
    series: Mapping[str, np.ndarray],
    window: str,
    *,
    skip_targets: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "window": window,
        "metrics": {name: points(ts, values) for name, values in series.items()},
        "targets": {name: GENERATORS[name].target for name in series if name not in skip_targets},
    }


def _aligned(ts: np.ndarray, when: float) -> float:
    """The first scrape at or after ``when``."""
    return float(ts[np.searchsorted(ts, when)])


# --- the scenarios --------------------------------------------------------------------


def healthy(task_type: str, heavy: bool, rng: np.random.Generator, end_epoch: float) -> Scenario:
    """Every metric stationary around a healthy level, well inside its target."""
    ts, series, window = _build(rng, task_type, end_epoch, heavy=heavy)
    family = "healthy_heavy" if heavy else "healthy_ar1"
    return Scenario(
        name=f"{family}.{task_type}",
        family=family,
        task_type=task_type,
        params=_params(ts, series, window),
        truth=truth(),
    )


STEP_METRIC = "api_response_time"
STEP_BEFORE_MS, STEP_AFTER_MS = 60.0, 180.0
STEP_BEFORE_END_S = 20 * 60.0


def step(rng: np.random.Generator, end_epoch: float) -> Scenario:
    """api_response_time's median shifts 60 → 180 ms 20 minutes before the end (target 150)."""
    ts = grid(end_epoch, SHORT[1], SHORT[2])
    at = _aligned(ts, end_epoch - STEP_BEFORE_END_S)
    shape = {STEP_METRIC: lambda t: np.where(t >= at, STEP_AFTER_MS, STEP_BEFORE_MS)}
    ts, series, window = _build(rng, "api_optimization", end_epoch, shapes=shape)
    return Scenario(
        name="step",
        family="step",
        task_type="api_optimization",
        params=_params(ts, series, window),
        truth=truth(
            healthy=False,
            breached={STEP_METRIC},
            step_at=at,
            step_metric=STEP_METRIC,
        ),
    )


RAMP_METRIC = "api_response_time"
RAMP_FROM_MS, RAMP_TO_MS = 50.0, 88.0


def ramp(rng: np.random.Generator, end_epoch: float) -> Scenario:
    """api_response_time's median climbs 50 → 88 ms over the hour: p95 still inside 150 ms."""

    def climb(t: np.ndarray) -> np.ndarray:
        frac = (t - t[0]) / (t[-1] - t[0])
        return RAMP_FROM_MS + (RAMP_TO_MS - RAMP_FROM_MS) * frac

    ts, series, window = _build(rng, "api_optimization", end_epoch, shapes={RAMP_METRIC: climb})
    return Scenario(
        name="ramp",
        family="ramp",
        task_type="api_optimization",
        params=_params(ts, series, window),
        truth=truth(healthy=False, declining={RAMP_METRIC}, breach_ahead=True),
    )


CASCADE_START_BEFORE_END_S = 25 * 60.0
CASCADE_LAG_S = 30.0
CASCADE_TAU_S = 12.0
"""Time constant of each effect's approach to its new level."""
CASCADE_LEVELS: Mapping[str, tuple[float, float]] = {
    # centre before → after, in the generator's terms (Redis: miss share %)
    "redis_cache_hit": (4.0, 21.0),  # hit 96 % → 79 % (target 92)
    "database_query_time": (18.0, 80.0),  # p95 ≈ 27 → 130 ms (target 60)
    "api_response_time": (60.0, 170.0),  # p95 ≈ 90 → 255 ms (target 150)
}


def cascade(order: tuple[str, ...], rng: np.random.Generator, end_epoch: float) -> Scenario:
    """A chain of breaches 30 s apart (each lag jittered ±5 s), the first one the cause."""
    ts = grid(end_epoch, SHORT[1], SHORT[2])
    t0 = float(end_epoch - CASCADE_START_BEFORE_END_S)
    onsets: dict[str, float] = {}
    for i, name in enumerate(order):
        jitter = float(rng.uniform(-5.0, 5.0)) if i else 0.0
        onsets[name] = t0 + i * CASCADE_LAG_S + jitter

    def shape(name: str) -> Callable[[np.ndarray], np.ndarray]:
        before, after = CASCADE_LEVELS[name]
        return partial(
            smooth_step, onset=onsets[name], before=before, after=after, tau_s=CASCADE_TAU_S
        )

    ts, series, window = _build(
        rng, "api_optimization", end_epoch, shapes={name: shape(name) for name in order}
    )
    family = "cascade_cache_first" if order[0] == "redis_cache_hit" else "cascade_db_first"
    return Scenario(
        name=family,
        family=family,
        task_type="api_optimization",
        params=_params(ts, series, window),
        truth=truth(
            healthy=False,
            breached=set(order),
            root=order[0],
            symptoms=set(order[1:]),
            onsets=onsets,
        ),
    )


IMPOSSIBLE: Mapping[str, tuple[int, float]] = {
    "api_availability": (3, 150.0),
    "api_response_time": (2, -1.0),
}
"""Metric → (how many samples, and the value: a fixed 150 % or −1 × the true latency)."""


def impossible_values(rng: np.random.Generator, end_epoch: float) -> Scenario:
    """Healthy, but three availability samples read 150 % and two latencies are negative."""
    ts, series, window = _build(rng, "api_optimization", end_epoch)
    used: set[int] = set()
    for name, (count, value) in IMPOSSIBLE.items():
        free = np.array([i for i in range(5, ts.size - 5) if i not in used])
        at = rng.choice(free, size=count, replace=False)
        used.update(int(i) for i in at)
        values = series[name]
        values[at] = value if value > 0 else value * values[at]
    return Scenario(
        name="impossible_values",
        family="impossible_values",
        task_type="api_optimization",
        params=_params(ts, series, window),
        truth=truth(impossible={name: count for name, (count, _) in IMPOSSIBLE.items()}),
    )


UNIT_METRIC = "database_query_time"


def unit_seconds(rng: np.random.Generator, end_epoch: float) -> Scenario:
    """Healthy, but database_query_time is sent in seconds (0.005–0.03) instead of ms."""
    ts, series, window = _build(rng, "api_optimization", end_epoch)
    series[UNIT_METRIC] = np.round(series[UNIT_METRIC] / 1000.0, 5)
    return Scenario(
        name="unit_seconds",
        family="unit_seconds",
        task_type="api_optimization",
        params=_params(ts, series, window),
        truth=truth(unit_mistake=UNIT_METRIC),
    )


SMALL_RPS = 30.0


def small_backend(rng: np.random.Generator, end_epoch: float) -> Scenario:
    """A healthy 30 req/s backend with api_throughput sent and no throughput target."""
    ts, series, window = _build(
        rng, "api_optimization", end_epoch, levels={"api_throughput": SMALL_RPS}
    )
    return Scenario(
        name="small_backend",
        family="small_backend",
        task_type="api_optimization",
        params=_params(ts, series, window, skip_targets=("api_throughput",)),
        truth=truth(throughput_target=False),
    )


SCENARIOS: Mapping[str, ScenarioFn] = {
    **{f"healthy_ar1.{t}": partial(healthy, t, False) for t in TASK_TYPES},
    **{f"healthy_heavy.{t}": partial(healthy, t, True) for t in TASK_TYPES},
    "step": step,
    "ramp": ramp,
    "cascade_cache_first": partial(
        cascade, ("redis_cache_hit", "database_query_time", "api_response_time")
    ),
    "cascade_db_first": partial(
        cascade, ("database_query_time", "redis_cache_hit", "api_response_time")
    ),
    "impossible_values": impossible_values,
    "unit_seconds": unit_seconds,
    "small_backend": small_backend,
}
"""Every scenario by name (``family.task_type`` for the healthy ones)."""

HEALTHY_FAMILIES = frozenset({"healthy_ar1", "healthy_heavy", "impossible_values", "small_backend"})
"""Families whose reports should hold no trend and no bottleneck (the flags aside)."""


def generate(name: str, seed: int, end_epoch: float) -> Scenario:
    """Scenario ``name`` for ``seed``: the same seed and name always give the same task."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return SCENARIOS[name](rng, float(end_epoch))


def slo_statistic(name: str, values: np.ndarray) -> float:
    """What a target is compared with over a window: p95 of a latency, else the mean."""
    if GENERATORS[name].kind == "latency":
        return float(np.percentile(values, 95))
    return float(np.mean(values))


def meets(name: str, values: np.ndarray, target: float) -> bool:
    """Whether ``values`` meet ``target`` by the generator's own SLO statistic."""
    current = slo_statistic(name, values)
    return current >= target if GENERATORS[name].higher_is_better else current <= target


__all__ = [
    "GENERATORS",
    "HEALTHY_FAMILIES",
    "SCENARIOS",
    "TASK_METRICS",
    "TASK_TYPES",
    "Scenario",
    "generate",
    "meets",
]
