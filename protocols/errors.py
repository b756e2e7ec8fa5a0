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
    """A task type this agent has no strategy for."""
    TASK_TYPE_MISMATCH = "task_type_mismatch"
    """The body's ``task_type`` disagrees with the subject's last token (the subject wins)."""
    DEADLINE_EXCEEDED = "deadline_exceeded"
    """The task's ``deadline`` passed before processing started."""
    PAYLOAD_TOO_LARGE = "payload_too_large"
    """A message over ``max_payload_bytes``."""
    INSUFFICIENT_DATA = "insufficient_data"
    """Too few samples in the window for any metric the task type judges."""
    INVALID_PARAMS = "invalid_params"
    """``params`` that decode but cannot be used (an unknown metric, a malformed window)."""
    NOT_IMPLEMENTED = "not_implemented"
    """Reserved: a part of the contract this agent version does not serve."""
    SOURCE_UNAVAILABLE = "source_unavailable"
    """A live metric source (Prometheus, the KPI store) could not give the data asked for."""
    OVERLOADED = "overloaded"
    """Every worker busy and the rpc queue full: retry later with the same task id."""
    MAX_DELIVERIES = "max_deliveries"
    """A durable task that could not be answered within its delivery budget."""
    INTERNAL_ERROR = "internal_error"
    """A bug in the agent; the input is dead-lettered for a report."""
