"""The default scaling triggers: one table the planning strategy and the monitor both read.

A leaf module (no imports from the agent) so that a strategy and the monitoring core can
share it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

SCALING_TRIGGERS: Mapping[str, float] = MappingProxyType(
    {
        "cpu_utilization": 75.0,
        "memory_utilization": 80.0,
        "api_response_time": 100.0,
    }
)
"""The specification's scaling triggers; configuration (``scaling_triggers``) overrides them."""
