"""`community-edge demo`: a private mosquitto, the agent, the API and a simulated community."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.process import LOG_LEVELS, Commands, run_until_signal, setup_logging
from gateway.settings import ApiSettings


def register(commands: Commands) -> None:
    """Add `demo` and its flags."""
    api_port: int = ApiSettings.model_fields["port"].default
    demo = commands.add_parser(
        "demo", help="broker, agent, API and a simulated community, zero set-up"
    )
    demo.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    demo.add_argument(
        "--api-port",
        type=int,
        default=api_port,
        help=f"default {api_port} (a free one if busy)",
    )
    demo.add_argument("--rate", type=float, default=20.0, help="routine messages per second")
    demo.add_argument("--log-level", choices=LOG_LEVELS, default="WARNING")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo until a signal; 2, in one line, when mosquitto is missing or will not start."""
    from gateway.demo import BrokerUnavailable, run_demo

    setup_logging(args.log_level)
    try:
        run_until_signal(lambda stop: run_demo(stop, args.data_dir, args.api_port, args.rate))
    except BrokerUnavailable as exc:
        print(f"community-edge demo: {exc}", file=sys.stderr)
        return 2
    return 0
