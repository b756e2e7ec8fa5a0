"""The wire contract as an AsyncAPI 3.0.0 document, generated from the tables of ``protocols/``.

Operations are the strategist's: ``receive`` for what it consumes, ``send`` for what it
publishes. Channel addresses come from the builders in :mod:`protocols.subjects` (called
with placeholder tokens), payloads from :func:`protocols.jsonschema.json_schemas`
(rewritten to JSON Schema draft-07, which AsyncAPI 3.0's default schema format extends),
parameter values from :class:`TaskType` and the ``Severity`` literal. No I/O.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import json
import textwrap
import typing
from typing import Any

import msgspec

from protocols import messages
from protocols.errors import ErrorCode
from protocols.jsonschema import json_schemas
from protocols.messages import MESSAGE_TYPES
from protocols.schemas import MAJOR_VERSION, SchemaName
from protocols.subjects import PARAMETERS, SUBJECTS, TRANSPORTS, SubjectSpec
from protocols.task_types import TaskType

ASYNCAPI_VERSION = "3.0.0"
DEFAULT_HOST = "localhost:4222"
CONTENT_TYPE = "application/json"

_PARAMETER_VALUES: dict[str, tuple[str, ...]] = {
    "task_type": tuple(TaskType),
    "severity": typing.get_args(messages.Severity),
}
_REPLY_CHANNELS = {"inbox": "rpcReply", "reply_to": "replyTo"}


# --- addresses ------------------------------------------------------------------


def parameters_of(spec: SubjectSpec) -> tuple[str, ...]:
    return tuple(inspect.signature(spec.build).parameters)


def address(spec: SubjectSpec) -> str:
    """The subject with ``{parameter}`` expressions, built by the table's builder itself."""
    names = parameters_of(spec)
    built = spec.build(*(f"__{name}__" for name in names))
    for name in names:
        built = built.replace(f"__{name}__", f"{{{name}}}")
    return built


# --- schemas --------------------------------------------------------------------


