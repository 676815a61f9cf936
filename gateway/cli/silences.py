"""`community-edge silences add|list|expire`: silences of a running agent, through its alert API."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from edge.model import Severity
from gateway.cli.process import Commands


def register(commands: Commands) -> None:
    """Add `silences` with its three actions, each needing `--api` and `--token`."""
    silences = commands.add_parser("silences", help="silences of a running agent, through its API")
    actions = silences.add_subparsers(dest="silences_command", required=True, metavar="ACTION")
    for name, text in (
        ("add", "silence matching alerts"),
        ("list", "list silences"),
        ("expire", "end a silence now"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--api", required=True, help="the agent's API, http://HOST:PORT")
        action.add_argument("--token", required=True, help="the API's bearer token")
        action.add_argument("--json", action="store_true", help="one JSON object per silence")
        action.set_defaults(handler=manage_silences)
        if name == "list":
            action.add_argument("--all", action="store_true", help="also silences that are over")
        elif name == "expire":
            action.add_argument("id")
        else:
            action.add_argument("--community")
            action.add_argument("--building")
            action.add_argument("--device", help="device id")
            action.add_argument("--rule", help="rule id")
            action.add_argument("--severity", choices=[severity.value for severity in Severity])
            action.add_argument("--starts", help="ISO time with zone (default: now)")
            action.add_argument("--ends", help="ISO time with zone (needed unless --every)")
            action.add_argument("--reason", required=True)
            action.add_argument("--every", choices=["day", "week", "month"], help="recurring")
            action.add_argument("--day", type=int, help="0-6 (Monday 0) for week, 1-31 for month")
            action.add_argument("--at", default="00:00", help="window start, HH:MM local")
            action.add_argument("--duration-s", type=int, default=3600, help="window length")
            action.add_argument("--timezone", default="UTC", help="e.g. Asia/Shanghai")


def manage_silences(args: argparse.Namespace) -> int:
    """Ask the API; 2 when it cannot be reached, 1 when it refuses, each in one line."""
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
