"""`community-edge run`: the agent and the alert API, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli.process import LOG_LEVELS, Commands, run_until_signal, setup_logging
from gateway.settings import ApiSettings, MqttSettings, Settings, load_settings
from gateway.wiring import Gateway, serve


def register(commands: Commands) -> None:
    """Add `run` and its flags; each flag overrides the setting of the same name."""
    data_dir: Path = Settings.model_fields["data_dir"].default
    run = commands.add_parser("run", help="run the agent and the alert API")
    run.add_argument("--config", type=Path, help="YAML settings file (flags override it)")
    run.add_argument(
        "--mqtt-url",
        help=f"broker, mqtt://HOST:PORT (default {MqttSettings.model_fields['url'].default})",
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
    run.add_argument("--tsdb-org")
    run.add_argument("--tsdb-bucket")
    run.add_argument("--tsdb-token")
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
    run.add_argument("--log-level", choices=LOG_LEVELS)
    run.set_defaults(handler=run_gateway)


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
        },
    )
    setup_logging(settings.log_level)

    def ready(gateway: Gateway, url: str) -> None:
        print(f"community-edge API: {url}  (docs: {url}/docs)", flush=True)
        print(f"API token: {gateway.token}  (from {gateway.token_source})", flush=True)

    run_until_signal(lambda stop: serve(settings, stop, ready))
    return 0
