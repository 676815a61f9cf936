"""`community-edge restore DIR`: put a backup back into a data directory the agent is not using."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.process import Commands


def register(commands: Commands) -> None:
    """Add `restore DIR --data-dir D`."""
    restore = commands.add_parser(
        "restore", help="put a backup back (stop the agent first; replaced files are kept aside)"
    )
    restore.add_argument("directory", type=Path, help="a directory written by `backup`")
    restore.add_argument("--data-dir", type=Path, required=True, help="the gateway's data dir")
    restore.set_defaults(handler=put_back)


def put_back(args: argparse.Namespace) -> int:
    """Refuses (2) while an agent holds the data dir, or for an incomplete or damaged backup."""
    from gateway.backup import BackupError, restore
    from gateway.data_dir_lock import DataDirBusy, DataDirLock

    try:
        with DataDirLock(args.data_dir, holder="community-edge restore"):
            copied, aside = restore(args.directory, args.data_dir)
    except (BackupError, DataDirBusy, OSError) as exc:
        print(f"community-edge restore: {exc}", file=sys.stderr)
        return 2
    for item in copied:
        print(f"{item.name:16} {item.bytes:>14,} bytes")
    if aside is not None:
        print(f"the files it replaced are in {aside}")
    print(f"restored {args.directory} into {args.data_dir}: start the agent")
    return 0
