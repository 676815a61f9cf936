"""`community-edge profiles check`: validate device profile files, naming file, line and key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.decode import check_profiles, default_profile_dir
from gateway.cli.process import Commands


def register(commands: Commands) -> None:
    """Add `profiles check [DIRECTORY]`."""
    profiles = commands.add_parser("profiles", help="device profiles")
    actions = profiles.add_subparsers(dest="profiles_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate profile files")
    check.add_argument("directory", nargs="?", type=Path)
    check.set_defaults(handler=check_directory)


def check_directory(args: argparse.Namespace) -> int:
    """One `ok` line per good profile; every problem on stderr; 1 if there is any."""
    directory = args.directory or default_profile_dir()
    result = check_profiles(directory)
    for profile in result.profiles:
        print(
            f"ok  {profile.name:32} {profile.category:8} {len(profile.fields)} fields, "
            f"{len(profile.rules)} rules, {len(profile.examples)} examples"
        )
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.problems:
        count = len(result.problems)
        print(f"{count} problem{'s' * (count != 1)} in {directory}", file=sys.stderr)
        return 1
    print(f"{len(result.profiles)} profiles in {directory}: no problems")
    return 0
