"""``config``: the effective configuration, as the agent would see it."""

from __future__ import annotations

import argparse

from agent.cli.common import EXIT_OK, Subparsers, add_command, load_settings, print_json


def cmd_config(args: argparse.Namespace) -> int:
    """Print the effective configuration as JSON, secrets masked.

    Reads the environment (PROMETHEUS_BACKEND_*, NATS_URL) and the config file; an invalid
    value exits 2 naming the setting. docs/configuration.md lists every setting.
    """
    print_json(load_settings().masked())
    return EXIT_OK


def register(sub: Subparsers) -> None:
    add_command(sub, "config", cmd_config)
