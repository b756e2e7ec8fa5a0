"""The codec on hand-built payloads: what a peer may send, and each way a payload is refused."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from protocols import (
    MESSAGE_TYPES,
    ErrorCode,
    KpiBatch,
    ProtocolError,
    SchemaName,
    StrategicDirective,
    TaskRequest,
    TaskResult,
    decode,
    encode,
    read_envelope,
    to_builtins,
)
from protocols.messages import Message
from protocols.reports import AnalysisReport, Findings
from protocols.schemas import split_schema
from tests.strategies import WIRE_EXAMPLES

ALL_TYPES = list(MESSAGE_TYPES.values())
TYPE_IDS = [cls.__name__ for cls in ALL_TYPES]


def example(cls: type[Message]) -> dict[str, Any]:
    return copy.deepcopy(WIRE_EXAMPLES[cls])


def dumps(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


def task(**fields: Any) -> dict[str, Any]:
    body = example(TaskRequest)
    body.update(fields)
    return body


def refused(cls: type[Message], data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(cls, data)
    return info.value


def test_examples_cover_every_message_type() -> None:
    assert set(WIRE_EXAMPLES) == set(ALL_TYPES)
    assert len(ALL_TYPES) == len(SchemaName) == 10


# --- accepted ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
def test_example_round_trips(cls: type[Message]) -> None:
    decoded = decode(cls, dumps(example(cls)))
    assert type(decoded) is cls
    again = decode(cls, encode(decoded))
    assert again == decoded
    assert encode(again) == encode(decoded)
    assert to_builtins(decoded)["schema"] == example(cls)["schema"]


def test_task_request_fields_decoded() -> None:
    request = decode(TaskRequest, dumps(task()))
    assert request.task_id == "t-1"
    assert request.issued_at == datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    assert request.priority == 5
    assert request.params.window == "1h"
    assert request.params.metrics["error_rate"] == 0.5
    series = request.params.metrics["api_response_time"]
    assert isinstance(series, list)
    assert series[0] == (datetime(2026, 11, 28, 10, 30, tzinfo=UTC), 120.5)
    assert series[1] == (1_764_325_860.0, 130.0)
    assert request.params.targets == {"api_response_time": 150.0}


def test_optional_fields_default() -> None:
    body = {k: task()[k] for k in ("schema", "task_id", "task_type", "issued_at", "issuer")}
    request = decode(TaskRequest, dumps(body))
    assert request.deadline is None
    assert request.priority is None
    assert request.params.metrics == {}


def test_encoded_times_are_rfc3339_utc() -> None:
    request = decode(TaskRequest, dumps(task()))
    assert json.loads(encode(request))["issued_at"] == "2026-11-28T10:30:00Z"


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
def test_unknown_extra_fields_are_ignored(cls: type[Message]) -> None:
    body = example(cls)
    body["zz_future_field"] = {"nested": [1, 2.5, None, "x"], "n": 10**30}
    body["another"] = 1e300
    assert decode(cls, dumps(body)) == decode(cls, dumps(example(cls)))


def test_unknown_nested_fields_are_ignored() -> None:
    body = task()
    body["params"]["future_param"] = {"anything": True}
    assert decode(TaskRequest, dumps(body)) == decode(TaskRequest, dumps(task()))


def test_explicit_envelope_is_used() -> None:
    data = dumps(task())
    env = read_envelope(data)
    assert env.schema == "task_request/v1"
    assert env.task_type == "api_optimization"
    assert env.readable_task_id == "t-1"
    assert decode(TaskRequest, data, env) == decode(TaskRequest, data)


# --- refused: broken bodies ----------------------------------------------------------


def _required(cls: type[Message]) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(cls) if f.required]


MISSING = [(cls, name) for cls in ALL_TYPES for name in _required(cls)]


@pytest.mark.parametrize(("cls", "field"), MISSING, ids=[f"{c.__name__}-{f}" for c, f in MISSING])
def test_missing_required_field(cls: type[Message], field: str) -> None:
    body = example(cls)
    del body[field]
    err = refused(cls, dumps(body))
    assert err.code is ErrorCode.SCHEMA_VIOLATION
    assert f"`{field}`" in err.message
    # the task id is named whenever the body carries a readable one
    assert err.task_id == ("t-1" if "task_id" in body else None)


def test_missing_field_names_the_task_of_a_result() -> None:
    body = example(TaskResult)
    del body["status"]
    err = refused(TaskResult, dumps(body))
    assert (err.code, err.task_id) == (ErrorCode.SCHEMA_VIOLATION, "t-1")


@pytest.mark.parametrize(
    ("field", "value", "task_id"),
    [
        ("issued_at", 5, "t-1"),
        ("issuer", ["helios"], "t-1"),
        ("priority", "high", "t-1"),
        ("priority", 1.5, "t-1"),
        ("params", [], "t-1"),
        ("deadline", True, "t-1"),
        ("task_id", 5, None),
        ("task_type", None, "t-1"),
    ],
)
def test_wrong_type(field: str, value: Any, task_id: str | None) -> None:
    err = refused(TaskRequest, dumps(task(**{field: value})))
    assert err.code is ErrorCode.SCHEMA_VIOLATION
    assert f"$.{field}" in err.message
    assert err.task_id == task_id


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_refused(literal: bytes) -> None:
    data = dumps(task(priority=1)).replace(b'"priority": 1', b'"priority": ' + literal)
    assert literal in data
    err = refused(TaskRequest, data)
    assert err.code is ErrorCode.INVALID_PAYLOAD  # not JSON at all: RFC 8259 has no NaN


def test_nan_in_an_ignored_field_is_refused_too() -> None:
    err = refused(TaskRequest, dumps(task(zz=float("nan"))))
    assert err.code is ErrorCode.INVALID_PAYLOAD


def test_nan_in_inline_metrics_is_refused() -> None:
    body = task()
    body["params"]["metrics"] = {"error_rate": float("inf")}
    assert refused(TaskRequest, dumps(body)).code is ErrorCode.INVALID_PAYLOAD


def test_1e400_is_refused() -> None:
    data = dumps(task(priority=1)).replace(b'"priority": 1', b'"priority": 1e400')
    err = refused(TaskRequest, data)
    assert (err.code, err.task_id) == (ErrorCode.SCHEMA_VIOLATION, "t-1")
    assert "$.priority" in err.message


def test_1e400_kpi_value_is_refused() -> None:
    body = example(KpiBatch)
    body["samples"][0]["value"] = 7.0
    data = dumps(body).replace(b'"value": 7.0', b'"value": 1e400')
    err = refused(KpiBatch, data)
    assert err.code is ErrorCode.SCHEMA_VIOLATION
    assert "$.samples[0].value" in err.message


@pytest.mark.parametrize(
    ("fields", "where", "task_id"),
    [
        ({"task_id": "t 1"}, "$.task_id", None),
        ({"task_id": "x" * 129}, "$.task_id", None),
        ({"task_id": ""}, "$.task_id", None),
        ({"task_id": "t/1"}, "$.task_id", None),
        ({"task_type": "api optimization"}, "$.task_type", "t-1"),
        ({"priority": 1001}, "$.priority", "t-1"),
        ({"priority": 10**30}, "$.priority", "t-1"),
        ({"issuer": ""}, "$.issuer", "t-1"),
        ({"reply_to": "a..b"}, "$.reply_to", "t-1"),
        ({"params": {"window": "0m"}}, "$.params.window", "t-1"),
        ({"params": {"window": "1 hour"}}, "$.params.window", "t-1"),
        ({"params": {"metrics": {"m": 1e16}}}, "$.params.metrics", "t-1"),
        ({"params": {"metrics": {"m": [[1e12, 1.0]]}}}, "$.params.metrics", "t-1"),
        ({"params": {"targets": {"m": -1e16}}}, "$.params.targets", "t-1"),
    ],
)
def test_out_of_range(fields: dict[str, Any], where: str, task_id: str | None) -> None:
    err = refused(TaskRequest, dumps(task(**fields)))
    assert err.code is ErrorCode.SCHEMA_VIOLATION
    assert where in err.message
    assert err.task_id == task_id


def test_task_id_of_128_chars_is_accepted() -> None:
    tid = "a" * 127 + ":"
    assert decode(TaskRequest, dumps(task(task_id=tid))).task_id == tid


@pytest.mark.parametrize("ts", [1e12, 1_764_325_800_000, 0, -1, 946_684_799, 4_102_444_801])
def test_kpi_epoch_out_of_range(ts: float) -> None:
    body = example(KpiBatch)
    body["samples"][1]["ts"] = ts
    err = refused(KpiBatch, dumps(body))
    assert err.code is ErrorCode.SCHEMA_VIOLATION
    assert "$.samples[1].ts" in err.message


# --- refused: schema tags --------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        "task_request/v2",
        "task_request/v0",
        "task_request/v10",
        "task_request/v01",
        "task_request/v\u00b2",  # str.isdigit() is True, int() raises
        "task_request/v\u0661",  # an Arabic-Indic one: int() reads it as 1
        "task_request/v1 ",
        "task_request/1",
        "task_request",
        "TASK_REQUEST/v1",
        "",
    ],
)
def test_unsupported_schema(schema: str) -> None:
    err = refused(TaskRequest, dumps(task(schema=schema)))
    assert (err.code, err.task_id) == (ErrorCode.UNSUPPORTED_SCHEMA, "t-1")


def test_unknown_major_version_message_is_clear() -> None:
    err = refused(TaskRequest, dumps(task(schema="task_request/v2")))
    assert "major version 2" in err.message
    assert "v1" in err.message


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
def test_another_message_schema_is_unsupported(cls: type[Message]) -> None:
    others = [name for name, other in MESSAGE_TYPES.items() if other is not cls]
    for name in others:
        body = example(cls)
        body["schema"] = name.tag
        err = refused(cls, dumps(body))
        assert err.code is ErrorCode.UNSUPPORTED_SCHEMA, name


@pytest.mark.parametrize("schema", [None, 1, ["task_request/v1"], {"v": 1}])
def test_non_string_schema(schema: Any) -> None:
    err = refused(TaskRequest, dumps(task(schema=schema)))
    assert (err.code, err.task_id) == (ErrorCode.SCHEMA_VIOLATION, "t-1")


def test_missing_schema() -> None:
    body = task()
    del body["schema"]
    err = refused(TaskRequest, dumps(body))
    assert (err.code, err.task_id) == (ErrorCode.SCHEMA_VIOLATION, "t-1")
    assert "`schema`" in err.message


def test_split_schema() -> None:
    assert split_schema("task_request/v1") == ("task_request", 1)
    assert split_schema("a/b/v12") == ("a/b", 12)
    assert split_schema("task_request/v") is None
    assert split_schema("/v1") is None
    assert split_schema("task_request/v1234567") is None


# --- refused: not a JSON object --------------------------------------------------------


def test_invalid_utf8_inside_an_ignored_field() -> None:
    data = dumps(task(zz="PLACEHOLDER")).replace(b"PLACEHOLDER", b"\xff\xfe\xc3")
    err = refused(TaskRequest, data)
    assert err.code is ErrorCode.INVALID_PAYLOAD
    assert "UTF-8" in err.message


def test_lone_surrogate_escape_is_refused() -> None:
    data = dumps(task(zz="PLACEHOLDER")).replace(b"PLACEHOLDER", b"\\ud800")
    assert refused(TaskRequest, data).code is ErrorCode.INVALID_PAYLOAD


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'[{"schema": "task_request/v1"}]',
        b'"task_request/v1"',
        b"42",
        b"null",
        b"true",
        b"",
        b"   ",
        b"{",
        b'{"schema": "task_request/v1"',
        b'{"schema": "task_request/v1"} {}',
        b"{'schema': 'task_request/v1'}",
        b"\xef\xbb\xbf{}",
    ],
)
def test_not_a_json_object(data: bytes) -> None:
    err = refused(TaskRequest, data)
    assert (err.code, err.task_id) == (ErrorCode.INVALID_PAYLOAD, None)
    with pytest.raises(ProtocolError) as info:
        read_envelope(data)
    assert info.value.code is ErrorCode.INVALID_PAYLOAD


@pytest.mark.parametrize("where", ["ignored", "schema", "params"])
def test_deeply_nested_json_is_refused_not_crashed(where: str) -> None:
    depth = 100_000
    deep = b"[" * depth + b"]" * depth
    if where == "ignored":
        data = b'{"schema": "task_request/v1", "task_id": "t-1", "x": ' + deep + b"}"
    elif where == "schema":
        data = b'{"schema": ' + deep + b"}"
    else:
        data = b'{"schema": "task_request/v1", "params": {"metrics": ' + deep + b"}}"
    assert refused(TaskRequest, data).code is ErrorCode.INVALID_PAYLOAD


def test_duplicate_key_last_one_wins_consistently() -> None:
    data = dumps(task()).replace(b'"issuer"', b'"task_id": "bad id", "issuer"')
    err = refused(TaskRequest, data)
    # envelope and body agree on the value that counts, so the rejection names no task
    assert (err.code, err.task_id) == (ErrorCode.SCHEMA_VIOLATION, None)


# --- directive weights and KPI timestamps ----------------------------------------------


def directive(weights: dict[str, float]) -> bytes:
    body = example(StrategicDirective)
    body["business_impact_weights"] = weights
    return dumps(body)


@pytest.mark.parametrize(
    "weights",
    [
        (0.5, 0.5, 0.5, 0.0),
        (0.25, 0.25, 0.25, 0.2),
        (0.0, 0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0, 1.0),
    ],
)
def test_weights_not_summing_to_one(weights: tuple[float, float, float, float]) -> None:
    keys = ("api_performance", "scalability", "ai_processing", "infrastructure_efficiency")
    err = refused(StrategicDirective, directive(dict(zip(keys, weights, strict=True))))
    assert err.code is ErrorCode.SCHEMA_VIOLATION
    assert "sum to 1" in err.message
    assert "$.business_impact_weights" in err.message


def test_weights_out_of_range_even_when_summing_to_one() -> None:
    weights = {
        "api_performance": 1.5,
        "scalability": -0.5,
        "ai_processing": 0.0,
        "infrastructure_efficiency": 0.0,
    }
    assert refused(StrategicDirective, directive(weights)).code is ErrorCode.SCHEMA_VIOLATION


def test_weights_summing_to_one_within_float_error() -> None:
    weights = {
        "api_performance": 0.1,
        "scalability": 0.2,
        "ai_processing": 0.3,
        "infrastructure_efficiency": 0.4,
    }
    decoded = decode(StrategicDirective, directive(weights))
    assert decoded.business_impact_weights is not None
    assert decoded.business_impact_weights.scalability == 0.2


def kpi_ts(ts: Any) -> bytes:
    return dumps(
        {
            "schema": "kpi_batch/v1",
            "source": "k",
            "samples": [{"metric": "m", "value": 1, "ts": ts}],
        }
    )


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-28T10:30:00Z", datetime(2026, 11, 28, 10, 30, tzinfo=UTC)),
        ("2026-11-28T12:30:00+02:00", datetime(2026, 11, 28, 10, 30, tzinfo=UTC)),
        ("2026-11-28T05:00:00-05:30", datetime(2026, 11, 28, 10, 30, tzinfo=UTC)),
        ("2026-11-28T10:30:00.123456Z", datetime(2026, 11, 28, 10, 30, 0, 123456, tzinfo=UTC)),
        (1_764_325_800, 1_764_325_800.0),
        (1_764_325_800.25, 1_764_325_800.25),
    ],
)
def test_kpi_ts_accepted(ts: Any, expected: datetime | float) -> None:
    sample = decode(KpiBatch, kpi_ts(ts)).samples[0]
    assert sample.ts == expected
    assert type(sample.ts) is type(expected)


def test_kpi_ts_keeps_its_offset() -> None:
    sample = decode(KpiBatch, kpi_ts("2026-11-28T12:30:00+02:00")).samples[0]
    assert isinstance(sample.ts, datetime)
    assert sample.ts.utcoffset() == timedelta(hours=2)
    assert sample.ts.tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-28T10:30:00",
        "2026-11-28",
        "1764325800",
        "yesterday",
        "2026-13-28T10:30:00Z",
        None,
        True,
        [2026, 11, 28],
    ],
)
def test_kpi_ts_refused(ts: Any) -> None:
    err = refused(KpiBatch, kpi_ts(ts))
    assert err.code is ErrorCode.SCHEMA_VIOLATION
    assert "$.samples[0].ts" in err.message


def test_naive_datetime_refused_in_every_timestamp_field() -> None:
    for cls in ALL_TYPES:
        for field in msgspec.structs.fields(cls):
            body = example(cls)
            value = body.get(field.encode_name)
            if isinstance(value, str) and value.endswith("Z") and "T" in value:
                body[field.encode_name] = value[:-1]
                err = refused(cls, dumps(body))
                assert err.code is ErrorCode.SCHEMA_VIOLATION, (cls, field.name)


# --- the typed report ---------------------------------------------------------------


def _result_with(report: dict[str, Any]) -> bytes:
    body = copy.deepcopy(WIRE_EXAMPLES[TaskResult])
    body["report"] = report
    return json.dumps(body).encode()


def test_a_report_is_decoded_to_its_kind() -> None:
    report = decode(TaskResult, _result_with(WIRE_EXAMPLES[TaskResult]["report"])).report
    assert isinstance(report, AnalysisReport)
    assert report.findings == Findings()  # absent: the typed default, not a dict


def test_a_report_from_a_newer_agent_keeps_decoding() -> None:
    """Unknown fields at the top and deep inside a report are ignored (forward compatible)."""
    report = copy.deepcopy(WIRE_EXAMPLES[TaskResult]["report"])
    report["confidence_bands"] = {"p50": 1.0}
    report["data_quality"] = {"samples": {"api_response_time": 3}, "sampling_bias": "none"}
    report["findings"] = {"cache": None, "gpu": {"util": 0.4}}
    decoded = decode(TaskResult, _result_with(report)).report
    assert isinstance(decoded, AnalysisReport)
    assert decoded.data_quality.samples == {"api_response_time": 3}


def test_an_untagged_report_from_an_older_agent_is_tagged_by_its_fields() -> None:
    analysis = dict(WIRE_EXAMPLES[TaskResult]["report"])
    del analysis["kind"]
    assert isinstance(decode(TaskResult, _result_with(analysis)).report, AnalysisReport)
    bad_plan = {"plan_type": "strategic_backend_optimization", "plan_id": "p-1"}
    with pytest.raises(ProtocolError, match="missing required field `created_at`"):
        decode(TaskResult, _result_with(bad_plan))  # tagged as a plan, then checked as one


def test_a_report_of_an_unknown_kind_is_refused() -> None:
    report = {**WIRE_EXAMPLES[TaskResult]["report"], "kind": "forecast"}
    with pytest.raises(ProtocolError, match="kind"):
        decode(TaskResult, _result_with(report))
