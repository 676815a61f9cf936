"""`community-edge links issue`: a signed one-time action link for one alert, one action and one
person (what a notification carries); prints the URL to open."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.action_links import ActionLinks, LinkAction
from gateway.cli.process import Commands
from gateway.settings import ApiSettings


def register(commands: Commands) -> None:
    """Add `links issue` and its flags."""
    links = commands.add_parser("links", help="signed one-time action links for alerts")
    verbs = links.add_subparsers(dest="links_command", required=True, metavar="VERB")
    issue = verbs.add_parser("issue", help="print a link that acts once, as one person")
    issue.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="the gateway's data dir (its link secret and used links live there)",
    )
    issue.add_argument("--alert", required=True, help="the alert id")
    issue.add_argument(
        "--action", choices=[a.value for a in LinkAction], default=LinkAction.ACKNOWLEDGE.value
    )
    issue.add_argument("--person", required=True, help="the person's id (roster)")
    issue.add_argument("--name", required=True, help="the name the alert history shows")
    issue.add_argument(
        "--minutes", type=float, default=15.0, help="how long the link is valid (default 15)"
    )
    default_url = f"http://{ApiSettings().host}:{ApiSettings().port}"
    issue.add_argument("--base-url", default=default_url, help=f"(default {default_url})")
    issue.set_defaults(handler=issue_link)


def issue_link(args: argparse.Namespace) -> int:
    """Print the URL; 2 for a bad value."""
    if not 0 < args.minutes <= 7 * 24 * 60:
        print("community-edge links: --minutes must be within 0 and 10080", file=sys.stderr)
        return 2
    links = ActionLinks(args.data_dir)
    try:
        token = links.issue(
            args.alert,
            LinkAction(args.action),
            args.person,
            args.name,
            now=datetime.now(UTC),
            valid_for=timedelta(minutes=args.minutes),
        )
    finally:
        links.close()
    print(f"{args.base_url.rstrip('/')}/a/{token}")
    return 0
