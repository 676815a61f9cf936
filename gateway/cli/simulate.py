"""`community-edge simulate`: publish simulated device traffic (a community, one model, a scenario,
faults) to a broker, with a summary line at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from edge.decode import ProfileRegistry, default_profile_dir
from edge.errors import ProfileError
from edge.identifier import ID_RULE, id_problem, shown
from gateway.cli.process import Commands, setup_logging
from simulators.scenarios import SCENARIOS


def register(commands: Commands) -> None:
    """Add `simulate` and its flags."""
    sim = commands.add_parser("simulate", help="publish simulated device traffic to a broker")
    sim.add_argument(
        "--mqtt-url",
        help="mqtt[s]://[USER:PASSWORD@]HOST[:PORT] (required, unless only writing --registry-out)",
    )
    sim.add_argument(
        "--mqtt-ca-file", type=Path, help="CA to trust for mqtts:// (default: system's)"
    )
    sim.add_argument("--mqtt-cert-file", type=Path, help="client certificate for mqtts://")
    sim.add_argument("--mqtt-key-file", type=Path, help="the client certificate's key")
    traffic = sim.add_mutually_exclusive_group()
    traffic.add_argument("--scenario", choices=list(SCENARIOS))
    traffic.add_argument(
        "--profile",
        metavar="NAME",
        help="every device of this one model (e.g. zigbee-door-contact), not the mixed community; "
        "any profile in --profiles-dir, simulated from its field specs if it has no hand-written one",
    )
    traffic.add_argument(
        "--community-file",
        type=Path,
        metavar="FILE",
        help="a YAML community (buildings, units, devices per unit, floor and building) "
        "instead of --devices; see simulators/communities/",
    )
    sim.add_argument(
        "--profiles-dir", type=Path, help="device profiles (default: the shipped ones)"
    )
    sim.add_argument("--devices", type=int, default=100)
    sim.add_argument("--rate", type=float, default=100.0, help="messages per second")
    sim.add_argument("--duration", type=float, default=10.0, help="seconds")
    sim.add_argument(
        "--messages",
        type=int,
        metavar="N",
        help="send exactly N device messages (plus duplicate copies), instead of --duration",
    )
    sim.add_argument(
        "--events",
        choices=["routine", "realistic"],
        default="routine",
        help="routine: each device's ordinary traffic in turn (default); realistic: heartbeats, "
        "routine events and rare alarms at real-life rates, in compressed time",
    )
    sim.add_argument(
        "--faults",
        type=float,
        metavar="RATE",
        help="fraction of messages given a fault (e.g. 0.05)",
    )
    sim.add_argument(
        "--fault-kinds",
        metavar="KINDS",
        help="comma-separated: duplicate,out_of_order,skewed_time,malformed,truncated,oversized "
        "(default: all)",
    )
    sim.add_argument(
        "--registry-out",
        type=Path,
        metavar="FILE.csv",
        help="write the simulated devices' registry CSV (device_id,model,community,building,unit)",
    )
    sim.add_argument(
        "--community", default="demo", type=_identifier, help=f"the community's id: {ID_RULE}"
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--json", action="store_true", help="last line is a JSON summary")
    sim.set_defaults(handler=simulate)


def _identifier(value: str) -> str:
    """A community id the agent will take from the topic (else every message is a dead letter)."""
    problem = id_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{shown(value)} is not an identifier: {problem}")
    return value


def simulate(args: argparse.Namespace) -> int:
    """Publish; 2 for a set-up mistake (one line), 1 if any message failed, else 0."""
    from simulators.community import build_community
    from simulators.community_file import build_from_spec, load_community
    from simulators.faults import FaultInjector, FaultKind, parse_kinds
    from simulators.load import (
        LoadProgress,
        LoadResult,
        broker_address,
        run_scenario,
        run_traffic,
    )
    from simulators.registry_csv import write_registry

    setup_logging("WARNING", timestamps=False)
    show = sys.stderr.isatty() and not args.json

    def progress(p: LoadProgress) -> None:
        if show:
            sys.stderr.write(
                f"\r{p.elapsed:6.1f}s  sent {p.sent:>9,}  in flight {p.in_flight:>6,}  "
                f"failed {p.failed:,}  ({p.sent / max(p.elapsed, 1e-9):,.0f} msg/s)"
            )
            sys.stderr.flush()

    try:
        if args.mqtt_url is None and args.registry_out is None:
            raise ValueError("--mqtt-url is required (unless only writing --registry-out)")
        if args.scenario and args.registry_out is not None:
            raise ValueError("--registry-out writes a community's devices, not a scenario's")
        broker = None
        if args.mqtt_url is not None:
            broker = broker_address(
                args.mqtt_url,
                ca_file=args.mqtt_ca_file,
                cert_file=args.mqtt_cert_file,
                key_file=args.mqtt_key_file,
            )
        injector = None
        if args.faults is not None:
            kinds = parse_kinds(args.fault_kinds) if args.fault_kinds else list(FaultKind)
            injector = FaultInjector(args.faults, kinds, seed=args.seed)
        elif args.fault_kinds:
            raise ValueError("--fault-kinds needs --faults RATE")
        result: LoadResult
        if args.scenario:
            assert broker is not None  # checked above: a scenario has no --registry-out
            result = run_scenario(
                broker, args.scenario, args.community, seed=args.seed, progress=progress
            )
        else:
            profiles = ProfileRegistry.load(args.profiles_dir or default_profile_dir())
            if args.community_file is not None:
                spec = load_community(args.community_file, profiles)
                fleet = build_from_spec(spec, profiles, seed=args.seed)
            else:
                if args.devices < 1:
                    raise ValueError(f"devices must be >= 1, got {args.devices}")
                fleet = build_community(
                    args.devices,
                    args.community,
                    seed=args.seed,
                    model=args.profile,
                    profiles=profiles,
                )
            if args.registry_out is not None:
                written = write_registry(fleet, args.registry_out)
                print(f"wrote {written:,} devices to {args.registry_out}", file=sys.stderr)
                if broker is None:
                    return 0
            if broker is None:
                raise ValueError("--mqtt-url is required (unless only writing --registry-out)")
            result = run_traffic(
                broker,
                fleet,
                args.rate,
                args.duration,
                seed=args.seed,
                progress=progress,
                events=args.events,
                faults=injector,
                messages=args.messages,
            )
    except (ValueError, ConnectionError, LookupError, ProfileError, OSError) as exc:
        print(f"community-edge simulate: {exc}", file=sys.stderr)
        return 2
    if show:
        sys.stderr.write("\n")
    summary: dict[str, Any] = {
        "sent": result.sent,
        "failed": result.failed,
        "seconds": round(result.seconds, 3),
        "rate": round(result.rate, 1),
        "by_model": result.by_model,
    }
    if args.scenario:
        summary["scenario"] = args.scenario
    else:
        summary |= {
            "messages": result.messages,
            "by_event": result.by_event,
            "faults": result.faults,
        }
    if args.json:
        print(orjson.dumps(summary).decode())
    else:
        faulty = sum(result.faults.values())
        print(
            f"sent {result.sent:,} messages in {result.seconds:.1f} s "
            f"({result.rate:,.0f} msg/s), {result.failed:,} failed"
            + (f", {faulty:,} with faults" if faulty else "")
        )
    return 0 if result.failed == 0 else 1
