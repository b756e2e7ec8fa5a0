"""Counters of what the agent has done, shown in ``$SRV.STATS`` data and logs."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Counters:
    received: int = 0
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    """Tasks answered from their stored result (redelivery, duplicate publish)."""
    overloaded: int = 0
    redelivered: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
