"""The pure alerting core: assessments in, ``alert/v1`` drafts and the next state out.

- ``rules``: what one assessment says per episode key (breach, SLO burn, trend,
  anomaly, capacity runway), with no memory;
- ``episodes``: the memory — one alert per problem, re-notified on a rise, resolved
  after a quiet streak, related alerts grouped under their cause.

No NATS and no clock here: the runtime's monitor passes ``now`` and stores the state.
"""

from agent.monitoring.episodes import (
    AlertDraft,
    Episode,
    MonitorState,
    Totals,
    alert_id_for,
    evaluate,
    group,
)
from agent.monitoring.rules import (
    AlertKind,
    MonitorConfig,
    MonitorInputs,
    Signal,
    hours_to_breach,
    signals,
)

__all__ = [
    "AlertDraft",
    "AlertKind",
    "Episode",
    "MonitorConfig",
    "MonitorInputs",
    "MonitorState",
    "Signal",
    "Totals",
    "alert_id_for",
    "evaluate",
    "group",
    "hours_to_breach",
    "signals",
]
