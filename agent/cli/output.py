"""How a command shows a task result: text for a terminal, JSON, Markdown or an HTML page."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import msgspec

from agent.cli.common import UsageError
from protocols import TaskResult

FORMATS = ("text", "json", "markdown", "html")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default), json (the task_result/v1 message), markdown, or html "
        "(one self-contained page with charts)",
    )
    parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.add_argument(
        "-o",
        "--output",
        help="file to write; html defaults to report-<task_id>.html in the current directory",
    )


def show_result(result: TaskResult, args: argparse.Namespace) -> None:
    """Render ``result`` as asked; a file written is named on stderr, stdout stays the data.

    ``json`` is the result as this agent writes it (the message the typed result encodes to).
    """
    fmt = "json" if args.json else args.format
    if fmt == "json":
        text = json.dumps(msgspec.to_builtins(result), indent=2, ensure_ascii=False)
    elif fmt == "markdown":
        from agent.reports.markdown import render_markdown

        text = render_markdown(result)
    elif fmt == "html":
        from agent.reports.html import render_html

        text = render_html(result)
    else:
        from agent.reports.text import render_text

        text = render_text(result)
    output = args.output or (f"report-{result.task_id}.html" if fmt == "html" else None)
    if output is None or output == "-":
        print(text)
        return
    try:
        Path(output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    print(f"wrote {output}", file=sys.stderr)
