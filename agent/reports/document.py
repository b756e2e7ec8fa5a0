"""The model a report is read into: a document of sections of paragraphs, lists and tables.

Plain text only; ``markdown``, ``html`` and ``text`` render it, so the three say the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.reports.format import source_label
from protocols.reports import Provenance


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subheading:
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()
    """Columns of figures (right-aligned)."""
    flagged: frozenset[int] = frozenset()
    """Rows to highlight: a metric missing its target, a firing burn rate…"""


Block = Paragraph | Bullets | Subheading | Table


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    """Stable name (``metrics``, ``bottlenecks``, ``roadmap``, ``capacity``…): where charts go."""
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    summary: tuple[str, ...]
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


def table(
    columns: Iterable[str],
    rows: Iterable[Iterable[str]],
    numeric: Iterable[int] = (),
    flagged: Iterable[int] = (),
) -> Table:
    return Table(
        columns=tuple(columns),
        rows=tuple(tuple(r) for r in rows),
        numeric=frozenset(numeric),
        flagged=frozenset(flagged),
    )


def head(column: str, provenance: Provenance | None) -> str:
    """A column whose figures share one source, labelled in its header."""
    return f"{column} [{source_label(provenance)}]"


def legend(provenance: Mapping[str, Provenance], figures: Iterable[tuple[str, str]]) -> Bullets:
    """What backs each named figure of a section (``source unknown`` when it is not said)."""
    return Bullets(
        tuple(f"{label}: {source_label(provenance.get(key), basis=True)}" for key, label in figures)
    )


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
