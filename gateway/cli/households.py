"""`community-edge households import|export|list`: the household register of a running agent,
through its API (so the token's scope, masking and the audit log apply as on any other client).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.cli.process import Commands


def register(commands: Commands) -> None:
    """Add `households` with its three actions, each needing `--api` and `--token`."""
    households = commands.add_parser(
        "households", help="the household register (elderly care) of a running agent"
    )
    actions = households.add_subparsers(dest="households_command", required=True, metavar="ACTION")
    for name, text in (
        ("import", "create or replace households from a CSV file (all lines or none)"),
        ("export", "the register as CSV for Excel (masked unless the token's role allows)"),
        ("list", "households, one line each"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--api", required=True, help="the agent's API, http://HOST:PORT")
        action.add_argument("--token", required=True, help="the API's bearer token")
        if name == "import":
            action.add_argument("--community", required=True, help="the register's community")
        else:
            action.add_argument("--community", action="append", help="a community (repeat)")
        action.set_defaults(handler=manage_households)
        if name == "import":
            action.add_argument("file", type=Path, help="CSV, UTF-8 or GB18030, as export writes")
        elif name == "export":
            action.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")


def manage_households(args: argparse.Namespace) -> int:
    """Ask the API; 2 when it cannot be reached or the file cannot be read, 1 when it refuses."""
    import httpx

    headers = {"Authorization": f"Bearer {args.token}"}
    base = args.api.rstrip("/")
    command = args.households_command
    try:
        if command == "import":
            try:
                data = args.file.read_bytes()
            except OSError as exc:
                print(f"community-edge households: {exc}", file=sys.stderr)
                return 2
            response = httpx.post(
                f"{base}/v1/households/import",
                params={"community": args.community},
                content=data,
                headers={**headers, "Content-Type": "text/csv"},
                timeout=60,
            )
        elif command == "export":
            params: dict[str, Any] = {"community": args.community} if args.community else {}
            response = httpx.get(
                f"{base}/v1/households/export", params=params, headers=headers, timeout=60
            )
        else:
            response = _list(httpx.Client(timeout=10), base, headers, args.community)
    except httpx.HTTPError as exc:
        print(f"community-edge households: cannot reach {base}: {exc}", file=sys.stderr)
        return 2
    if response.status_code >= 400:
        _refused(response)
        return 1
    if command == "import":
        print(f"imported {response.json()['imported']} households")
    elif command == "export":
        if args.output is None:
            sys.stdout.buffer.write(response.content)
        else:
            args.output.write_bytes(response.content)
            print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _list(client: Any, base: str, headers: dict[str, str], communities: list[str] | None) -> Any:
    """Every page of /v1/households, printed as it comes; the last response (or a refusal)."""
    cursor = None
    with client:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if communities:
                params["community"] = communities
            if cursor:
                params["cursor"] = cursor
            response = client.get(f"{base}/v1/households", params=params, headers=headers)
            if response.status_code >= 400:
                return response
            page = response.json()
            for h in page["items"]:
                worker = h["care_worker"]["name"] if h["care_worker"] else "-"
                names = "、".join(r["name"] for r in h["residents"]) or "-"
                flags = ["独居" if h["living_alone"] else "", "外出" if h["away"] else ""]
                print(f"{h['id']}  {names}  {worker}  {' '.join(f for f in flags if f)}".rstrip())
            cursor = page["next_cursor"]
            if not cursor:
                return response


def _refused(response: Any) -> None:
    try:
        error = response.json()["error"]
        message = error["message"]
        details = error.get("details") or []
    except (ValueError, KeyError, TypeError):
        message, details = response.text, []
    print(f"community-edge households: {response.status_code}: {message}", file=sys.stderr)
    for detail in details:
        if "line" in detail:
            print(
                f"  line {detail['line']} {detail['column']}: {detail['problem']}", file=sys.stderr
            )
