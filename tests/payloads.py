"""Task payloads as a peer would write them: plain dicts and JSON bytes, no project code."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def series(values: list[float], step_s: float = 300.0, start: datetime = T0) -> list[list[Any]]:
    return [[iso(start + timedelta(seconds=i * step_s)), v] for i, v in enumerate(values)]


def small_api_metrics() -> dict[str, Any]:
    """A small data set whose figures the tests compute by hand."""
    return {
        # 12 points 5 min apart, strictly rising (100, 102 … 122): a significant worsening trend;
        # p95 (linear) = 120 + 0.45 * 2 = 120.9 → ratio 1.209 (medium),
        # urgency 1.209 * 50 = 60.45, × 1.5 for the declining trend = 90.675 → 91
        "api_response_time": series([100 + 2 * i for i in range(12)]),
        "api_availability": 99.5,  # bounded higher-is-better: (100-99.5)/(100-99.9) = 5.0
        "error_rate": 0.5,  # meets its 1 % target: ratio 0.5
    }


def task(task_type: str = "api_optimization", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema": "task_request/v1",
        "task_id": f"t-{uuid.uuid4().hex[:12]}",
        "task_type": task_type,
        "issued_at": iso(datetime.now(UTC)),
        "issuer": "helios",
        "params": {"window": "1h", "metrics": small_api_metrics()},
    }
    body.update(fields)
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
