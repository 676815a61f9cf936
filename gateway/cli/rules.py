"""`community-edge rules test`: replay a trace through profiles and rules on a virtual clock, and
print the alert events and notifications the gateway would produce.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.agent import TAIL_S
from edge.decode import ProfileRegistry, default_profile_dir
from gateway.cli.process import Commands
from gateway.settings import RulesSettings, load_settings


def register(commands: Commands) -> None:
    """Add `rules test TRACE`."""
    rules = commands.add_parser("rules", help="alert rules")
    actions = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    test = actions.add_parser(
        "test", help="replay a trace (JSON lines) through profiles and rules on a virtual clock"
    )
    test.add_argument("trace", type=Path, metavar="TRACE")
    test.add_argument("--profiles-dir", type=Path, help="default: the shipped profiles")
    test.add_argument("--rules-file", type=Path, help="default: the shipped community rules")
    test.add_argument("--devices", type=Path, help="device registry (default: open enrollment)")
    test.add_argument(
        "--config",
        type=Path,
        help="gateway settings (YAML): escalation policies and channel routes to apply",
    )
    test.add_argument(
        "--tick",
        type=float,
        default=RulesSettings.model_fields["tick_s"].default,  # as a gateway ticks
        help="virtual seconds between ticks",
    )
    test.add_argument(
        "--tail", type=float, default=TAIL_S, help="virtual seconds replayed after the last message"
    )
    test.set_defaults(handler=replay_trace)


def replay_trace(args: argparse.Namespace) -> int:
    """Replay and print; 2 when a file cannot be read or does not load."""
    from collections import Counter

    from edge.agent import read_trace, replay
    from edge.enrich import DeviceRegistry
    from edge.errors import EdgeError
    from edge.rules import default_rules_file, load_rules_file

    settings = load_settings(args.config, {})  # escalation policies and channel routes
    routes = [(c.name, c.route.route(settings.notifications.zone)) for c in settings.channels]
    try:
        profiles = ProfileRegistry.load(args.profiles_dir or default_profile_dir())
        community = load_rules_file(args.rules_file or default_rules_file(), profiles)
        registry = (
            DeviceRegistry.from_file(args.devices, profiles) if args.devices else DeviceRegistry()
        )
        messages = read_trace(args.trace)
    except (EdgeError, OSError) as exc:
        print(f"community-edge rules test: {exc}", file=sys.stderr)
        return 2
    result = replay(
        messages,
        profiles,
        registry,
        community,
        tick_s=args.tick,
        tail_s=args.tail,
        # as configured on the gateway; without --config the replay shows first notices only
        policies=settings.escalation.policies if args.config else (),
    )
    notified = 0
    for event in result.events:
        alert = event.alert
        place = f"{alert.community}/{alert.building}/{alert.device_id}"
        print(
            f"{event.at.astimezone(community.timezone):%Y-%m-%d %H:%M:%S%z}  {event.kind:<9} {alert.severity:<8} "
            f"{alert.rule:<16} {place:<36} {alert.summary}"
        )
        if event.notify:
            # whom it is for (the escalation tier) and which channels' routes take it
            channels = [name for name, route in routes if route.mismatch(event) is None]
            notified += 1
            print(
                f"    notify {event.tier or 'default audience'}"
                + (
                    f" via {', '.join(channels) or 'no channel (no route takes it)'}"
                    if routes
                    else ""
                )
            )
    for line in result.dead_letters:
        print(f"dead letter  {line}", file=sys.stderr)
    kinds = Counter(str(e.kind) for e in result.events)
    opened = Counter(e.alert.rule for e in result.events if e.kind == "opened")
    print(
        f"{result.messages} messages, {len(result.events)} alert events "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items())) or 'none'}), "
        f"{len(result.dead_letters)} dead letters, {notified} notifications"
    )
    if opened:
        print("opened: " + ", ".join(f"{rule} x{n}" for rule, n in sorted(opened.items())))
    return 0
