"""The learning model's services level: exact for each τ, τ learnt from the outcomes.

``agent.learning.model`` gives each service (backend) its own intercept about the pair's,
with a spread ``τ`` weighted by how well it explains the outcomes. These tests check the
algebra against a brute-force joint Gaussian built from the raw outcomes, and that the
spread is learnt: services that truly differ are told apart, services that differ only
by the luck of noisy draws are not.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.learning import model
from agent.learning.model import (
    NO_EVIDENCE,
    SERVICE_SHAPE,
    Context,
    Evidence,
    K,
    fit_pair,
    gain,
    pool,
)

PAIR = ("batched_async_processing", "real_time_delivery")


def _outcomes(
    rng: np.random.Generator, n: int, intercept: float, noise: float
) -> list[tuple[np.ndarray, float]]:
    out = []
    for _ in range(n):
        x = Context(miss=float(rng.uniform(0.0, 1.5)), load=float(rng.uniform(0.5, 0.9))).x()
        y = intercept + 0.3 * float(x[1]) + 0.1 * float(x[2]) + noise * float(rng.normal())
        out.append((x, y))
    return out


def _evidence(rows: list[tuple[np.ndarray, float]]) -> Evidence:
    e = NO_EVIDENCE
    for x, y in rows:
        e = e.add(x, y)
    return e


def _pool(by_service: dict[str, list[tuple[np.ndarray, float]]]) -> model.Pool:
    per = {(*PAIR, s): _evidence(rows) for s, rows in by_service.items()}
    everything = model.total(per.values())
    return pool({PAIR: everything}, per)


def _brute_force(
    m0: np.ndarray,
    v0: np.ndarray,
    data: dict[str, list[tuple[np.ndarray, float]]],
    target: str,
    s2: float,
    t: np.ndarray,
) -> np.ndarray:
    """The target's coefficients' posterior mean from the joint Gaussian of the pair's
    coefficients and every service's deviation, built from the raw outcomes."""
    names = sorted(data)
    dim = K * (1 + len(names))
    prior_cov = np.zeros((dim, dim))
    prior_cov[:K, :K] = v0
    for i in range(len(names)):
        prior_cov[K * (i + 1) : K * (i + 2), K * (i + 1) : K * (i + 2)] = t + 1e-12 * np.eye(K)
    prior_mean = np.concatenate([m0, np.zeros(K * len(names))])
    rows, ys = [], []
    for i, name in enumerate(names):
        for x, y in data[name]:
            row = np.zeros(dim)
            row[:K] = x
            row[K * (i + 1) : K * (i + 2)] = x
            rows.append(row)
            ys.append(y)
    design, y = np.array(rows), np.array(ys)
    precision = np.linalg.inv(prior_cov) + design.T @ design / s2
    cov = np.linalg.inv(precision)
    mean = cov @ (np.linalg.solve(prior_cov, prior_mean) + design.T @ y / s2)
    i = names.index(target)
    out: np.ndarray = mean[:K] + mean[K * (i + 1) : K * (i + 2)]
    return out


def test_for_one_tau_the_service_posterior_is_the_exact_joint_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(3)
    data = {
        "a": _outcomes(rng, 6, 0.2, 0.1),
        "b": _outcomes(rng, 4, 1.0, 0.1),
        "c": _outcomes(rng, 9, 0.6, 0.1),
    }
    tau = 0.35
    monkeypatch.setattr(model, "TAU_GRID", np.array([tau]))
    m0, v0 = np.array([1.0, 0.0, 0.0]), np.diag([0.4**2, 1.0, 1.0])
    by_service = {s: _evidence(rows) for s, rows in data.items()}
    t = tau**2 * SERVICE_SHAPE
    for target in ("a", "b", "c"):
        mean, _ = model._service_fit(m0, v0, by_service, target, 0.01)
        assert mean == pytest.approx(_brute_force(m0, v0, data, target, 0.01, t), abs=1e-6)


def test_services_that_differ_are_told_apart_and_alike_ones_are_not() -> None:
    rng = np.random.default_rng(7)
    ctx = Context(miss=0.7, load=0.7)
    apart = _pool({"far": _outcomes(rng, 12, -0.2, 0.08), "near": _outcomes(rng, 12, 1.0, 0.08)})
    far, near = gain(apart, *PAIR, ctx, "far"), gain(apart, *PAIR, ctx, "near")
    assert near.expected - far.expected > 0.8 * 50.0  # ratio 1.2 apart, on a 50 % playbook figure
    # four alike services, noisy outcomes: their chance differences are mostly not taken
    # at face value (separate fits per service would)
    shrunk, separate = 0.0, 0.0
    for seed in range(4):
        draws = np.random.default_rng(100 + seed)
        alike = {s: _outcomes(draws, 12, 0.5, 0.4) for s in "abcd"}
        p = _pool(alike)
        shrunk += float(np.std([gain(p, *PAIR, ctx, s).expected for s in alike]))
        alone = [np.linalg.lstsq(*_design(rows), rcond=None)[0] for rows in alike.values()]
        separate += float(np.std([50.0 * ctx.x() @ b for b in alone]))
    assert shrunk < 0.6 * separate, (shrunk, separate)


def _design(rows: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([x for x, _ in rows]), np.array([y for _, y in rows])


def test_noise_is_measured_within_services() -> None:
    rng = np.random.default_rng(11)
    p = _pool({"far": _outcomes(rng, 15, -0.5, 0.05), "near": _outcomes(rng, 15, 1.0, 0.05)})
    f = fit_pair(p, *PAIR, "near")
    assert f.s2**0.5 < 0.2  # the services' difference is no noise


def test_a_new_service_gets_the_pairs_coefficients_and_a_wider_interval() -> None:
    rng = np.random.default_rng(5)
    p = _pool({"a": _outcomes(rng, 10, 0.8, 0.1), "b": _outcomes(rng, 10, 0.6, 0.1)})
    ctx = Context(miss=0.5, load=0.7)
    seen, unseen = gain(p, *PAIR, ctx, "a"), gain(p, *PAIR, ctx, "never-seen")
    assert unseen.high - unseen.low > seen.high - seen.low
    assert unseen.verifications == seen.verifications == 20


def test_with_nothing_verified_the_prior_has_all_the_weight() -> None:
    g = gain(model.EMPTY_POOL, *PAIR, Context(miss=0.5, load=0.8), "any")
    assert g.prior_weight == 1.0
    assert not g.calibrated
    assert g.expected == pytest.approx(50.0)


def test_fits_are_made_once_per_pool_and_service() -> None:
    rng = np.random.default_rng(2)
    p = _pool({"a": _outcomes(rng, 5, 0.8, 0.1)})
    assert fit_pair(p, *PAIR, "a") is fit_pair(p, *PAIR, "a")
