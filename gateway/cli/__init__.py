"""The `community-edge` command: one module per command, each adding its own subparser and handler.

run, demo, simulate, profiles check, tokens, rules test, silences, api, db upgrade,
install-service; `--version`. Logging is set
up once by the command that runs (gateway.cli.process), which also turns signals into a clean stop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from gateway.cli import (
    api,
    db,
    demo,
    install_service,
    profiles,
    rules,
    run,
    silences,
    simulate,
    tokens,
)
from gateway.settings import ConfigurationError

__all__ = ["build_parser", "main", "version"]

# in the order `community-edge --help` lists them
_COMMANDS = (run, demo, simulate, profiles, tokens, rules, silences, api, db, install_service)


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


def version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written)."""
    try:
        return metadata.version("community-edge")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command's handler and return its exit code (2: a set-up mistake)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigurationError as exc:
        print(f"community-edge: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
