"""`community-edge run`: the agent and the alert API, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gateway.cli.process import LOG_LEVELS, Commands, run_until_signal, setup_logging
from gateway.settings import (
    ApiSettings,
    MqttSettings,
    Settings,
    TsdbSettings,
    load_settings,
)
from gateway.shard_link import write_api_url
from gateway.shards import Supervisor, child_env, plan
from gateway.wiring import Gateway, api_token, serve

_log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    """Add `run` and its flags; each flag overrides the setting of the same name."""
    data_dir: Path = Settings.model_fields["data_dir"].default
    run = commands.add_parser(
        "run",
        help="run the agent and the alert API",
        description="Run the gateway: subscribe to the broker, decode and check device messages, "
        "raise alerts and send them on, and serve the alert API and the duty console. Settings "
        "come from flags, then --config FILE, then COMMUNITY_EDGE_* environment variables "
        "(COMMUNITY_EDGE_MQTT__URL, ...), then the defaults shown here.",
    )
    run.add_argument("--config", type=Path, help="YAML settings file (flags override it)")
    run.add_argument(
        "--mqtt-url",
        help="broker, mqtt://[USER:PASSWORD@]HOST:PORT, or mqtts:// for TLS (port 8883 by "
        f"default; percent-encode special characters in the password) "
        f"(default {MqttSettings.model_fields['url'].default})",
    )
    run.add_argument(
        "--mqtt-protocol",
        choices=["5", "3.1.1"],
        help=f"MQTT version (default {MqttSettings.model_fields['protocol'].default})",
    )
    run.add_argument("--client-id", help="stable MQTT client id of this gateway")
    run.add_argument(
        "--tsdb-url", help="time-series server, http://HOST:PORT (default: embedded store)"
    )
    run.add_argument(
        "--tsdb-org",
        help="InfluxDB 2 organisation of the time-series server "
        f"(default {TsdbSettings.model_fields['org'].default})",
    )
    run.add_argument(
        "--tsdb-bucket",
        help="bucket (InfluxDB 2) or database the readings go to "
        f"(default {TsdbSettings.model_fields['bucket'].default})",
    )
    run.add_argument(
        "--tsdb-token",
        help="the time-series server's API token (default none; better in "
        "COMMUNITY_EDGE_TSDB__TOKEN, which `ps` does not show)",
    )
    run.add_argument("--api-host", help=f"default {ApiSettings.model_fields['host'].default}")
    run.add_argument(
        "--api-port", type=int, help=f"default {ApiSettings.model_fields['port'].default}"
    )
    run.add_argument(
        "--api-token", help="bearer token (default: random, kept in DATA_DIR/api-token)"
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        help=f"outbox, alerts, embedded store (default {_relative(data_dir)})",
    )
    run.add_argument(
        "--devices", type=Path, help="device registry, YAML or CSV (default: open enrollment)"
    )
    run.add_argument(
        "--profiles-dir", type=Path, help="device profiles (default: the shipped ones)"
    )
    run.add_argument("--rules-file", type=Path, help="community rules (default: the shipped ones)")
    run.add_argument(
        "--log-level", choices=LOG_LEVELS, help="how much is logged to stderr (default INFO)"
    )
    run.add_argument(
        "--shards",
        type=int,
        help="ingest processes, each owning a slice of the buildings (default 1; docs/scale.md)",
    )
    run.add_argument("--shard-index", type=int, help="this gateway's slice (setting shard.index)")
    run.add_argument("--shard-count", type=int, help="gateways splitting it (shard.count)")
    # set by `--shards N` on the processes it starts, not by hand
    run.add_argument("--shard-peer", action="append", type=Path, help=argparse.SUPPRESS)
    run.add_argument("--shard-internal-api", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--shard-home", type=Path, help=argparse.SUPPRESS)
    run.set_defaults(handler=run_gateway, run_parser=run)


def _relative(path: Path) -> str:
    """`./data` for a relative path, so that it reads as one."""
    return str(path) if path.is_absolute() else f"./{path}"


def run_gateway(args: argparse.Namespace) -> int:
    """Load the settings (flags over file over environment), then serve until a signal."""
    settings = load_settings(
        args.config,
        {
            "mqtt.url": args.mqtt_url,
            "mqtt.protocol": args.mqtt_protocol,
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
            "shard.index": args.shard_index,
            "shard.count": args.shard_count,
            "shard.peers": args.shard_peer,
            "shard.home": args.shard_home,
        },
    )
    setup_logging(settings.log_level)
    if args.shards is not None and args.shards != 1:
        return supervise(settings, args.shards, _passthrough(args))

    def ready(gateway: Gateway, url: str) -> None:
        if settings.shard.count > 1:
            write_api_url(settings.data_dir, url)  # shard 0 forwards actions on our alerts here
        if args.shard_internal_api:
            shard = f"{settings.shard.index}/{settings.shard.count}"
            print(f"community-edge shard {shard}: internal API {url}", flush=True)
            return
        print(f"community-edge API: {url}  (docs: {url}/docs)", flush=True)
        print(f"API token: {gateway.token}  (from {gateway.token_source})", flush=True)

    run_until_signal(lambda stop: serve(settings, stop, ready))
    return 0


# flags `--shards N` sets itself on each shard's command line
_PER_SHARD = {
    "shards",
    "shard_index",
    "shard_count",
    "shard_peer",
    "shard_home",
    "data_dir",
    "client_id",
}


def _passthrough(args: argparse.Namespace) -> list[str]:
    """The flags given to `run`, for each shard's command line (the rest comes from the same
    config file and environment)."""
    parser: argparse.ArgumentParser = args.run_parser
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in _PER_SHARD or action.dest == "help":
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False:
            continue
        flag = action.option_strings[-1]
        if value is True:
            out.append(flag)
        elif isinstance(value, list):
            for item in value:
                out += [flag, str(item)]
        else:
            out += [flag, str(value)]
    return out


def supervise(settings: Settings, shards: int, passthrough: list[str]) -> int:
    """Run `shards` shard processes until SIGINT or SIGTERM; restart any that exits."""
    processes = plan(settings, shards, passthrough)
    # shard 0 locks the data dir: a second supervisor's shard 0 refuses to start, and so does it
    token, source = api_token(settings)
    print(
        f"community-edge: {shards} shards ({', '.join(p.client_id for p in processes)}); "
        f"API on {settings.api.host}:{settings.api.port} (shard 0), token from {source}",
        flush=True,
    )
    supervisor = Supervisor(processes, child_env(token))
    run_until_signal(supervisor.run)
    return supervisor.failed or 0
