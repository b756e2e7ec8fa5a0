"""What every command shares: exit codes, loading the settings, printing data."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from pydantic import ValidationError
from pydantic_settings import SettingsError

from agent.config import Settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NATS_LOST = 0, 1, 2, 3
"""0 ok; 1 the command ran and failed (no answer, failed task); 2 bad arguments, file or
configuration; 3 the agent lost NATS for good. Documented in ``--help`` and the README."""

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 failure (no answer, failed task), 2 usage, file or configuration "
    "error, 3 NATS connection lost for good."
)


class UsageError(Exception):
    """Bad arguments or an unreadable input file: the command exits 2 with this message."""


def load_settings(**overrides: Any) -> Settings:
    """The settings from env and config file; an invalid one exits 2 with pydantic's message."""
    try:
        settings = Settings()
    # SettingsError: an env value that is not valid JSON; TOMLDecodeError: a broken config file
    except (ValidationError, SettingsError, tomllib.TOMLDecodeError) as exc:
        print(f"invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    return settings.model_copy(update=overrides) if overrides else settings


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``register`` receives: ``build_parser``'s sub-command table."""


def add_command(
    sub: Subparsers, name: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """A sub-command whose help is ``func``'s docstring (first line in the list) and exit codes."""
    doc = inspect.getdoc(func) or name
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=doc.splitlines()[0],
        description=doc,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    return parser


def add_task_type(parser: argparse.ArgumentParser) -> None:
    """The TASK_TYPE argument of the commands that run a task."""
    from protocols import TaskType

    names = [t.value for t in TaskType]
    parser.add_argument(
        "task_type", choices=names, metavar="TASK_TYPE", help="one of: " + ", ".join(names)
    )


def read_input(path: str) -> bytes:
    """A file's bytes (``-``: stdin); one that cannot be read is a ``UsageError``."""
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
