"""JSON Schema of every message, for peers written in other languages."""

from __future__ import annotations

from typing import Any

import msgspec

from protocols.messages import MESSAGE_TYPES, REPORT_TYPES


def json_schemas() -> dict[str, Any]:
    """One document: ``$defs`` for every Struct, plus which definition each schema tag names."""
    types: list[Any] = [*MESSAGE_TYPES.values(), *REPORT_TYPES]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    messages = {name.tag: schema for name, schema in zip(MESSAGE_TYPES, schemas, strict=False)}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "prometheus-backend swarm wire contract v1",
        "messages": messages,
        "reports": {
            cls.__name__: schema
            for cls, schema in zip(REPORT_TYPES, schemas[len(MESSAGE_TYPES) :], strict=True)
        },
        "$defs": components,
    }
