"""Schema names and versions: each message says ``"schema": "<name>/v<major>"``."""

from __future__ import annotations

import enum
import re

MAJOR_VERSION = 1

_VERSION = re.compile(r"[1-9][0-9]{0,5}")


class SchemaName(enum.StrEnum):
    TASK_REQUEST = "task_request"
    TASK_RESULT = "task_result"
    OPTIMIZATION_PLAN = "optimization_plan"
    PERFORMANCE_BASELINE = "performance_baseline"
    VERIFICATION_RESULT = "verification_result"
    IMPLEMENTATION_UPDATE = "implementation_update"
    STRATEGIC_DIRECTIVE = "strategic_directive"
    KPI_BATCH = "kpi_batch"
    ALERT = "alert"
    DEAD_LETTER = "dead_letter"

    @property
    def tag(self) -> str:
        """The value of the ``schema`` field, e.g. ``task_request/v1``."""
        return f"{self.value}/v{MAJOR_VERSION}"


def split_schema(value: str) -> tuple[str, int] | None:
    """``"task_request/v1"`` → ``("task_request", 1)``; None when it is not of that form."""
    name, sep, version = value.rpartition("/v")
    # ASCII digits only, no leading zero: str.isdigit() lets "²" (int() then raises) and "١" through
    if not sep or not name or not _VERSION.fullmatch(version):
        return None
    return name, int(version)
