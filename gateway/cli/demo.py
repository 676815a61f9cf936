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
        "demo",
        help="broker, agent, API and a simulated community, zero set-up",
        description="Start a private mosquitto, the gateway (agent, alert API, duty console) and "
        "a simulated community (阳光花园) whose devices report and raise SOS, smoke, fall and "
        "door alarms. It prints the console address, one-time sign-in links and the API token; "
        "Ctrl-C stops everything.",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        help="where alerts, readings and tokens are kept (default: a fresh temporary directory, "
        "removed when the demo stops; a directory given here is kept)",
    )
    demo.add_argument(
        "--api-port",
        type=int,
        default=api_port,
        help=f"default {api_port} (a free one if busy)",
    )
    demo.add_argument(
        "--rate",
        type=float,
        default=20.0,
        help="routine device messages per second across the community (default %(default)s)",
    )
    demo.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="WARNING",
        help="how much the gateway logs to stderr (default %(default)s)",
    )
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
