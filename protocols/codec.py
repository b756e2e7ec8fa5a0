"""Decoding and encoding of wire messages; decoders are built once (msgspec's perf advice).

Decoding is two steps: a lenient envelope read (is it a JSON object, which schema, which
task id?) and then the strict decode of the whole body. The envelope lets a rejection
name the task and tell "unknown version" apart from "broken body".
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from protocols.errors import ErrorCode
from protocols.messages import MESSAGE_TYPES, Message
from protocols.reports import report_kind
from protocols.schemas import MAJOR_VERSION, SchemaName, split_schema

M = TypeVar("M", bound=Message)

_TASK_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ProtocolError(ValueError):
    """A message that cannot be accepted; ``code`` is the stable error code for the reply."""

    def __init__(self, code: ErrorCode, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.task_id = task_id


class Envelope(msgspec.Struct, frozen=True):
    """What can be read from any JSON object before it is validated."""

    schema: Any = None
    task_id: Any = None
    task_type: Any = None

    @property
    def readable_task_id(self) -> str | None:
        """The task id if it is one the protocol allows, so a rejection can name it."""
        tid = self.task_id
        return tid if isinstance(tid, str) and _TASK_ID.match(tid) else None


_ENVELOPE = msgspec.json.Decoder(Envelope)
_DECODERS: dict[type[Message], msgspec.json.Decoder[Any]] = {
    cls: msgspec.json.Decoder(cls) for cls in MESSAGE_TYPES.values()
}
_NAMES: dict[type[Message], SchemaName] = {cls: name for name, cls in MESSAGE_TYPES.items()}
_ENCODER = msgspec.json.Encoder()


def read_envelope(data: bytes) -> Envelope:
    """The envelope of ``data``; ProtocolError(invalid_payload) unless it is a JSON object."""
    try:
        data.decode("utf-8")  # all of it must be UTF-8, ignored fields included
    except UnicodeDecodeError as exc:
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, f"not valid UTF-8: {exc}") from None
    try:
        return _ENVELOPE.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, f"not a JSON object: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, f"not valid UTF-8 JSON: {exc}") from None
    except RecursionError:  # msgspec raises it for JSON nested deeper than the recursion limit
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "JSON nested too deeply") from None


def check_schema(envelope: Envelope, expected: SchemaName) -> None:
    """Reject a message that does not say it is ``expected`` at our major version."""
    tid = envelope.readable_task_id
    if not isinstance(envelope.schema, str):
        raise ProtocolError(
            ErrorCode.SCHEMA_VIOLATION, "missing or non-string field `schema`", task_id=tid
        )
    parsed = split_schema(envelope.schema)
    if parsed is None or parsed[0] != expected.value:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_SCHEMA,
            f"expected schema {expected.tag!r}, got {envelope.schema[:64]!r}",
            task_id=tid,
        )
    if parsed[1] != MAJOR_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_SCHEMA,
            f"{expected.value} major version {parsed[1]} is not supported "
            f"(this agent speaks v{MAJOR_VERSION})",
            task_id=tid,
        )


_UNTAGGED_REPORT = "Object missing required field `kind` - at `$.report`"


def _tag_report(data: bytes) -> bytes | None:
    """A ``task_result/v1`` whose report lacks ``kind``, with the kind its fields imply;
    None when what lacks it is not a report object after all (a ``report`` key given twice,
    the last not an object: refused like any other schema violation).

    Agents before the typed report sent it untagged; a planning report is the one with
    ``plan_type``. Their plans without learning history carried ``learning_report: {}``,
    which now means none. Decoded once more, the result is checked like any other.
    """
    body = msgspec.json.decode(data)
    report = body.get("report") if isinstance(body, dict) else None
    if not isinstance(report, dict):
        return None
    report["kind"] = report_kind(report)
    if report.get("learning_report") == {}:
        del report["learning_report"]
    return msgspec.json.encode(body)


def decode(cls: type[M], data: bytes, envelope: Envelope | None = None) -> M:
    """Strictly decode ``data`` as ``cls``; every failure is a ProtocolError with its code."""
    env = envelope if envelope is not None else read_envelope(data)
    check_schema(env, _NAMES[cls])
    try:
        result: M = _DECODERS[cls].decode(data)
    except msgspec.ValidationError as exc:
        # from an agent that predates ``kind``
        if str(exc) == _UNTAGGED_REPORT and (tagged := _tag_report(data)) is not None:
            return decode(cls, tagged, env)
        raise ProtocolError(
            ErrorCode.SCHEMA_VIOLATION, str(exc), task_id=env.readable_task_id
        ) from None
    except msgspec.DecodeError as exc:  # pragma: no cover - the envelope read the same bytes
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, str(exc)) from None
    except RecursionError:  # pragma: no cover - the envelope read the same bytes
        raise ProtocolError(
            ErrorCode.INVALID_PAYLOAD, "JSON nested too deeply", task_id=env.readable_task_id
        ) from None
    return result


def encode(message: msgspec.Struct) -> bytes:
    """JSON bytes of any message or report."""
    return _ENCODER.encode(message)


def to_builtins(value: msgspec.Struct) -> dict[str, Any]:
    """A Struct as plain JSON-compatible data (for embedding a report in a result)."""
    out = msgspec.to_builtins(value)
    assert isinstance(out, dict)
    return out
