"""The wire contract's constrained scalars and enumerations, shared by messages and reports.

A constrained type rejects on decode what no honest sender produces: NaN, an absurd
magnitude, a time without its offset, an id that would break a subject or a key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

Finite = Annotated[float, Meta(ge=-1e15, le=1e15)]
"""A finite number of sane magnitude: NaN, ±Infinity and absurd values are rejected."""
NonNegative = Annotated[float, Meta(ge=0, le=1e15)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Timestamp = Annotated[datetime, Meta(tz=True)]
"""An RFC 3339 time with its offset (``2026-11-28T10:30:00Z``)."""
EpochSeconds = Annotated[float, Meta(ge=946_684_800, le=4_102_444_800)]
"""Unix seconds between 2000-01-01 and 2100-01-01: anything else is a unit mistake."""
TaskId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
Ident = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
Token = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
Text = Annotated[str, Meta(max_length=4096)]
Subject = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$", max_length=256)]
Window = Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,5}(s|m|h|d|w)$")]
"""A duration such as ``15m``, ``1h``, ``7d``."""
LabelKey = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
LabelValue = Annotated[str, Meta(max_length=256)]
Labels = Annotated[dict[LabelKey, LabelValue], Meta(max_length=16)]
Priority = Annotated[int, Meta(ge=-1000, le=1000)]

Direction = Literal["lower_is_better", "higher_is_better"]
Severity = Literal["critical", "high", "medium", "low"]
Trend = Literal["improving", "stable", "declining", "unknown"]
TaskStatus = Literal["completed", "failed", "rejected"]
Phase = Literal["Phase_1_Critical", "Phase_2_High", "Phase_3_Medium", "Phase_4_Low"]
RiskLevel = Literal["low", "medium", "high"]

SamplePoint = tuple[Timestamp | EpochSeconds, Finite]
"""One ``[timestamp, value]`` pair of inline data."""
InlineSeries = Annotated[list[SamplePoint], Meta(max_length=100_000)]
InlineMetrics = Annotated[dict[Name, Finite | InlineSeries], Meta(max_length=256)]


Source = Literal["measured", "prior", "calibrated", "assumed"]
"""Where a figure comes from: computed from samples, the playbook's prior, the prior
moved by verified outcomes, or a stated assumption (docs/learning.md, "Provenance")."""
