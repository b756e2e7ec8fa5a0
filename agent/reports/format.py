"""How a report writes a number, a time, a share: one place, so Markdown and HTML agree."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from protocols.reports import Provenance
from protocols.types import Source

NONE = "—"
"""What an absent figure is shown as (a figure the result does not have, never a guess)."""
UNKNOWN_SOURCE = "source unknown"
"""What a figure whose result does not say where it comes from is labelled: never bare."""


def num(x: float | None, digits: int = 6) -> str:
    """A number to ``digits`` significant digits, thousands grouped from 10 000 up.

    ``None`` (or a number that is not finite) is ``—``; booleans are yes/no.
    """
    if x is None:
        return NONE
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if not math.isfinite(x):
        return NONE
    if 1e4 <= abs(x) < 1e15:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def pct(x: float | None, digits: int = 4) -> str:
    """A percentage: ``12.5 %``; absent → ``—``."""
    text = num(x, digits)
    return text if text == NONE else f"{text} %"


def share(x: float | None) -> str:
    """A fraction 0–1 as a percentage: 0.125 → ``12.5 %``."""
    return NONE if x is None or not math.isfinite(x) else pct(100.0 * x)


def ratio(x: float | None) -> str:
    """A miss ratio: ``1.21×``."""
    text = num(x, 4)
    return text if text == NONE else f"{text}×"


def signed(x: float | None, digits: int = 4) -> str:
    """A change with its sign: ``+24``, ``−0.5``."""
    if x is None or not math.isfinite(x):
        return NONE
    text = num(abs(x), digits)
    return f"+{text}" if x > 0 else (f"−{text}" if x < 0 else "0")


def when(value: datetime | str | float | None) -> str:
    """A time (a datetime, an RFC 3339 string or epoch seconds) as ``2026-11-28 10:30 UTC``."""
    moment = to_datetime(value)
    if moment is None:
        return NONE if value is None else str(value)
    seconds = ":%S" if moment.second else ""
    return moment.strftime(f"%Y-%m-%d %H:%M{seconds} UTC")


def to_datetime(value: datetime | str | float | None) -> datetime | None:
    """A UTC datetime from a datetime, an RFC 3339 string or epoch seconds; None when it is
    none of them (or out of range)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def text(x: object) -> str:
    """A value of a report as one line: numbers as ``num``, lists joined, absent as ``—``."""
    if x is None:
        return NONE
    if isinstance(x, bool | int | float):
        return num(x)
    if isinstance(x, list):
        return ", ".join(text(v) for v in x) if x else NONE
    if isinstance(x, dict):
        return "; ".join(f"{k}: {text(v)}" for k, v in x.items()) if x else NONE
    return " ".join(str(x).split())


def sourced(source: Source | None, basis: str | None = None) -> Provenance | None:
    """The ``Provenance`` of a figure that carries its own ``source`` and ``basis`` (a
    capacity figure, a projection, a scaling trigger); None when it names no source."""
    return None if source is None else Provenance(source=source, basis=basis or "")


def source_label(provenance: Provenance | None, *, basis: bool = False) -> str:
    """Where a figure comes from, in the words of docs/learning.md ("Provenance").

    ``measured``, ``prior (playbook)``, ``calibrated (12 verifications)`` or ``assumed``,
    followed by ``: <basis>`` when ``basis`` is asked for and given; no provenance is
    ``source unknown``.
    """
    if provenance is None:
        return UNKNOWN_SOURCE
    source, n = provenance.source, provenance.verifications
    if source == "prior":
        label = "prior (playbook)"
    elif source == "calibrated":
        label = (
            f"calibrated ({num(n)} verification{'' if n == 1 else 's'})"
            if n > 0
            else "calibrated (outcomes on other metrics)"
        )
    else:
        label = source
    said = provenance.basis
    return f"{label}: {text(said)}" if basis and said else label


def tagged(shown: str, provenance: Provenance | None, *, basis: bool = False) -> str:
    """A figure as shown with its source after it: ``25 % [prior (playbook)]``; an absent
    figure (``—``) stays as it is, there being nothing to source."""
    if shown.startswith(NONE):
        return shown
    return f"{shown} [{source_label(provenance, basis=basis)}]"
