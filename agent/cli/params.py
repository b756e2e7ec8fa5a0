"""A task's params from a file, as ``analyze`` and ``request`` take them."""

from __future__ import annotations

import msgspec

from agent.cli.common import UsageError, read_input
from protocols import KpiBatch, ProtocolError, TaskParams, TaskRequest, decode

_PARAMS = msgspec.json.Decoder(TaskParams)


def read_params(path: str) -> TaskParams:
    """A task's params from a file (``-``: stdin); see :func:`parse_params`."""
    return parse_params(read_input(path), path)


def parse_params(data: bytes, where: str) -> TaskParams:
    """A ``task_request/v1``'s params, a ``kpi_batch/v1``'s samples, or bare params.

    Bare params are the ``params`` object of a task: ``metrics`` (name → value or
    ``[[timestamp, value], …]``), ``samples``, ``targets``, ``window``. Anything else is a
    ``UsageError`` naming ``where``.
    """
    try:
        body = msgspec.json.decode(data)
        schema = str(body.get("schema", "")) if isinstance(body, dict) else ""
        if schema.startswith("task_request/"):
            return decode(TaskRequest, data).params
        if schema.startswith("kpi_batch/"):
            return TaskParams(samples=decode(KpiBatch, data).samples)
        return _PARAMS.decode(data)
    except ProtocolError as exc:
        raise UsageError(f"{where}: {exc.code}: {exc}") from None
    except msgspec.DecodeError as exc:  # ValidationError included
        raise UsageError(
            f"{where}: not task params, a task_request or a kpi_batch: {exc}"
        ) from None
