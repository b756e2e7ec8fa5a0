"""Subjects as docs/protocol.md spells them, and the exported JSON Schema document."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from protocols import MESSAGE_TYPES, SchemaName, TaskType, json_schemas, subjects

AGENT, HELIOS, HEPHAESTUS, ATHENA = (
    "prometheus-backend",
    "helios",
    "hephaestus-backend",
    "athena-api",
)


# --- subjects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (
            subjects.tasks(AGENT, "api_optimization"),
            "swarm.tasks.prometheus-backend.api_optimization",
        ),
        (subjects.tasks_all(AGENT), "swarm.tasks.prometheus-backend.>"),
        (
            subjects.rpc(AGENT, TaskType.CACHE_OPTIMIZATION),
            "swarm.rpc.prometheus-backend.cache_optimization",
        ),
        (
            subjects.results(AGENT, TaskType.STRATEGIC_BACKEND_PLANNING),
            "swarm.results.prometheus-backend.strategic_backend_planning",
        ),
        (subjects.results_all(AGENT), "swarm.results.prometheus-backend.>"),
        (subjects.monitor_results(AGENT), "swarm.results.prometheus-backend.monitor"),
        (subjects.plans(HEPHAESTUS), "swarm.plans.hephaestus-backend"),
        (subjects.baselines(ATHENA), "swarm.baselines.athena-api"),
        (subjects.verifications(AGENT), "swarm.verifications.prometheus-backend"),
        (subjects.feedback(AGENT), "swarm.feedback.prometheus-backend"),
        (subjects.directives(AGENT), "swarm.directives.prometheus-backend"),
        (subjects.kpi("api_response_time"), "swarm.kpi.backend.api_response_time"),
        (subjects.alerts("critical"), "swarm.alerts.backend.critical"),
        (subjects.deadletter(AGENT), "swarm.deadletter.prometheus-backend"),
        (subjects.KPI_ALL, "swarm.kpi.backend.>"),
        (subjects.ALERTS_ALL, "swarm.alerts.backend.>"),
    ],
)
def test_subject_matches_protocol(built: str, expected: str) -> None:
    assert built == expected


@pytest.mark.parametrize("task_type", list(TaskType), ids=str)
def test_task_subjects_for_every_task_type(task_type: TaskType) -> None:
    for build, kind in (
        (subjects.tasks, "tasks"),
        (subjects.rpc, "rpc"),
        (subjects.results, "results"),
    ):
        subject = build(AGENT, task_type)
        assert subject == f"swarm.{kind}.{AGENT}.{task_type.value}"
        assert subjects.task_type_of(subject) == task_type.value


BAD_TOKENS = ["a.b", "a*", "*", ">", "a>", "a b", "", " ", "a\tb", "ä", "a/b"]


def _builders() -> Iterator[tuple[str, Callable[[str], str]]]:
    yield "tasks-agent", lambda t: subjects.tasks(t, "api_optimization")
    yield "tasks-type", lambda t: subjects.tasks(AGENT, t)
    yield "rpc-agent", lambda t: subjects.rpc(t, "api_optimization")
    yield "rpc-type", lambda t: subjects.rpc(AGENT, t)
    yield "results-agent", lambda t: subjects.results(t, "api_optimization")
    yield "results-type", lambda t: subjects.results(AGENT, t)
    for fn in (
        subjects.tasks_all,
        subjects.results_all,
        subjects.monitor_results,
        subjects.plans,
        subjects.baselines,
        subjects.verifications,
        subjects.feedback,
        subjects.directives,
        subjects.kpi,
        subjects.alerts,
        subjects.deadletter,
    ):
        yield fn.__name__, fn


BUILDERS = list(_builders())


@pytest.mark.parametrize(("name", "build"), BUILDERS, ids=[n for n, _ in BUILDERS])
@pytest.mark.parametrize("token", BAD_TOKENS, ids=repr)
def test_invalid_token_raises(name: str, build: Callable[[str], str], token: str) -> None:
    with pytest.raises(ValueError, match="not a valid subject token"):
        build(token)


@pytest.mark.parametrize(("name", "build"), BUILDERS, ids=[n for n, _ in BUILDERS])
def test_valid_token_accepted(name: str, build: Callable[[str], str]) -> None:
    subject = build("Ok_token-1")
    assert "Ok_token-1" in subject.split(".")


def test_task_type_of() -> None:
    assert subjects.task_type_of("swarm.tasks.a.api_optimization") == "api_optimization"
    assert subjects.task_type_of("swarm.rpc.a.b.c") == "c"
    assert subjects.task_type_of("single") == "single"
    assert subjects.task_type_of("swarm.tasks.a.") == ""


def test_result_msg_id() -> None:
    assert subjects.result_msg_id("t-1") == "t-1:result"
    assert subjects.result_msg_id("a:b.c") == "a:b.c:result"


# --- JSON Schema ---------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                assert isinstance(value, str)
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json_schemas()


def test_schema_has_every_message(doc: dict[str, Any]) -> None:
    expected = {f"{name.value}/v1" for name in SchemaName}
    assert len(expected) == 10
    assert set(doc["messages"]) == expected
    assert set(doc["reports"]) == {"AnalysisReport", "PlanningReport"}
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_each_message_names_its_struct(doc: dict[str, Any]) -> None:
    for name, cls in MESSAGE_TYPES.items():
        assert doc["messages"][name.tag] == {"$ref": f"#/$defs/{cls.__name__}"}


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    refs = list(_refs(doc))
    assert len(refs) > 20
    for ref in refs:
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in doc["$defs"], ref


def test_schema_is_plain_json(doc: dict[str, Any]) -> None:
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc


def test_schema_carries_constraints(doc: dict[str, Any]) -> None:
    defs = doc["$defs"]
    request = defs["TaskRequest"]
    assert request["properties"]["task_id"]["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    assert set(request["required"]) == {"task_id", "task_type", "issued_at", "issuer"}
    assert request["properties"]["issued_at"]["format"] == "date-time"
    value = defs["KpiSample"]["properties"]["value"]
    assert (value["minimum"], value["maximum"]) == (-1e15, 1e15)
    ts_choices = defs["KpiSample"]["properties"]["ts"]["anyOf"]
    assert {"type": "number", "minimum": 946_684_800, "maximum": 4_102_444_800} in ts_choices
    assert defs["TaskResult"]["properties"]["status"]["enum"] == ["completed", "failed", "rejected"]
    assert "3_months" in defs["ScalabilityProjections"]["properties"]
