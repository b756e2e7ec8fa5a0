"""How a report writes a number, a time, a share: one place, so Markdown and HTML agree."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

NONE = "—"
"""What an absent figure is shown as (a figure the result does not have, never a guess)."""
UNKNOWN_SOURCE = "source unknown"
"""What a figure whose result does not say where it comes from is labelled: never bare."""


def num(x: Any, digits: int = 6) -> str:
    """A number to ``digits`` significant digits, thousands grouped from 10 000 up.

    ``None`` (or anything that is not a finite number) is ``—``; booleans are yes/no.
    """
    if x is None:
        return NONE
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if not isinstance(x, float):
        return str(x)
    if not math.isfinite(x):
        return NONE
    if 1e4 <= abs(x) < 1e15:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def pct(x: Any, digits: int = 4) -> str:
    """A percentage: ``12.5 %``; absent → ``—``."""
    text = num(x, digits)
    return text if text == NONE else f"{text} %"


def share(x: Any) -> str:
    """A fraction 0–1 as a percentage: 0.125 → ``12.5 %``."""
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return pct(100.0 * x)
    return NONE


def ratio(x: Any) -> str:
    """A miss ratio: ``1.21×``."""
    text = num(x, 4)
    return text if text == NONE else f"{text}×"


def signed(x: Any, digits: int = 4) -> str:
    """A change with its sign: ``+24``, ``−0.5``."""
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        return NONE
    text = num(abs(x), digits)
    return f"+{text}" if x > 0 else (f"−{text}" if x < 0 else "0")


def when(value: Any) -> str:
    """A wire time (RFC 3339 string) or epoch seconds as ``2026-11-28 10:30 UTC``."""
    moment = to_datetime(value)
    if moment is None:
        return NONE if value is None else str(value)
    seconds = ":%S" if moment.second else ""
    return moment.strftime(f"%Y-%m-%d %H:%M{seconds} UTC")


def to_datetime(value: Any) -> datetime | None:
    """A UTC datetime from an RFC 3339 string or epoch seconds; None when it is neither."""
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


def text(x: Any) -> str:
    """Any JSON value as one line: numbers as ``num``, lists joined, absent as ``—``."""
    if x is None:
        return NONE
    if isinstance(x, bool | int | float):
        return num(x)
    if isinstance(x, list):
        return ", ".join(text(v) for v in x) if x else NONE
    if isinstance(x, dict):
        return "; ".join(f"{k}: {text(v)}" for k, v in x.items()) if x else NONE
    return " ".join(str(x).split())


def source_label(provenance: Any, *, basis: bool = False) -> str:
    """Where a figure comes from, in the words of docs/learning.md ("Provenance").

    ``provenance`` is a ``Provenance`` as JSON (``source``, ``basis``, ``verifications``)
    or a figure object carrying the same keys: ``measured``, ``prior (playbook)``,
    ``calibrated (12 verifications)`` or ``assumed``, followed by ``: <basis>`` when
    ``basis`` is asked for and given; anything else is ``source unknown``.
    """
    p = provenance if isinstance(provenance, Mapping) else {}
    source = p.get("source")
    if source == "prior":
        label = "prior (playbook)"
    elif source == "calibrated":
        n = p.get("verifications")
        label = (
            f"calibrated ({num(n)} verification{'' if n == 1 else 's'})"
            if isinstance(n, int) and not isinstance(n, bool) and n > 0
            else "calibrated (outcomes on other metrics)"
        )
    elif source in ("measured", "assumed"):
        label = str(source)
    else:
        return UNKNOWN_SOURCE
    said = p.get("basis")
    return f"{label}: {text(said)}" if basis and said else label


def tagged(shown: str, provenance: Any, *, basis: bool = False) -> str:
    """A figure as shown with its source after it: ``25 % [prior (playbook)]``; an absent
    figure (``—``) stays as it is, there being nothing to source."""
    if shown.startswith(NONE):
        return shown
    return f"{shown} [{source_label(provenance, basis=basis)}]"
