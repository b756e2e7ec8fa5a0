"""Hypothesis against every decoder: any input gives the message or a ProtocolError, nothing else.

A decoder that raises anything but ProtocolError would crash the consumer on a peer's bytes;
a decoder that accepts something it cannot send back would break "what we send is what we
would accept".
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import MESSAGE_TYPES, ErrorCode, ProtocolError, decode, encode, read_envelope
from protocols.messages import Message, TaskResult
from tests.strategies import WIRE_EXAMPLES, WIRE_MESSAGES, json_values

ALL_TYPES = list(MESSAGE_TYPES.values())
TYPE_IDS = [cls.__name__ for cls in ALL_TYPES]
TAGS = {cls: name.tag for name, cls in MESSAGE_TYPES.items()}

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(cls: type[Message], data: bytes) -> Message | None:
    """The property: ``cls`` or ProtocolError; an accepted message survives its own encoding."""
    try:
        decoded = decode(cls, data)
    except ProtocolError as exc:
        error = exc
    else:
        assert type(decoded) is cls
        assert decode(cls, encode(decoded)) == decoded
        return decoded
    assert isinstance(error.code, ErrorCode)
    assert error.task_id is None or isinstance(error.task_id, str)
    return None


def dumps(value: Any, ensure_ascii: bool = True) -> bytes:
    return json.dumps(value, allow_nan=True, ensure_ascii=ensure_ascii).encode()


# --- (a) arbitrary bytes -----------------------------------------------------------------

_objectish = st.builds(
    lambda tag, tail: b'{"schema": "' + tag.encode() + b'", ' + tail,
    st.sampled_from([name.tag for name in MESSAGE_TYPES]),
    st.binary(max_size=64),
)
"""Bytes that start like a message, so the fuzz gets past the first byte."""


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(data=st.binary(max_size=256) | _objectish)
def test_arbitrary_bytes(cls: type[Message], data: bytes) -> None:
    check(cls, data)


@FUZZ
@given(data=st.binary(max_size=256) | _objectish)
def test_read_envelope_on_arbitrary_bytes(data: bytes) -> None:
    try:
        env = read_envelope(data)
    except ProtocolError as exc:
        error = exc
    else:
        tid = env.readable_task_id
        assert tid is None or (isinstance(tid, str) and 1 <= len(tid) <= 128)
        return
    assert error.code is ErrorCode.INVALID_PAYLOAD


@FUZZ
@given(value=json_values, ensure_ascii=st.booleans())
def test_read_envelope_on_arbitrary_json(value: Any, ensure_ascii: bool) -> None:
    try:
        read_envelope(dumps(value, ensure_ascii))
    except ProtocolError as exc:
        error = exc
    else:
        assert isinstance(value, dict)
        return
    assert error.code is ErrorCode.INVALID_PAYLOAD
    # refused only when it is not an object, or when NaN/Infinity made it invalid JSON
    assert not isinstance(value, dict) or _has_non_finite(value)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


# --- (b) arbitrary JSON in an object with the right schema -------------------------------


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(
    fields=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
    known=st.data(),
    ensure_ascii=st.booleans(),
)
def test_arbitrary_json_fields(
    cls: type[Message], fields: dict[str, Any], known: st.DataObject, ensure_ascii: bool
) -> None:
    # some of the struct's own field names, so that values reach the typed decoders
    names = sorted(WIRE_EXAMPLES[cls])
    picked = known.draw(st.dictionaries(st.sampled_from(names), json_values, max_size=4))
    body = {**fields, **picked, "schema": TAGS[cls]}
    check(cls, dumps(body, ensure_ascii))


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(value=json_values)
def test_arbitrary_json_top_level(cls: type[Message], value: Any) -> None:
    check(cls, dumps(value))


# --- (c) mutations of a valid message ----------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a JSON document, the root excluded."""
    out: list[tuple[Any, ...]] = []
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    for key, child in children:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


@st.composite
def valid_documents(draw: st.DrawFn, cls: type[Message]) -> dict[str, Any]:
    """The hand-built example or a generated valid message, as plain JSON data."""
    if draw(st.booleans()):
        return copy.deepcopy(WIRE_EXAMPLES[cls])
    doc: dict[str, Any] = json.loads(encode(draw(WIRE_MESSAGES[cls])))
    return doc


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(doc=st.data(), value=json_values)
def test_replace_any_value(cls: type[Message], doc: st.DataObject, value: Any) -> None:
    body = doc.draw(valid_documents(cls))
    path = doc.draw(st.sampled_from(_paths(body)))
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    check(cls, dumps(body))


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(doc=st.data(), value=json_values)
def test_delete_any_value(cls: type[Message], doc: st.DataObject, value: Any) -> None:
    body = doc.draw(valid_documents(cls))
    path = doc.draw(st.sampled_from(_paths(body)))
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    check(cls, dumps(body))


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(doc=st.data())
def test_truncated(cls: type[Message], doc: st.DataObject) -> None:
    data = encode(doc.draw(WIRE_MESSAGES[cls]))
    cut = doc.draw(st.integers(0, len(data) - 1))
    with pytest.raises(ProtocolError) as info:
        decode(cls, data[:cut])
    assert info.value.code is ErrorCode.INVALID_PAYLOAD


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(doc=st.data())
def test_flipped_byte(cls: type[Message], doc: st.DataObject) -> None:
    data = bytearray(encode(doc.draw(WIRE_MESSAGES[cls])))
    at = doc.draw(st.integers(0, len(data) - 1))
    data[at] ^= doc.draw(st.integers(1, 255))
    check(cls, bytes(data))


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@FUZZ
@given(doc=st.data(), value=json_values, first=st.booleans())
def test_duplicated_key(cls: type[Message], doc: st.DataObject, value: Any, first: bool) -> None:
    body = doc.draw(valid_documents(cls))
    key = doc.draw(st.sampled_from(sorted(body)))
    dup = json.dumps(key).encode() + b": " + dumps(value)
    data = dumps(body)
    # the duplicate goes before the object's fields or after them
    data = b"{" + dup + b", " + data[1:] if first else data[:-1] + b", " + dup + b"}"
    decoded = check(cls, data)
    if decoded is not None and not first:
        # the last occurrence is the one that counts
        assert decoded == decode(cls, dumps({**body, key: value}))


def test_a_report_given_twice_the_last_not_an_object_is_refused() -> None:
    """What hypothesis found: an untagged report object, then ``"report": null``."""
    data = (
        b'{"report": {}, "schema": "task_result/v1", "task_id": "0", "task_type": "0", '
        b'"agent_id": "0", "status": "completed", "started_at": "2000-01-01T00:00:00Z", '
        b'"completed_at": "2000-01-01T00:00:00Z", "duration_ms": 0.0, "report": null, '
        b'"error": null}'
    )
    with pytest.raises(ProtocolError) as refused:
        decode(TaskResult, data)
    assert refused.value.code is ErrorCode.SCHEMA_VIOLATION


# --- (d) valid messages round-trip ---------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_TYPES, ids=TYPE_IDS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.data())
def test_valid_messages_round_trip(cls: type[Message], doc: st.DataObject) -> None:
    message = doc.draw(WIRE_MESSAGES[cls])
    data = encode(message)
    decoded = decode(cls, data)
    assert decoded == message
    assert encode(decoded) == data
    assert read_envelope(data).schema == TAGS[cls]
