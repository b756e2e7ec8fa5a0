"""``prometheus-backend`` — the command line: one module per command, each with ``register``.

Exit codes (every command): 0 ok, 1 failure, 2 usage, file or configuration error,
3 NATS lost for good (``run``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from agent import __version__
from agent.cli.common import EXIT_CODES_HELP, EXIT_OK, EXIT_USAGE, UsageError

COMMANDS = (
    "run",
    "analyze",
    "sources",
    "request",
    "status",
    "report",
    "learning",
    "schema",
    "asyncapi",
    "config",
    "ping",
)
"""The commands in the order ``--help`` lists them; ``agent/cli/<name>.py`` defines each."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prometheus-backend",
        description="The strategist of a backend-optimisation swarm on NATS.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"agent.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"prometheus-backend {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `… | head`: the reader left; say nothing more (Python docs' idiom)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
