"""Root causes: synthetic incidents (seeded noise, 1-min samples over 2 h) and properties."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given

from agent.analysis.catalog import CATALOG
from agent.analysis.causes import (
    DEPENDENCIES,
    TRANSITIVE,
    W_DEPENDENCY,
    CauseInput,
    caused_by,
    onset,
    rank_causes,
    root_order,
)
from agent.analysis.judge import miss_ratio
from agent.analysis.series import STATISTICS, FloatArray, Series
from protocols.messages import CauseLink
from tests.strategies import cause_inputs

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
TS = T0.timestamp() + np.arange(120) * 60.0
MINUTE = np.arange(120)


def _step(rng: np.random.Generator, before: float, after: float, at: int, sd: float) -> FloatArray:
    """``before`` until minute ``at``, ``after`` from it on, plus Gaussian noise."""
    return np.where(at <= MINUTE, after, before) + rng.normal(0.0, sd, MINUTE.size)


def _obs(name: str, values: FloatArray | float) -> CauseInput:
    """A metric judged as the analysis would: the catalog's statistic against its target."""
    spec = CATALOG[name]
    if isinstance(values, float):
        series = Series(ts=np.array([math.nan]), values=np.array([values]), scalar=True)
        current = values
    else:
        series = Series(ts=TS, values=values)
        current = STATISTICS[spec.statistic](values)
    return CauseInput(
        spec=spec,
        series=series,
        target=spec.target,
        breached=miss_ratio(spec, current, spec.target) > 1.0,
    )


def _healthy(rng: np.random.Generator) -> dict[str, CauseInput]:
    """The API's dependencies well within their targets."""
    return {
        "database_query_time": _obs("database_query_time", rng.normal(30.0, 2.0, 120)),
        "redis_cache_hit": _obs("redis_cache_hit", np.minimum(rng.normal(98.5, 0.3, 120), 100.0)),
        "cache_hit_rate": _obs("cache_hit_rate", rng.normal(95.0, 0.5, 120)),
        "cpu_utilization": _obs("cpu_utilization", rng.normal(40.0, 3.0, 120)),
        "memory_utilization": _obs("memory_utilization", rng.normal(50.0, 2.0, 120)),
    }


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def test_dependency_table_names_catalog_metrics_and_has_no_cycle() -> None:
    for symptom, deps in DEPENDENCIES.items():
        assert symptom in CATALOG
        assert set(deps) <= set(CATALOG)
        assert symptom not in deps
    # Depth-first search for a cycle.
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle {(*path, name)}"
        if name in done:
            return
        for dep in DEPENDENCIES.get(name, ()):
            visit(dep, (*path, name))
        done.add(name)

    for name in DEPENDENCIES:
        visit(name, ())


def test_slow_database_before_slow_api_is_the_cause() -> None:
    rng = np.random.default_rng(1)
    obs = _healthy(rng)
    obs["database_query_time"] = _obs("database_query_time", _step(rng, 30.0, 80.0, 30, 2.0))
    obs["api_response_time"] = _obs("api_response_time", _step(rng, 60.0, 160.0, 45, 5.0))
    links = rank_causes(obs)
    assert [(link.symptom, link.cause) for link in links] == [
        ("api_response_time", "database_query_time")
    ]
    (link,) = links
    # Declared (0.4) + earlier (0.3) + 0.3 × ρ; noise inside each regime keeps ρ well below 1.
    assert link.score >= 0.75
    assert link.cause_onset == _at(30)
    assert link.symptom_onset == _at(45)
    assert link.correlation is not None
    assert link.correlation > 0.2
    assert root_order(links, ["api_response_time", "database_query_time"]) == [
        "database_query_time",
        "api_response_time",
    ]


def test_cold_redis_before_slow_api_is_the_cause() -> None:
    rng = np.random.default_rng(2)
    obs = _healthy(rng)
    obs["redis_cache_hit"] = _obs("redis_cache_hit", _step(rng, 98.5, 85.0, 20, 0.5))
    obs["api_response_time"] = _obs("api_response_time", _step(rng, 60.0, 150.0, 40, 5.0))
    links = rank_causes(obs)
    assert caused_by(links, "api_response_time") == ["redis_cache_hit"]
    assert links[0].cause_onset == _at(20)
    assert links[0].score >= 0.75


def test_api_slow_on_its_own_has_no_cause() -> None:
    rng = np.random.default_rng(3)
    obs = _healthy(rng)
    obs["api_response_time"] = _obs("api_response_time", _step(rng, 60.0, 150.0, 40, 5.0))
    assert obs["api_response_time"].breached
    links = rank_causes(obs)
    assert links == []
    assert caused_by(links, "api_response_time") == []
    assert root_order(links, ["api_response_time"]) == ["api_response_time"]


