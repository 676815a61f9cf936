"""`community-edge api`: the central alert API that many gateways post their alert events to."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli.process import LOG_LEVELS, Commands, run_until_signal, setup_logging

STORE_HELP = (
    "postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or ~/.pgpass) or "
    "sqlite:///PATH (default: sqlite:///DATA_DIR/central.db)"
)


def register(commands: Commands) -> None:
    """Add `api`; the central API has its own host and port, apart from a gateway's."""
    api = commands.add_parser(
        "api", help="the central alert API that many gateways post alert events to"
    )
    api.add_argument("--store", help=STORE_HELP)
    api.add_argument(
        "--data-dir", type=Path, required=True, help="tokens.db and audit.db (tokens create)"
    )
    api.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    api.add_argument("--port", type=int, default=8090, help="default 8090")
    api.add_argument("--log-level", choices=LOG_LEVELS, default="INFO")
    api.set_defaults(handler=serve_api)


def serve_api(args: argparse.Namespace) -> int:
    """Migrate the store, then serve until a signal."""
    from gateway.central.server import default_store, serve_central

    setup_logging(args.log_level)
    store = args.store or default_store(args.data_dir)

    def ready(url: str) -> None:
        print(f"community-edge central API: {url}  (docs: {url}/docs)", flush=True)

    run_until_signal(
        lambda stop: serve_central(store, args.data_dir, args.host, args.port, stop, ready)
    )
    return 0
