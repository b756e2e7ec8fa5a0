"""Stable error codes carried in ``task_result/v1.error.code`` and ``dead_letter/v1.error_code``."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """One code per way a task can go wrong; peers match on these strings, so never rename one."""

    INVALID_PAYLOAD = "invalid_payload"
    """Bytes that are not one UTF-8 JSON object."""
    SCHEMA_VIOLATION = "schema_violation"
    """Valid JSON that breaks the message schema (missing field, wrong type, NaN, out of range)."""
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    """A ``schema`` this agent does not speak (another message or an unknown major version)."""
    UNKNOWN_TASK_TYPE = "unknown_task_type"
    TASK_TYPE_MISMATCH = "task_type_mismatch"
    """The body's ``task_type`` disagrees with the subject's last token (the subject wins)."""
    DEADLINE_EXCEEDED = "deadline_exceeded"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INSUFFICIENT_DATA = "insufficient_data"
    INVALID_PARAMS = "invalid_params"
    """``params`` that decode but cannot be used (an unknown metric, a malformed window)."""
    NOT_IMPLEMENTED = "not_implemented"
    SOURCE_UNAVAILABLE = "source_unavailable"
    """A live metric source (Prometheus, the KPI store) could not give the data asked for."""
    OVERLOADED = "overloaded"
    MAX_DELIVERIES = "max_deliveries"
    """A durable task that could not be answered within its delivery budget."""
    INTERNAL_ERROR = "internal_error"
