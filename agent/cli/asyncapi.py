"""``asyncapi``: the AsyncAPI 3.0.0 document of the agent's subjects and messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli.common import EXIT_OK, Subparsers, UsageError, add_command


def cmd_asyncapi(args: argparse.Namespace) -> int:
    """Write the AsyncAPI 3.0.0 document of the wire contract (stdout, or a file with -o).

    Operations are the agent's own: receive what it consumes, send what it publishes.
    docs/asyncapi.json holds the same document for the default server.
    """
    from protocols.asyncapi import asyncapi_json

    text = asyncapi_json(args.host)
    if not args.output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def register(sub: Subparsers) -> None:
    from protocols.asyncapi import DEFAULT_HOST

    parser = add_command(sub, "asyncapi", cmd_asyncapi)
    parser.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"the NATS server's host:port in the document (default: {DEFAULT_HOST})",
    )
