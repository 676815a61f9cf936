"""`community-edge duty`: who is on duty now (or at a given time) for a community or a building."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from edge.alerts import Roster
from edge.errors import RosterError
from gateway.cli.process import Commands
from gateway.privacy import mask_phone


def register(commands: Commands) -> None:
    """Add `duty` and its flags."""
    duty = commands.add_parser("duty", help="who is on duty for a community or a building")
    duty.add_argument("--roster", type=Path, required=True, help="the roster YAML file")
    duty.add_argument("--community", required=True)
    duty.add_argument("--building", help="a building's own team first, then the community's")
    duty.add_argument(
        "--at", help="an ISO 8601 time with its offset (default: now), e.g. 2026-12-06T21:00+08:00"
    )
    duty.add_argument("--json", action="store_true", help="one JSON object per line")
    duty.set_defaults(handler=show_duty)


def show_duty(args: argparse.Namespace) -> int:
    """Print who holds each team's duty; 2 for a bad roster or time, 1 when nobody is on duty."""
    try:
        roster = Roster.load(args.roster)
        at = datetime.now(UTC) if args.at is None else datetime.fromisoformat(args.at)
        if at.tzinfo is None:
            raise ValueError(f"--at {args.at!r} needs an offset, e.g. +08:00")
    except (RosterError, ValueError) as exc:
        print(f"community-edge duty: {exc}", file=sys.stderr)
        return 2
    found = roster.on_duty(args.community, args.building, at)
    for duty in found:
        phone = mask_phone(duty.person.phone) if duty.person.phone else None
        if args.json:
            row = {
                "team": duty.team,
                "building": duty.building,
                "person": duty.person.id,
                "name": duty.person.name,
                "phone": phone,
                "shift": duty.shift,
                "reason": duty.reason,
                "until": duty.until.isoformat(),
            }
            print(orjson.dumps(row).decode())
        else:
            place = f"{duty.community}/{duty.building}" if duty.building else duty.community
            print(
                f"{place}  {duty.team}: {duty.person.name} ({duty.person.id}, {phone or 'no phone'})"
                f"  {duty.reason}, until {duty.until.isoformat()}"
            )
    if not found:
        print(f"nobody is on duty for {args.community} at {at.isoformat()}", file=sys.stderr)
        return 1
    return 0
