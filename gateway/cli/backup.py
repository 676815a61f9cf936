"""`community-edge backup DIR`: a consistent copy of the data directory while the agent runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gateway.cli.process import Commands


def register(commands: Commands) -> None:
    """Add `backup DIR --data-dir D`."""
    backup = commands.add_parser(
        "backup", help="copy every store of the data dir into DIR (safe while the agent runs)"
    )
    backup.add_argument(
        "directory", type=Path, help="where the copy goes: a new or empty directory"
    )
    backup.add_argument("--data-dir", type=Path, required=True, help="the gateway's data dir")
    backup.set_defaults(handler=back_up)


def back_up(args: argparse.Namespace) -> int:
    """One line per file copied, then the total; 2 when the backup cannot be made."""
    from gateway.backup import BackupError, backup

    started = time.monotonic()
    try:
        copied = backup(args.data_dir, args.directory)
    except (BackupError, OSError) as exc:
        print(f"community-edge backup: {exc}", file=sys.stderr)
        return 2
    for item in copied:
        print(f"{item.name:16} {item.bytes:>14,} bytes  {item.seconds:6.2f} s")
    total = sum(item.bytes for item in copied)
    print(
        f"backed up {args.data_dir} into {args.directory}: {len(copied)} files, {total:,} bytes "
        f"in {time.monotonic() - started:.2f} s"
    )
    return 0
