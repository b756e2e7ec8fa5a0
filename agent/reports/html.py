"""A task result as one self-contained HTML page: the Markdown report's tables plus charts.

Works offline: the CSS is inline and plotly.js (the copy bundled with the plotly package)
is embedded exactly once, with the first chart; the other charts reuse it. Every string
from the result is escaped. A chart the result has no data for is replaced by a sentence
saying why; a failed result is a page with its error and no script at all.
"""

from __future__ import annotations

import html

import plotly.io as pio
from plotly.offline import get_plotlyjs_version

from agent.reports.charts import Chart, charts
from agent.reports.document import Block, Bullets, Paragraph, Section, Subheading, Table
from agent.reports.sections import document
from protocols.messages import TaskResult

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
:root { color-scheme: light; --bad: #b2182b; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0; color: #222; background: #fff; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.6em; margin: 0 0 8px; }
h2 { font-size: 1.3em; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
ul.summary { list-style: none; padding: 0; margin: 0 0 16px; }
ul.summary li { margin: 2px 0; }
nav { margin: 8px 0 16px; font-size: 0.95em; }
nav a { margin-right: 12px; color: #2166ac; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 16px; width: 100%; font-size: 0.92em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.flag td { background: #fdecea; }
tr.flag td:first-child { border-left: 3px solid var(--bad); font-weight: 600; }
figure.chart { margin: 12px 0 20px; }
figure.chart figcaption { color: var(--muted); font-size: 0.9em; margin-top: 4px; }
p.absent { color: var(--muted); font-style: italic; border-left: 3px solid var(--line);
           padding-left: 8px; }
.error { color: var(--bad); font-weight: 600; }
footer { color: var(--muted); font-size: 0.85em; padding: 24px; }
@media print { nav { display: none; } h2 { break-before: auto; } figure { break-inside: avoid; } }
"""


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _table(table: Table) -> str:
    if not table.rows:
        return '<p class="absent">(none)</p>'
    head = "".join(
        f"<th{' class=num' if i in table.numeric else ''}>{_e(c)}</th>"
        for i, c in enumerate(table.columns)
    )
    body = []
    for r, row in enumerate(table.rows):
        cells = "".join(
            f"<td{' class=num' if i in table.numeric else ''}>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr{' class=flag' if r in table.flagged else ''}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _block(block: Block) -> str:
    match block:
        case Paragraph(text=text):
            return f"<p>{_e(text)}</p>"
        case Bullets(items=items):
            return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"
        case Subheading(text=text):
            return f"<h3>{_e(text)}</h3>"
        case Table():
            return _table(block)
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - the union is closed


class _Figures:
    """Renders charts to HTML, embedding plotly.js with the first figure only."""

    def __init__(self) -> None:
        self.drawn = 0

    def render(self, chart: Chart) -> str:
        title = f"<strong>{_e(chart.title)}.</strong>"
        if chart.figure is None:
            return f'<p class="absent" data-chart="{_e(chart.key)}">{title} {_e(chart.absent)}</p>'
        div = pio.to_html(
            chart.figure,
            include_plotlyjs=self.drawn == 0,
            full_html=False,
            config=PLOTLY_CONFIG,
            div_id=f"chart-{chart.key}",
            validate=False,
        )
        self.drawn += 1
        caption = f"<figcaption>{title} {_e(chart.caption)}</figcaption>"
        return f'<figure class="chart" data-chart="{_e(chart.key)}">{div}{caption}</figure>'


def _section(section: Section, chart_html: str) -> str:
    blocks = "".join(_block(b) for b in section.blocks)
    css = ' class="error"' if section.key == "error" else ""
    return (
        f'<section id="{_e(section.key)}"><h2{css}>{_e(section.title)}</h2>'
        f"{chart_html}{blocks}</section>"
    )


def render_html(result: TaskResult) -> str:
    """``result`` (a decoded ``task_result/v1``) as one self-contained HTML page.

    The sections and tables of ``render_markdown``, each chart in the section it belongs
    to: metrics against targets with trend lines, the bottleneck ranking, the phased
    roadmap and the capacity projection (``agent.reports.charts``).
    """
    doc = document(result)
    figures = charts(result.report) if result.report is not None else {}
    painter = _Figures()
    sections = []
    for section in doc.sections:
        chart = figures.get(section.key)
        sections.append(_section(section, painter.render(chart) if chart else ""))
    nav = "".join(f'<a href="#{_e(s.key)}">{_e(s.title)}</a>' for s in doc.sections)
    summary = "".join(f"<li>{_e(line)}</li>" for line in doc.summary)
    footer = f"{_e(result.schema or 'task_result')} rendered by prometheus-backend"
    if painter.drawn:
        footer += f"; charts by plotly.js {_e(get_plotlyjs_version())}, embedded in this page"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(doc.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(doc.title)}</h1><ul class=summary>{summary}</ul>"
        f"<nav>{nav}</nav></header>\n"
        f"<main>{''.join(sections)}</main>\n"
        f"<footer>{footer}.</footer>\n</body>\n</html>\n"
    )
