"""The `community-edge` command: run, demo, simulate, profiles check, rules test, silences, tokens,
api, db. Logging and signals live here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson

from edge.decode import ProfileRegistry, check_profiles, default_profile_dir
from edge.errors import ProfileError
from gateway.settings import ConfigurationError, load_settings
from gateway.wiring import Gateway, serve

_log = logging.getLogger("community_edge")
_ROLES = ("duty_officer", "property_manager", "platform", "admin", "edge_agent")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("uvicorn", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run `main(stop)`; SIGINT and SIGTERM set `stop` so everything shuts down in order."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config,
        {
            "mqtt.url": args.mqtt_url,
            "mqtt.client_id": args.client_id,
            "tsdb.url": args.tsdb_url,
            "tsdb.org": args.tsdb_org,
            "tsdb.bucket": args.tsdb_bucket,
            "tsdb.token": args.tsdb_token,
            "api.host": args.api_host,
            "api.port": args.api_port,
            "api.token": args.api_token,
            "data_dir": args.data_dir,
            "devices_file": args.devices,
            "rules_file": args.rules_file,
            "profiles_dir": args.profiles_dir,
            "log_level": args.log_level,
        },
    )
    _setup_logging(settings.log_level)

    def ready(gateway: Gateway, url: str) -> None:
        print(f"community-edge API: {url}  (docs: {url}/docs)", flush=True)
        print(f"API token: {gateway.token}  (from {gateway.token_source})", flush=True)

    run_until_signal(lambda stop: serve(settings, stop, ready))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    _setup_logging(args.log_level)
    run_until_signal(
        lambda stop: run_demo(stop, args.data_dir, args.api_port, args.rate, args.embedded_broker)
    )
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.community import build_community
    from simulators.community_file import build_from_spec, load_community
    from simulators.faults import FaultInjector, FaultKind, parse_kinds
    from simulators.load import LoadProgress, LoadResult, run_scenario, run_traffic
    from simulators.registry_csv import write_registry

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
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
        injector = None
        if args.faults is not None:
            kinds = parse_kinds(args.fault_kinds) if args.fault_kinds else list(FaultKind)
            injector = FaultInjector(args.faults, kinds, seed=args.seed)
        elif args.fault_kinds:
            raise ValueError("--fault-kinds needs --faults RATE")
        result: LoadResult
        if args.scenario:
            result = run_scenario(
                args.mqtt_url, args.scenario, args.community, seed=args.seed, progress=progress
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
                if args.mqtt_url is None:
                    return 0
            result = run_traffic(
                args.mqtt_url,
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


def _cmd_profiles_check(args: argparse.Namespace) -> int:
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


def _cmd_tokens(args: argparse.Namespace) -> int:
    from gateway.audit import open_audit
    from gateway.tokens import TokenError, open_tokens

    try:
        store = open_tokens(args.data_dir)
    except TokenError as exc:
        print(f"community-edge tokens: {exc}", file=sys.stderr)
        return 2
    audit = open_audit(args.data_dir)
    try:
        if args.tokens_command == "create":
            token_id, token = store.create(args.role, args.community, args.name)
            audit.record(
                actor="cli",
                role="admin",
                community=None,
                object=f"token:{token_id}",
                action="token_create",
                result="ok",
                request_id="cli",
            )
            print(f"token {token_id}: role {args.role}, communities {', '.join(args.community)}")
            print("shown once: keep it now (only its hash is stored)")
            print(token)
        elif args.tokens_command == "list":
            for info in store.list():
                state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
                print(
                    f"{info.id}  {info.role.value:16} {','.join(info.communities):24} "
                    f"{info.created_at:%Y-%m-%d %H:%M}  {state}  {info.name or ''}".rstrip()
                )
        else:
            store.revoke(args.token_id)
            audit.record(
                actor="cli",
                role="admin",
                community=None,
                object=f"token:{args.token_id}",
                action="token_revoke",
                result="ok",
                request_id="cli",
            )
            print(f"token {args.token_id} revoked")
    except TokenError as exc:
        print(f"community-edge tokens: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
        audit.close()
    return 0


def _cmd_rules_test(args: argparse.Namespace) -> int:
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


def _cmd_silences(args: argparse.Namespace) -> int:
    """`silences add|list|expire`: through the alert API of a running agent."""
    import httpx

    headers = {"Authorization": f"Bearer {args.token}"}
    base = args.api.rstrip("/")
    try:
        if args.silences_command == "add":
            body: dict[str, Any] = {
                key: value
                for key, value in {
                    "community": args.community,
                    "building": args.building,
                    "device_id": args.device,
                    "rule": args.rule,
                    "severity": args.severity,
                    "starts_at": args.starts,
                    "ends_at": args.ends,
                    "reason": args.reason,
                }.items()
                if value is not None
            }
            if args.every is not None:
                body["recurrence"] = {
                    "every": args.every,
                    "start": args.at,
                    "duration_s": args.duration_s,
                    "timezone": args.timezone,
                    **({"day": args.day} if args.day is not None else {}),
                }
            response = httpx.post(f"{base}/v1/silences", json=body, headers=headers, timeout=10)
        elif args.silences_command == "list":
            params = {"all": "true"} if args.all else {}
            response = httpx.get(f"{base}/v1/silences", params=params, headers=headers, timeout=10)
        else:
            response = httpx.delete(f"{base}/v1/silences/{args.id}", headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        print(f"community-edge silences: cannot reach {base}: {exc}", file=sys.stderr)
        return 2
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        print(f"community-edge silences: {response.status_code}: {message}", file=sys.stderr)
        return 1
    data = response.json()
    for silence in data["items"] if args.silences_command == "list" else [data]:
        if args.json:
            print(orjson.dumps(silence).decode())
            continue
        match = " ".join(
            f"{k}={silence[k]}"
            for k in ("community", "building", "device_id", "rule", "severity")
            if silence.get(k)
        )
        window = silence["recurrence"] and " every {every} {start}".format(**silence["recurrence"])
        print(
            f"{silence['id']}  {match}  {silence['starts_at']} .. {silence['ends_at'] or 'open'}"
            f"{window or ''}  by {silence['created_by']}: {silence['reason']}"
            + (f"  (expired {silence['expired_at']})" if silence.get("expired_at") else "")
        )
    return 0


def _cmd_api(args: argparse.Namespace) -> int:
    from gateway.central.server import default_store, serve_central

    _setup_logging(args.log_level)
    store = args.store or default_store(args.data_dir)

    def ready(url: str) -> None:
        print(f"community-edge central API: {url}  (docs: {url}/docs)", flush=True)

    run_until_signal(
        lambda stop: serve_central(store, args.data_dir, args.host, args.port, stop, ready)
    )
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from gateway.central.server import default_store, open_store

    _setup_logging("WARNING")
    store = open_store(args.store or default_store(args.data_dir))
    try:
        from gateway.central.database import current

        print(f"alert store at revision {current(store.engine)}")
    finally:
        store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="community-edge",
        description="Edge service for smart residential communities: MQTT devices in, "
        "readings and alerts out, nothing lost.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    levels = ["DEBUG", "INFO", "WARNING", "ERROR"]

    run = sub.add_parser("run", help="run the agent and the alert API")
    run.add_argument("--config", type=Path, help="YAML settings file (flags override it)")
    run.add_argument("--mqtt-url", help="broker, mqtt://HOST:PORT (default mqtt://127.0.0.1:1883)")
    run.add_argument("--client-id", help="stable MQTT client id of this gateway")
    run.add_argument(
        "--tsdb-url", help="time-series server, http://HOST:PORT (default: embedded store)"
    )
    run.add_argument("--tsdb-org")
    run.add_argument("--tsdb-bucket")
    run.add_argument("--tsdb-token")
    run.add_argument("--api-host", help="default 127.0.0.1")
    run.add_argument("--api-port", type=int, help="default 8080")
    run.add_argument(
        "--api-token", help="bearer token (default: random, kept in DATA_DIR/api-token)"
    )
    run.add_argument(
        "--data-dir", type=Path, help="outbox, alerts, embedded store (default ./data)"
    )
    run.add_argument(
        "--devices", type=Path, help="device registry, YAML or CSV (default: open enrollment)"
    )
    run.add_argument(
        "--profiles-dir", type=Path, help="device profiles (default: the shipped ones)"
    )
    run.add_argument("--rules-file", type=Path, help="community rules (default: the shipped ones)")
    run.add_argument("--log-level", choices=levels)
    run.set_defaults(handler=_cmd_run)

    demo = sub.add_parser("demo", help="broker, agent, API and a simulated community, zero set-up")
    demo.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    demo.add_argument(
        "--api-port", type=int, default=8080, help="default 8080 (a free one if busy)"
    )
    demo.add_argument("--rate", type=float, default=20.0, help="routine messages per second")
    demo.add_argument("--log-level", choices=levels, default="WARNING")
    demo.add_argument(
        "--embedded-broker",
        action="store_true",
        help="use the embedded Python broker even when mosquitto is installed",
    )
    demo.set_defaults(handler=_cmd_demo)

    sim = sub.add_parser("simulate", help="publish simulated device traffic to a broker")
    sim.add_argument(
        "--mqtt-url", help="mqtt://HOST:PORT (required, unless only writing --registry-out)"
    )
    traffic = sim.add_mutually_exclusive_group()
    traffic.add_argument("--scenario", choices=["smoke-alarm", "elder-sos", "fall", "door-forced"])
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
    sim.add_argument("--community", default="demo")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--json", action="store_true", help="last line is a JSON summary")
    sim.set_defaults(handler=_cmd_simulate)

    profiles = sub.add_parser("profiles", help="device profiles")
    psub = profiles.add_subparsers(dest="profiles_command", required=True, metavar="ACTION")
    check = psub.add_parser("check", help="validate profile files")
    check.add_argument("directory", nargs="?", type=Path)
    check.set_defaults(handler=_cmd_profiles_check)

    tokens = sub.add_parser("tokens", help="API tokens: a role and the communities each may see")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = tsub.add_parser("create", help="create a token (printed once, as the last line)")
    create.add_argument("--role", required=True, help=", ".join(_ROLES))
    create.add_argument(
        "--community",
        action="append",
        required=True,
        help="a community the token may see (repeat; '*' for all: admin and platform only)",
    )
    create.add_argument("--name", help="who or what holds it (shown by `tokens list`)")
    listing = tsub.add_parser("list", help="tokens with role, communities and state")
    revoke = tsub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id")
    for action in (create, listing, revoke):
        action.add_argument("--data-dir", type=Path, required=True, help="the gateway's data dir")
        action.set_defaults(handler=_cmd_tokens)

    rules = sub.add_parser("rules", help="alert rules")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rtest = rsub.add_parser(
        "test", help="replay a trace (JSON lines) through profiles and rules on a virtual clock"
    )
    rtest.add_argument("trace", type=Path, metavar="TRACE")
    rtest.add_argument("--profiles-dir", type=Path, help="default: the shipped profiles")
    rtest.add_argument("--rules-file", type=Path, help="default: the shipped community rules")
    rtest.add_argument("--devices", type=Path, help="device registry (default: open enrollment)")
    rtest.add_argument(
        "--config",
        type=Path,
        help="gateway settings (YAML): escalation policies and channel routes to apply",
    )
    rtest.add_argument("--tick", type=float, default=1.0, help="virtual seconds between ticks")
    rtest.add_argument(
        "--tail", type=float, default=300.0, help="virtual seconds replayed after the last message"
    )
    rtest.set_defaults(handler=_cmd_rules_test)
    silences = sub.add_parser("silences", help="silences of a running agent, through its API")
    ssub = silences.add_subparsers(dest="silences_command", required=True, metavar="ACTION")
    for name, text in (
        ("add", "silence matching alerts"),
        ("list", "list silences"),
        ("expire", "end a silence now"),
    ):
        action = ssub.add_parser(name, help=text)
        action.add_argument("--api", required=True, help="the agent's API, http://HOST:PORT")
        action.add_argument("--token", required=True, help="the API's bearer token")
        action.add_argument("--json", action="store_true", help="one JSON object per silence")
        action.set_defaults(handler=_cmd_silences)
        if name == "list":
            action.add_argument("--all", action="store_true", help="also silences that are over")
        elif name == "expire":
            action.add_argument("id")
        else:
            action.add_argument("--community")
            action.add_argument("--building")
            action.add_argument("--device", help="device id")
            action.add_argument("--rule", help="rule id")
            action.add_argument(
                "--severity", choices=["critical", "major", "minor", "warning", "info"]
            )
            action.add_argument("--starts", help="ISO time with zone (default: now)")
            action.add_argument("--ends", help="ISO time with zone (needed unless --every)")
            action.add_argument("--reason", required=True)
            action.add_argument("--every", choices=["day", "week", "month"], help="recurring")
            action.add_argument("--day", type=int, help="0-6 (Monday 0) for week, 1-31 for month")
            action.add_argument("--at", default="00:00", help="window start, HH:MM local")
            action.add_argument("--duration-s", type=int, default=3600, help="window length")
            action.add_argument("--timezone", default="UTC", help="e.g. Asia/Shanghai")
    store_help = (
        "postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or ~/.pgpass) or "
        "sqlite:///PATH (default: sqlite:///DATA_DIR/central.db)"
    )
    api = sub.add_parser(
        "api", help="the central alert API that many gateways post alert events to"
    )
    api.add_argument("--store", help=store_help)
    api.add_argument(
        "--data-dir", type=Path, required=True, help="tokens.db and audit.db (tokens create)"
    )
    api.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    api.add_argument("--port", type=int, default=8090, help="default 8090")
    api.add_argument("--log-level", choices=levels, default="INFO")
    api.set_defaults(handler=_cmd_api)

    db = sub.add_parser("db", help="the central alert store's schema")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_upgrade = dbsub.add_parser(
        "upgrade", help="migrate to the newest schema (`api` also does it at start)"
    )
    db_upgrade.add_argument("--store", help=store_help)
    db_upgrade.add_argument("--data-dir", type=Path, default=Path("data"))
    db_upgrade.set_defaults(handler=_cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigurationError as exc:
        print(f"community-edge: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
