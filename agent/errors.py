"""The agent's one exception hierarchy: each error carries the protocol's stable code."""

from __future__ import annotations

from protocols.errors import ErrorCode


class AgentError(Exception):
    """Base of every error the agent answers with; ``retryable`` tells tenacity whether to retry."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as it is, whatever its constructor takes: a strategy worker process sends
        the error back to the agent, which answers with its code."""
        return (_restored, (type(self), self.args, self.__dict__))


def _restored(
    cls: type[AgentError], args: tuple[object, ...], state: dict[str, object]
) -> AgentError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InsufficientData(AgentError):
    """Too few samples to say anything honest; ``counts`` says what was there."""

    code = ErrorCode.INSUFFICIENT_DATA

    def __init__(self, message: str, *, counts: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.counts = counts or {}


class InvalidParams(AgentError):
    """``params`` decoded but cannot be used (unknown window, unusable metric)."""

    code = ErrorCode.INVALID_PARAMS


class SourceUnavailable(AgentError):
    """A metric source failed (down, an error, a timeout); the message names the source."""

    code = ErrorCode.SOURCE_UNAVAILABLE
    retryable = True

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class Overloaded(AgentError):
    """The bounded work queue is full; the caller should retry later."""

    code = ErrorCode.OVERLOADED
    retryable = True


class PayloadTooLarge(AgentError):
    code = ErrorCode.PAYLOAD_TOO_LARGE

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
