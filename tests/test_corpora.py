"""The generated telemetry of scripts/corpora.py: deterministic, decodable, production-like,
its truth consistent with its samples, and independent of the agent."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from protocols import TaskParams
from scripts.corpora import (
    GENERATORS,
    HEALTHY_FAMILIES,
    SCENARIOS,
    TASK_METRICS,
    TASK_TYPES,
    ar1,
    generate,
    meets,
)
from tests.independence import assert_imports_nothing_from_the_agent

END = 1_764_338_400.0
SOURCE = Path(__file__).resolve().parents[1] / "scripts" / "corpora.py"
NAMES = sorted(SCENARIOS)


def values(scenario_params: dict, name: str) -> np.ndarray:
    return np.array([v for _, v in scenario_params["metrics"][name]], dtype=float)


def times(scenario_params: dict, name: str) -> np.ndarray:
    return np.array([t for t, _ in scenario_params["metrics"][name]], dtype=float)


def lag1(x: np.ndarray) -> float:
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed(name: str) -> None:
    a, b = generate(name, 7, END), generate(name, 7, END)
    assert a.params == b.params
    assert a.truth == b.truth
    other = generate(name, 8, END)
    assert other.params["metrics"] != a.params["metrics"]


@pytest.mark.parametrize("name", NAMES)
def test_params_decode_as_task_params(name: str) -> None:
    s = generate(name, 1, END)
    params = msgspec.convert(s.params, TaskParams)
    assert params.window == s.params["window"]
    assert set(params.metrics) == set(TASK_METRICS[s.task_type])
    assert dict(params.targets) == s.params["targets"]
    assert s.task_type in TASK_TYPES
    assert s.name == name
    assert name.split(".")[0] == s.family


@pytest.mark.parametrize("name", NAMES)
def test_windows_sizes_and_timestamps(name: str) -> None:
    s = generate(name, 2, END)
    planning = s.task_type == "strategic_backend_planning"
    assert s.params["window"] == ("2d" if planning else "1h")
    for metric in s.params["metrics"]:
        ts = times(s.params, metric)
        assert ts.size == (2880 if planning else 360)
        assert ts[-1] == END
        assert np.all(np.diff(ts) == (60.0 if planning else 10.0))
        assert np.all(np.isfinite(values(s.params, metric)))


@pytest.mark.parametrize("task_type", [t for t in TASK_TYPES if t != "strategic_backend_planning"])
def test_healthy_series_are_ar1_with_phi_09(task_type: str) -> None:
    """Lag-1 autocorrelation ≈ 0.9 per metric: averaged over 4 seeds, since one estimate
    from 360 samples of φ = 0.9 has a standard deviation of about 0.025 (biased low ~0.01)."""
    runs = [generate(f"healthy_ar1.{task_type}", seed, END) for seed in (1, 2, 3, 4)]
    for metric in runs[0].params["metrics"]:
        estimates = [lag1(values(s.params, metric)) for s in runs]
        assert float(np.mean(estimates)) == pytest.approx(0.9, abs=0.1), metric
        assert min(estimates) > 0.7, metric


def test_ar1_noise_has_unit_variance_and_phi() -> None:
    rng = np.random.default_rng(0)
    z = ar1(rng, 20_000, 0.9)
    assert lag1(z) == pytest.approx(0.9, abs=0.02)
    assert float(np.std(z)) == pytest.approx(1.0, abs=0.1)
    heavy = ar1(rng, 20_000, 0.9, heavy=True)
    assert lag1(heavy) == pytest.approx(0.9, abs=0.03)
    # Student-t ν = 3: fatter tails than a Gaussian (excess kurtosis of the shocks)
    shocks = heavy[1:] - 0.9 * heavy[:-1]
    kurtosis = float(np.mean((shocks - shocks.mean()) ** 4) / np.var(shocks) ** 2)
    assert kurtosis > 4.0


def test_planning_has_a_daily_cycle() -> None:
    s = generate("healthy_ar1.strategic_backend_planning", 1, END)
    ts, rps = times(s.params, "api_throughput"), values(s.params, "api_throughput")
    hours = (ts % 86_400) // 3600
    by_hour = np.array([rps[hours == h].mean() for h in range(24)])
    assert by_hour.argmax() in (13, 14, 15)
    assert by_hour.max() / by_hour.min() > 1.5


@pytest.mark.parametrize("name", NAMES)
def test_truth_matches_the_samples(name: str) -> None:
    """Breached metrics miss their target by the generator's own statistic; the others meet it
    (small_backend's throughput has no target; a unit mistake is judged in its true unit)."""
    for seed in (1, 2, 3):
        s = generate(name, seed, END)
        truth = s.truth
        for metric in s.params["metrics"]:
            if metric not in s.params["targets"] or metric == truth["unit_mistake"]:
                continue
            v = values(s.params, metric)
            if metric in truth["impossible"]:
                v = v[(v >= 0) & (v <= 100)] if GENERATORS[metric].unit == "%" else v[v >= 0]
            met = meets(metric, v, s.params["targets"][metric])
            assert met != (metric in truth["breached"]), (name, seed, metric)
        assert truth["healthy"] == (
            not truth["breached"] and not truth["declining"] and not truth["step_metric"]
        )


def test_healthy_families_are_healthy() -> None:
    for name in NAMES:
        s = generate(name, 1, END)
        if s.family in HEALTHY_FAMILIES:
            assert s.truth["healthy"], name
            assert not s.truth["breached"]
            assert s.truth["root"] is None


def test_step_truth() -> None:
    s = generate("step", 4, END)
    truth, metric = s.truth, s.truth["step_metric"]
    ts, v = times(s.params, metric), values(s.params, metric)
    assert ts[0] < truth["step_at"] <= ts[-1]
    assert truth["step_at"] in set(ts.tolist())
    assert truth["step_at"] == END - 20 * 60
    assert metric in truth["breached"]
    before, after = v[ts < truth["step_at"]], v[ts >= truth["step_at"]]
    assert np.median(after) / np.median(before) > 2.0
    assert np.percentile(after, 95) > s.params["targets"][metric]


def test_ramp_truth() -> None:
    s = generate("ramp", 4, END)
    (metric,) = s.truth["declining"]
    v = values(s.params, metric)
    assert s.truth["breach_ahead"]
    assert not s.truth["breached"]
    assert np.median(v[-60:]) > 1.4 * np.median(v[:60])
    assert meets(metric, v, s.params["targets"][metric])


@pytest.mark.parametrize("name", ["cascade_cache_first", "cascade_db_first"])
def test_cascade_truth(name: str) -> None:
    s = generate(name, 5, END)
    truth = s.truth
    root, symptoms, onsets = truth["root"], truth["symptoms"], truth["onsets"]
    assert root == ("redis_cache_hit" if name == "cascade_cache_first" else "database_query_time")
    assert root in truth["breached"]
    assert root not in symptoms
    assert symptoms <= truth["breached"]
    assert symptoms | {root} == truth["breached"]
    assert all(onsets[root] < onsets[s_] for s_ in symptoms)
    assert onsets["api_response_time"] == max(onsets.values())
    ts = times(s.params, root)
    assert all(ts[0] < t < ts[-1] for t in onsets.values())


def test_impossible_values_truth() -> None:
    s = generate("impossible_values", 6, END)
    counts = s.truth["impossible"]
    assert counts
    for metric, count in counts.items():
        v = values(s.params, metric)
        if GENERATORS[metric].unit == "%":
            assert int(np.sum((v < 0) | (v > 100))) == count
        else:
            assert int(np.sum(v < 0)) == count
    for metric in set(s.params["metrics"]) - set(counts):
        v = values(s.params, metric)
        assert np.all(v >= 0)


def test_unit_seconds_truth() -> None:
    s = generate("unit_seconds", 6, END)
    metric = s.truth["unit_mistake"]
    v = values(s.params, metric)
    assert np.all(v < 1.0)
    assert 0.003 < float(np.median(v)) < 0.04
    assert meets(metric, v * 1000.0, s.params["targets"][metric])


def test_small_backend_truth() -> None:
    s = generate("small_backend", 6, END)
    assert "api_throughput" in s.params["metrics"]
    assert "api_throughput" not in s.params["targets"]
    assert not s.truth["throughput_target"]
    assert float(np.mean(values(s.params, "api_throughput"))) == pytest.approx(30.0, rel=0.2)


def test_every_task_type_has_both_healthy_scenarios() -> None:
    for task_type in TASK_TYPES:
        assert f"healthy_ar1.{task_type}" in SCENARIOS
        assert f"healthy_heavy.{task_type}" in SCENARIOS
    families = {generate(n, 1, END).family for n in NAMES}
    assert families >= {
        "healthy_ar1",
        "healthy_heavy",
        "step",
        "ramp",
        "cascade_cache_first",
        "cascade_db_first",
        "impossible_values",
        "unit_seconds",
        "small_backend",
    }


def test_corpora_imports_nothing_from_the_agent() -> None:
    assert_imports_nothing_from_the_agent(SOURCE)
