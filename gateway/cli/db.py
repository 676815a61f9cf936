"""`community-edge db upgrade`: migrate the central alert store to the newest schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli.api import STORE_HELP
from gateway.cli.process import Commands, setup_logging
from gateway.settings import Settings


def register(commands: Commands) -> None:
    """Add `db upgrade`."""
    db = commands.add_parser("db", help="the central alert store's schema")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade", help="migrate to the newest schema (`api` also does it at start)"
    )
    upgrade.add_argument("--store", help=STORE_HELP)
    upgrade.add_argument("--data-dir", type=Path, default=Settings.model_fields["data_dir"].default)
    upgrade.set_defaults(handler=upgrade_store)


def upgrade_store(args: argparse.Namespace) -> int:
    """Open (which migrates) and print the revision the store is at."""
    from gateway.central.database import current
    from gateway.central.server import default_store, open_store

    setup_logging("WARNING")
    store = open_store(args.store or default_store(args.data_dir))
    try:
        print(f"alert store at revision {current(store.engine)}")
    finally:
        store.close()
    return 0
