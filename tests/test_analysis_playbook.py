"""The playbook table and the order approaches are offered in."""

from __future__ import annotations

import pytest

from agent.analysis.catalog import CATALOG
from agent.planning.playbook import CONDITIONS, PLAYBOOK, approaches_for


def test_the_playbook_order_is_impact_per_engineer_week() -> None:
    # pooling 40 %/1 wk = 40 > replicas 45 %/2 wk = 22.5 > query optimisation 55 %/3 wk ≈ 18.3.
    # Only the order ties break in: which approach a finding gets is rank_candidates'
    # decision (tests/test_planning_choice.py), where unmeasured pool pressure puts
    # query optimisation first.
    keys = [a.key for a in approaches_for("database_latency")]
    assert keys == ["connection_pooling", "read_replicas", "query_optimization"]


def test_order_is_by_expected_impact_per_week_for_every_type() -> None:
    for spec in CATALOG.values():
        found = approaches_for(spec.bottleneck_type)
        assert found, f"no approach addresses {spec.bottleneck_type}"
        per_week = [a.impact_per_week for a in found]
        assert per_week == sorted(per_week, reverse=True)


def test_expected_is_the_midpoint_of_the_prior_range() -> None:
    caching = PLAYBOOK["multi_level_caching"]
    assert (caching.impact_low, caching.impact_expected, caching.impact_high) == (50, 65, 80)
    assert PLAYBOOK["websocket_clustering"].measure == "capacity"


@pytest.mark.parametrize("approach", list(PLAYBOOK.values()), ids=list(PLAYBOOK))
def test_every_approach_is_well_formed(approach: object) -> None:
    from agent.planning.playbook import Approach

    assert isinstance(approach, Approach)
    assert 0 < approach.impact_low <= approach.impact_expected <= approach.impact_high
    assert approach.effort_weeks > 0
    assert approach.addresses
    assert approach.risk


def test_unknown_bottleneck_type_has_no_approach() -> None:
    assert approaches_for("no_such_type") == []


def test_every_required_approach_exists_and_the_graph_has_no_cycle() -> None:
    for approach in PLAYBOOK.values():
        for key in approach.requires:
            assert key in PLAYBOOK, f"{approach.key} requires unknown {key}"
            assert key != approach.key

    # Depth-first search with three colours: reaching a grey node again is a cycle.
    colour: dict[str, str] = {}

    def visit(key: str) -> None:
        colour[key] = "grey"
        for nxt in PLAYBOOK[key].requires:
            assert colour.get(nxt) != "grey", f"cycle through {key} → {nxt}"
            if nxt not in colour:
                visit(nxt)
        colour[key] = "black"

    for key in PLAYBOOK:
        if key not in colour:
            visit(key)


def test_requires_records_the_two_dependencies_we_decided() -> None:
    assert PLAYBOOK["read_replicas"].requires == ("connection_pooling",)
    assert PLAYBOOK["multi_level_caching"].requires == ("cache_ttl_tuning",)


def test_every_need_names_a_condition_the_plan_can_word() -> None:
    for approach in PLAYBOOK.values():
        if approach.needs is not None:
            assert approach.needs in CONDITIONS, f"{approach.key} needs unknown {approach.needs}"
    for key, condition in CONDITIONS.items():
        assert condition.key == key
        assert condition.absent
        assert condition.unmeasured


def test_pooling_and_replicas_need_pool_pressure_and_nothing_else_needs_anything() -> None:
    # Pooling fixes connection waits; replicas fix a primary busy with reads, which holds
    # connections longer. A slow database with healthy pools is slow per query: indexing.
    needing = {a.key: a.needs for a in PLAYBOOK.values() if a.needs is not None}
    assert needing == {
        "connection_pooling": "db_pool_pressure",
        "read_replicas": "db_pool_pressure",
    }
    assert CONDITIONS["db_pool_pressure"].absent == (
        "connection pools healthy: no sign of pool pressure"
    )
    assert CONDITIONS["db_pool_pressure"].unmeasured == "pool pressure not measured"
