"""What came in and why it is refused: the two values every inbound path passes around."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from protocols import ErrorCode


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as a transport received it."""

    subject: str
    data: bytes
    headers: Mapping[str, str] | None
    transport: Literal["jetstream", "rpc", "core"]
    message_ref: str | None = None
    """Where it came from (``stream:seq``), so a redelivered refusal is dead-lettered once."""


class Refusal(Exception):
    """Input the agent will not process: answered ``rejected`` and dead-lettered."""

    def __init__(self, code: ErrorCode, message: str, task_id: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.task_id = task_id


def token_or(value: str, fallback: str) -> str:
    """``value`` when it is a safe subject token, else ``fallback``."""
    return value if value and all(c.isalnum() or c in "_-" for c in value) else fallback