def test_the_earlier_correlated_dependency_ranks_first() -> None:
    rng = np.random.default_rng(4)
    obs = _healthy(rng)
    obs["database_query_time"] = _obs("database_query_time", _step(rng, 30.0, 90.0, 20, 2.0))
    obs["api_response_time"] = _obs("api_response_time", _step(rng, 60.0, 170.0, 40, 5.0))
    obs["cpu_utilization"] = _obs("cpu_utilization", _step(rng, 40.0, 95.0, 50, 3.0))
    links = rank_causes(obs)
    assert caused_by(links, "api_response_time") == ["database_query_time", "cpu_utilization"]
    db, cpu = links
    assert db.score > cpu.score
    order = root_order(links, ["api_response_time", "cpu_utilization", "database_query_time"])
    assert order.index("api_response_time") == 2


def test_a_dependency_of_a_breached_dependency_is_linked_with_less_weight() -> None:
    rng = np.random.default_rng(5)
    obs = {
        "database_query_time": _obs("database_query_time", _step(rng, 30.0, 90.0, 20, 2.0)),
        "content_retrieval_time": _obs(
            "content_retrieval_time", _step(rng, 100.0, 320.0, 35, 10.0)
        ),
        "feed_generation_time": _obs("feed_generation_time", _step(rng, 300.0, 800.0, 50, 20.0)),
    }
    links = rank_causes(obs)
    assert {(link.symptom, link.cause) for link in links} == {
        ("content_retrieval_time", "database_query_time"),
        ("feed_generation_time", "content_retrieval_time"),
        ("feed_generation_time", "database_query_time"),
    }
    assert caused_by(links, "feed_generation_time") == [
        "content_retrieval_time",
        "database_query_time",
    ]
    assert root_order(
        links, ["feed_generation_time", "content_retrieval_time", "database_query_time"]
    ) == [
        "database_query_time",
        "content_retrieval_time",
        "feed_generation_time",
    ]


def test_scalars_are_linked_by_the_table_alone() -> None:
    links = rank_causes(
        {
            "api_response_time": _obs("api_response_time", 250.0),
            "database_query_time": _obs("database_query_time", 90.0),
            "cpu_utilization": _obs("cpu_utilization", 30.0),
        }
    )
    assert links == [
        CauseLink(
            symptom="api_response_time",
            cause="database_query_time",
            score=W_DEPENDENCY,
            cause_onset=None,
            symptom_onset=None,
            correlation=None,
        )
    ]
    assert TRANSITIVE < 1.0


def test_onset_needs_a_sustained_breach() -> None:
    values = np.full(120, 30.0)
    values[10] = 200.0  # one spike is no onset
    assert onset(CauseInput(CATALOG["database_query_time"], Series(TS, values), 50.0, True)) is None
    values[60:] = 90.0
    values[70] = 30.0  # a dip inside a sustained breach does not move it
    at = onset(CauseInput(CATALOG["database_query_time"], Series(TS, values), 50.0, True))
    assert at == TS[60]


def test_root_order_keeps_the_given_order_otherwise_and_survives_cycles() -> None:
    assert root_order([], ["b", "a", "b"]) == ["b", "a"]
    cycle = [
        CauseLink(
            symptom=s, cause=c, score=0.5, cause_onset=None, symptom_onset=None, correlation=None
        )
        for s, c in (("a", "b"), ("b", "a"), ("c", "a"))
    ]
    order = root_order(cycle, ["c", "a", "b"])
    assert sorted(order) == ["a", "b", "c"]
    assert order.index("a") < order.index("c")


@given(observations=cause_inputs())
def test_any_finite_input_gives_scores_in_range(observations: dict[str, CauseInput]) -> None:
    links = rank_causes(observations)
    breached = {name for name, obs in observations.items() if obs.breached}
    for link in links:
        assert 0.0 <= link.score <= 1.0
        assert link.symptom in breached
        assert link.cause in breached
        assert link.correlation is None or -1.0 <= link.correlation <= 1.0
    assert [(link.symptom, -link.score) for link in links] == sorted(
        (link.symptom, -link.score) for link in links
    )
    order = root_order(links, breached)
    assert sorted(order) == sorted(breached)
    for name in breached:
        assert caused_by(links, name) == [link.cause for link in links if link.symptom == name]


def test_links_are_sorted_by_symptom_then_score() -> None:
    rng = np.random.default_rng(6)
    obs = _healthy(rng)
    obs["database_query_time"] = _obs("database_query_time", _step(rng, 30.0, 90.0, 20, 2.0))
    obs["api_response_time"] = _obs("api_response_time", _step(rng, 60.0, 170.0, 40, 5.0))
    obs["error_rate"] = _obs("error_rate", _step(rng, 0.2, 3.0, 50, 0.1))
    links = rank_causes(obs)
    assert [(link.symptom, link.cause) for link in links] == [
        ("api_response_time", "database_query_time"),
        ("error_rate", "api_response_time"),
        ("error_rate", "database_query_time"),
    ]
    assert links[1].score > links[2].score
    assert root_order(links, ["error_rate", "api_response_time", "database_query_time"]) == [
        "database_query_time",
        "api_response_time",
        "error_rate",
    ]
