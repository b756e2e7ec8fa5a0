"""``schema``: the JSON Schema of every message on the wire."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.cli.common import EXIT_OK, Subparsers, add_command


def cmd_schema(args: argparse.Namespace) -> int:
    """Write the JSON Schema of every message (stdout, or a file with -o)."""
    from protocols import json_schemas

    text = json.dumps(json_schemas(), indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "schema", cmd_schema)
    parser.add_argument("-o", "--output", help="file to write (default: stdout)")
