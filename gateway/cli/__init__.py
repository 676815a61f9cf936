"""The `community-edge` command: one module per command, each adding its own subparser and handler.

run, demo, simulate, profiles check, tokens, rules test, silences, duty, households, links issue, api,
db upgrade, install-service, backup, restore; `--version`. Logging is set
up once by the command that runs (gateway.cli.process), which also turns signals into a clean stop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edge.errors import StoreVersionError
from gateway.cli import (
    api,
    backup,
    db,
    demo,
    duty,
    households,
    install_service,
    links,
    profiles,
    restore,
    rules,
    run,
    silences,
    simulate,
    tokens,
)
from gateway.settings import ConfigurationError
from gateway.version import version

__all__ = ["build_parser", "main", "version"]

# in the order `community-edge --help` lists them
_COMMANDS = (
    run,
    demo,
    simulate,
    profiles,
    tokens,
    rules,
    silences,
    duty,
    households,
    links,
    api,
    db,
    install_service,
    backup,
    restore,
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: each command module registers its subparser."""
    parser = argparse.ArgumentParser(
        prog="community-edge",
        description="Edge service for smart residential communities: MQTT devices in, "
        "readings and alerts out, nothing lost.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command's handler and return its exit code (2: a set-up mistake)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigurationError as exc:
        print(f"community-edge: configuration error: {exc}", file=sys.stderr)
        return 2
    except StoreVersionError as exc:  # a newer release's data: refused, nothing touched
        print(f"community-edge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