@functools.cache
def attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written under a class's attributes (Struct fields, enum members), by name.

    Read from the source of the class and of its bases in the same top-level package;
    empty when the source is not available.
    """
    docs: dict[str, str] = {}
    package = cls.__module__.partition(".")[0]
    for klass in reversed(cls.__mro__):
        if klass.__module__.partition(".")[0] != package:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, following in itertools.pairwise(body):
            if not (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                continue
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                docs[stmt.target.id] = inspect.cleandoc(following.value.value)
            elif (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ):
                docs[stmt.targets[0].id] = inspect.cleandoc(following.value.value)
    return docs


def _structs() -> dict[str, type[msgspec.Struct]]:
    return {
        cls.__name__: cls
        for cls in vars(messages).values()
        if isinstance(cls, type) and issubclass(cls, msgspec.Struct)
    }


def _describe_fields(defs: dict[str, Any]) -> None:
    """Give each property of a Struct's schema its field's docstring (msgspec omits them)."""
    structs = _structs()
    for name, schema in defs.items():
        cls = structs.get(name)
        if cls is None:
            continue
        docs = attribute_docs(cls)
        for field in msgspec.structs.fields(cls):
            prop = schema.get("properties", {}).get(field.encode_name)
            if prop is not None and field.name in docs and "description" not in prop:
                prop["description"] = docs[field.name]


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependencies")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = (
    "items",
    "additionalItems",
    "additionalProperties",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
)


def to_draft07(schema: Any, ref_prefix: str = "#/components/schemas/") -> Any:
    """A msgspec (draft 2020-12) schema as draft-07 with ``#/$defs/X`` refs under ``ref_prefix``.

    ``prefixItems`` + ``items: false`` become ``items: [...]`` + ``additionalItems: false``;
    a ``$ref`` with siblings (ignored beside ``$ref`` in draft-07) moves into ``allOf``;
    OpenAPI's ``discriminator`` object becomes the AsyncAPI schema's, the property name.
    Values of ``default``, ``enum``, ``const`` and ``examples`` are left as they are.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS:
            out[key] = {k: to_draft07(v, ref_prefix) for k, v in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [to_draft07(v, ref_prefix) for v in value]
        elif key in _SCHEMA_ONE:
            out[key] = to_draft07(value, ref_prefix)
        elif key == "$ref":
            out[key] = value.replace("#/$defs/", ref_prefix, 1)
        elif key == "discriminator" and isinstance(value, dict):
            out[key] = value["propertyName"]
        else:
            out[key] = value
    if "prefixItems" in out:
        rest = out.pop("items", True)
        out["items"] = out.pop("prefixItems")
        out["additionalItems"] = rest
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def _error_code_schema() -> dict[str, Any]:
    docs = attribute_docs(ErrorCode)
    return {
        "title": "ErrorCode",
        "description": inspect.cleandoc(ErrorCode.__doc__ or "Stable error codes."),
        "type": "string",
        "oneOf": [
            {"const": code.value, **({"description": docs[code.name]} if code.name in docs else {})}
            for code in ErrorCode
        ],
    }


def component_schemas() -> dict[str, Any]:
    """Every Struct's schema (messages, reports and what they hold), plus the code tables."""
    defs: dict[str, Any] = json_schemas()["$defs"]  # a new document per call: ours to change
    _describe_fields(defs)
    schemas = {name: to_draft07(schema) for name, schema in defs.items()}
    extra = {
        "ErrorCode": _error_code_schema(),
        "TaskType": {
            "title": "TaskType",
            "description": inspect.cleandoc(TaskType.__doc__ or "The task types."),
            "type": "string",
            "enum": [t.value for t in TaskType],
        },
    }
    clash = schemas.keys() & extra.keys()
    if clash:
        raise ValueError(f"schema names used twice: {sorted(clash)}")
    return schemas | extra


# --- the document ---------------------------------------------------------------


def _message(name: SchemaName) -> dict[str, Any]:
    cls = MESSAGE_TYPES[name]
    doc = inspect.getdoc(cls) if "__doc__" in vars(cls) and cls.__doc__ else None
    message: dict[str, Any] = {
        "name": name.tag,
        "title": cls.__name__,
        "contentType": CONTENT_TYPE,
        "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
    }
    if doc:
        message["summary"] = doc.splitlines()[0]
        message["description"] = doc
    return message


def _parameter(spec: SubjectSpec, name: str) -> dict[str, Any]:
    parameter: dict[str, Any] = {"description": PARAMETERS[name]}
    if name in _PARAMETER_VALUES:
        parameter["enum"] = list(_PARAMETER_VALUES[name])
    fields = [
        {f.encode_name for f in msgspec.structs.fields(MESSAGE_TYPES[m])} for m in spec.messages
    ]
    if all(name in f for f in fields):
        parameter["location"] = f"$message.payload#/{name}"
    return parameter


def _channel(spec: SubjectSpec) -> dict[str, Any]:
    description = f"{spec.peer} → agent" if spec.action == "receive" else f"agent → {spec.peer}"
    description += f"; {TRANSPORTS[spec.transport]}."
    if spec.msg_id:
        description += f" `Nats-Msg-Id`: `{spec.msg_id}`."
    channel: dict[str, Any] = {
        "address": address(spec),
        "summary": spec.summary,
        "description": description,
        "messages": {m.value: {"$ref": f"#/components/messages/{m.value}"} for m in spec.messages},
    }
    names = parameters_of(spec)
    if names:
        channel["parameters"] = {name: _parameter(spec, name) for name in names}
    channel["x-transport"] = spec.transport
    if spec.msg_id:
        channel["x-nats-msg-id"] = spec.msg_id
    return channel


def _reply_channels() -> dict[str, Any]:
    result = {SchemaName.TASK_RESULT.value: {"$ref": "#/components/messages/task_result"}}
    return {
        "rpcReply": {
            "address": None,
            "summary": "The requester's inbox: the reply subject of an rpc request.",
            "messages": result,
        },
        "replyTo": {
            "address": None,
            "summary": "The subject a task names in `reply_to`; core NATS.",
            "messages": result,
        },
    }


def _operation(spec: SubjectSpec) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": spec.action,
        "channel": {"$ref": f"#/channels/{spec.key}"},
        "summary": spec.summary,
        "messages": [{"$ref": f"#/channels/{spec.key}/messages/{m.value}"} for m in spec.messages],
    }
    if spec.reply is not None:
        channel = _REPLY_CHANNELS[spec.reply]
        reply: dict[str, Any] = {
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/task_result"}],
        }
        if spec.reply == "reply_to":
            reply["address"] = {
                "location": "$message.payload#/reply_to",
                "description": "The task's `reply_to`; without one, only `results` has it.",
            }
        operation["reply"] = reply
    return operation


def operation_id(spec: SubjectSpec) -> str:
    return spec.action + spec.key[0].upper() + spec.key[1:]


def asyncapi_document(host: str = DEFAULT_HOST) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the strategist's subjects and messages."""
    title = json_schemas()["title"]
    channels = {spec.key: _channel(spec) for spec in SUBJECTS} | _reply_channels()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": f"{MAJOR_VERSION}.0.0",
            "description": "The strategist of a backend-optimisation swarm on NATS. Operations "
            "are the strategist's own: `receive` what it consumes, `send` what it publishes. "
            'Every payload is one UTF-8 JSON object carrying `"schema": "<name>/v1"`; '
            "unknown fields are ignored.",
        },
        "servers": {"nats": {"host": host, "protocol": "nats", "description": "A NATS server."}},
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": {operation_id(spec): _operation(spec) for spec in SUBJECTS},
        "components": {
            "messages": {name.value: _message(name) for name in MESSAGE_TYPES},
            "schemas": component_schemas(),
        },
    }


def asyncapi_json(host: str = DEFAULT_HOST) -> str:
    """The document as the text ``prometheus-backend asyncapi`` prints and docs/ keeps."""
    return json.dumps(asyncapi_document(host), indent=2, ensure_ascii=False) + "\n"
