"""A task result as Markdown (GitHub-flavoured tables): for a ticket, a wiki or a chat."""

from __future__ import annotations

import re

from agent.reports.document import Block, Bullets, Paragraph, Subheading, Table
from agent.reports.sections import document
from protocols.messages import TaskResult

FLAG = "⚠"
"""Marks a flagged row (a metric missing its target, a firing burn rate, a worse shift…)."""

_SPECIAL = re.compile(r"([\\`*\[\]<>|])")


def escape(value: str) -> str:
    """Text safe inside Markdown: the characters that would start markup are escaped.

    Underscores are kept (metric names are full of them and CommonMark does not read an
    intraword ``_`` as emphasis); line breaks become spaces so a table row stays one line.
    """
    return _SPECIAL.sub(r"\\\1", " ".join(value.split()))


def _table(table: Table) -> str:
    if not table.rows:
        return "_(none)_"
    lines = [
        "| " + " | ".join(escape(c) for c in table.columns) + " |",
        "| "
        + " | ".join("---:" if i in table.numeric else "---" for i in range(len(table.columns)))
        + " |",
    ]
    for i, row in enumerate(table.rows):
        cells = [escape(c) for c in row]
        if i in table.flagged and cells:
            cells[0] = f"{FLAG} {cells[0]}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _block(block: Block) -> str:
    match block:
        case Paragraph(text=text):
            return escape(text)
        case Bullets(items=items):
            return "\n".join(f"- {escape(item)}" for item in items)
        case Subheading(text=text):
            return f"### {escape(text)}"
        case Table():
            return _table(block)
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - the union is closed


def render_markdown(result: TaskResult) -> str:
    """``result`` (a decoded ``task_result/v1``) as one Markdown document.

    Headline and verdict, then every section the result has: metrics against their
    targets, bottleneck ranking, recommendations, and for a plan the phased roadmap, ROI,
    timeline, risk, resources, capacity projection and learning report; root causes,
    change points, SLOs, request patterns, domain findings and data quality. A failed or
    rejected result shows its error; a section the result lacks is left out.
    """
    doc = document(result)
    parts = [f"# {escape(doc.title)}", "\n".join(f"- {escape(line)}" for line in doc.summary)]
    for section in doc.sections:
        parts.append(f"## {escape(section.title)}")
        parts += [_block(b) for b in section.blocks]
    return "\n\n".join(parts) + "\n"
