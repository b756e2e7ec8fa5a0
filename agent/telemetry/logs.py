"""Structured logs: JSON (orjson) when not on a terminal, every line with task id and trace id."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

import orjson

from agent.telemetry.tracing import current_trace_id

task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "task_id", "trace_id"}


class _ContextFilter(logging.Filter):
    """Stamp the task id and trace id of the running task on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.task_id = task_id_var.get()
        record.trace_id = current_trace_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra=`` fields are kept as fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("task_id", "trace_id"):
            value = getattr(record, key, None)
            if value:
                out[key] = value
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tid = getattr(record, "task_id", None)
        return f"{line} [task={tid}]" if tid else line


def setup_logging(level: str, fmt: Literal["auto", "json", "text"]) -> None:
    """Configure the root logger once, from the entry point."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("nats").setLevel(max(logging.WARNING, root.level))
