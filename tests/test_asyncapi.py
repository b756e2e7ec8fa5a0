"""The AsyncAPI document: valid AsyncAPI 3.0.0, complete, self-contained, true to the decoder."""

from __future__ import annotations

import copy
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import ValidationError

from protocols import MESSAGE_TYPES, ProtocolError, decode, subjects
from protocols.asyncapi import address, asyncapi_document, asyncapi_json
from protocols.subjects import SUBJECTS
from tests import payloads

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI_SCHEMA = json.loads(
    (ROOT / "tests" / "schemas" / "asyncapi-3.0.0.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return asyncapi_document()


def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(ASYNCAPI_SCHEMA)
    assert cls is jsonschema.Draft7Validator  # the schema says draft-07
    cls.check_schema(ASYNCAPI_SCHEMA)
    return cls(ASYNCAPI_SCHEMA)


# --- valid AsyncAPI 3.0.0 ---------------------------------------------------------------


def test_document_validates_against_the_asyncapi_3_0_0_schema(doc: dict[str, Any]) -> None:
    errors = [f"{e.json_path}: {e.message[:200]}" for e in validator().iter_errors(doc)]
    assert errors == []
    assert doc["asyncapi"] == "3.0.0"


def _set_address(d: dict[str, Any]) -> None:
    d["channels"]["tasks"]["address"] = 42


def _set_action(d: dict[str, Any]) -> None:
    d["operations"]["receiveTasks"]["action"] = "publish"


def _set_payload_keyword(d: dict[str, Any]) -> None:
    # four levels down: components → schemas → anySchema → schema → JSON Schema draft-07
    d["components"]["schemas"]["TaskParams"]["properties"]["window"]["maxLength"] = -1


def _set_reply_location(d: dict[str, Any]) -> None:
    d["operations"]["receiveTasks"]["reply"]["address"]["location"] = "payload.reply_to"


def _set_parameter_enum(d: dict[str, Any]) -> None:
    d["channels"]["alerts"]["parameters"]["severity"]["enum"] = [1, 2]


def _drop_server_protocol(d: dict[str, Any]) -> None:
    del d["servers"]["nats"]["protocol"]


def _set_message_content_type(d: dict[str, Any]) -> None:
    d["components"]["messages"]["task_request"]["contentType"] = ["application/json"]


@pytest.mark.parametrize(
    "breakage",
    [
        _set_address,
        _set_action,
        _set_payload_keyword,
        _set_reply_location,
        _set_parameter_enum,
        _drop_server_protocol,
        _set_message_content_type,
    ],
    ids=lambda f: f.__name__.lstrip("_"),
)
def test_a_broken_document_fails_validation(
    doc: dict[str, Any], breakage: Callable[[dict[str, Any]], None]
) -> None:
    """The validator resolves and checks the nested definitions, not just the top level."""
    broken = copy.deepcopy(doc)
    breakage(broken)
    with pytest.raises(ValidationError):
        validator().validate(broken)


# --- complete -------------------------------------------------------------------------------


def _builders() -> Iterator[tuple[str, str]]:
    """Every subject ``protocols.subjects`` can spell, with ``{parameter}`` placeholders."""
    for name, value in vars(subjects).items():
        if isinstance(value, str) and value.startswith("swarm."):
            yield name, value
        elif (
            inspect.isfunction(value)
            and value.__module__ == subjects.__name__
            and not name.startswith("_")
        ):
            params = list(inspect.signature(value).parameters)
            built = value(*(f"__{p}__" for p in params))
            if isinstance(built, str) and built.startswith("swarm."):
                yield name, re.sub(r"__(\w+?)__", r"{\1}", built)


def _covers(address_: str, subject: str) -> bool:
    """Whether a channel address matches a subject (a ``>`` subject: some subject under it)."""
    a, s = address_.split("."), subject.split(".")
    if s[-1] == ">":
        return len(a) >= len(s) and a[: len(s) - 1] == s[:-1]
    return a == s


def test_every_subject_of_protocols_subjects_is_a_channel(doc: dict[str, Any]) -> None:
    built = dict(_builders())
    assert {"tasks", "rpc", "results", "kpi", "alerts", "KPI_ALL", "ALERTS_ALL"} <= built.keys()
    addresses = [c["address"] for c in doc["channels"].values() if c["address"]]
    missing = [n for n, s in built.items() if not any(_covers(a, s) for a in addresses)]
    assert missing == []


def test_every_subject_of_the_table_is_a_channel_with_an_operation(doc: dict[str, Any]) -> None:
    for spec in SUBJECTS:
        channel = doc["channels"][spec.key]
        assert channel["address"] == address(spec)
        operations = [
            o for o in doc["operations"].values() if o["channel"]["$ref"].endswith(f"/{spec.key}")
        ]
        assert [o["action"] for o in operations] == [spec.action]


def test_every_message_type_is_a_component_and_on_a_channel(doc: dict[str, Any]) -> None:
    on_channels = {
        ref["$ref"].rsplit("/", 1)[-1]
        for channel in doc["channels"].values()
        for ref in channel["messages"].values()
    }
    for name, cls in MESSAGE_TYPES.items():
        message = doc["components"]["messages"][name.value]
        assert message["name"] == name.tag
        assert message["contentType"] == "application/json"
        assert message["payload"] == {"$ref": f"#/components/schemas/{cls.__name__}"}
        assert name.value in on_channels


def test_address_parameters_are_declared(doc: dict[str, Any]) -> None:
    for key, channel in doc["channels"].items():
        named = set(re.findall(r"\{(\w+)\}", channel["address"] or ""))
        assert named == set(channel.get("parameters", {})), key


def test_the_agent_receives_tasks_and_answers_them(doc: dict[str, Any]) -> None:
    ops = doc["operations"]
    assert ops["receiveRpc"]["action"] == "receive"
    assert ops["receiveRpc"]["reply"]["messages"] == [
        {"$ref": "#/channels/rpcReply/messages/task_result"}
    ]
    assert ops["receiveTasks"]["reply"]["address"]["location"] == "$message.payload#/reply_to"
    assert ops["sendResults"]["action"] == "send"
    assert doc["channels"]["alerts"]["parameters"]["severity"]["enum"] == [
        "critical",
        "high",
        "medium",
        "low",
    ]
    assert doc["servers"]["nats"] == {
        "host": "localhost:4222",
        "protocol": "nats",
        "description": "A NATS server.",
    }
    assert asyncapi_document("nats.example:4222")["servers"]["nats"]["host"] == "nats.example:4222"


# --- self-contained ---------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in ("default", "enum", "const", "examples"):
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), ref
        assert token in node, ref
        node = node[token]
    return node


def test_every_ref_resolves_inside_the_document(doc: dict[str, Any]) -> None:
    refs = set(_refs(doc))
    assert "#/components/schemas/TaskParams" in refs
    assert not [r for r in refs if "$defs" in r]
    for ref in refs:
        _resolve(doc, ref)


def test_payload_schemas_are_draft_07(doc: dict[str, Any]) -> None:
    text = json.dumps(doc["components"]["schemas"])
    assert "prefixItems" not in text
    assert "$defs" not in text
    point = doc["components"]["schemas"]["TaskParams"]["properties"]["metrics"]
    series = point["additionalProperties"]["anyOf"][1]["items"]
    assert isinstance(series["items"], list)
    assert series["additionalItems"] is False


# --- true to the decoder ----------------------------------------------------------------------


def _payload_validator(doc: dict[str, Any], struct: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"#/components/schemas/{struct}", "components": doc["components"]}
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def _task(**fields: Any) -> dict[str, Any]:
    return payloads.task(**fields)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        (_task(), True),
        (_task(priority=5, reply_to="inbox.me", deadline="2026-11-29T12:00:00Z"), True),
        (_task(task_id="has space"), False),
        (_task(priority=1001), False),
        (_task(params={"metrics": {"api_response_time": [["2026-11-28T10:00:00Z", 1, 2]]}}), False),
        (_task(params={"metrics": {"api_response_time": [[1_800_000_000, 120.0]]}}), True),
        (_task(params={"metrics": {"api_response_time": [[12, 120.0]]}}), False),
        (_task(params={"window": "90x"}), False),
        ({k: v for k, v in _task().items() if k != "issuer"}, False),
    ],
)
def test_task_request_schema_agrees_with_the_decoder(
    doc: dict[str, Any], body: dict[str, Any], valid: bool
) -> None:
    from protocols import TaskRequest

    data = json.dumps(body).encode()
    try:
        decode(TaskRequest, data)
        decoded = True
    except ProtocolError:
        decoded = False
    schema_ok = _payload_validator(doc, "TaskRequest").is_valid(body)
    assert (decoded, schema_ok) == (valid, valid)


# --- the command --------------------------------------------------------------------------------


def test_asyncapi_command_prints_the_document(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    argv = [str(Path(sys.executable).parent / "prometheus-backend"), "asyncapi"]
    run = subprocess.run(
        [*argv, "-o", str(out)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert out.read_text(encoding="utf-8") == asyncapi_json()
    printed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert printed.stdout == asyncapi_json()
    unwritable = subprocess.run(
        [*argv, "-o", str(tmp_path / "no" / "such" / "dir.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unwritable.returncode == 2
    assert "Traceback" not in unwritable.stderr
