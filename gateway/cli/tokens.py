"""`community-edge tokens create|list|revoke`: API tokens in a data dir, each action audited."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from gateway.cli.process import Commands
from gateway.tokens import Role


def register(commands: Commands) -> None:
    """Add `tokens` with its three actions, each on `--data-dir`."""
    tokens = commands.add_parser(
        "tokens", help="API tokens: a role and the communities each may see"
    )
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token (printed once, as the last line)")
    create.add_argument("--role", required=True, help=", ".join(role.value for role in Role))
    create.add_argument(
        "--community",
        action="append",
        required=True,
        help="a community the token may see (repeat; '*' for all: admin and platform only)",
    )
    create.add_argument("--name", help="who or what holds it (shown by `tokens list`)")
    create.add_argument(
        "--person",
        help="care_worker and family tokens: the person id it stands for (a household's care "
        "worker or family contact), whose households are all it sees",
    )
    create.add_argument(
        "--expires-in-days",
        type=float,
        help="the token stops working (and its open live streams end) after this many days "
        "(default: until revoked)",
    )
    listing = actions.add_parser("list", help="tokens with role, communities and state")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id")
    for action in (create, listing, revoke):
        action.add_argument("--data-dir", type=Path, required=True, help="the gateway's data dir")
        action.set_defaults(handler=manage_tokens)


def manage_tokens(args: argparse.Namespace) -> int:
    """Carry out the action; a refused one (bad role, unknown id) is one line and exit 2."""
    from gateway.audit import open_audit
    from gateway.tokens import TokenError, open_tokens

    if args.tokens_command == "create" and not args.data_dir.exists():
        # a fresh install creates its first tokens before the first start: the dir is made, and said
        args.data_dir.mkdir(parents=True)
        print(f"community-edge tokens: created the data dir {args.data_dir}", file=sys.stderr)
    refused = _refusal(args.data_dir, args.tokens_command)
    if refused is not None:
        print(f"community-edge tokens: {refused}", file=sys.stderr)
        return 2
    try:
        store = open_tokens(args.data_dir)
    except TokenError as exc:
        print(f"community-edge tokens: {exc}", file=sys.stderr)
        return 2
    audit = open_audit(args.data_dir)
    try:
        if args.tokens_command == "create":
            valid_for = (
                timedelta(days=args.expires_in_days) if args.expires_in_days is not None else None
            )
            token_id, token = store.create(
                args.role, args.community, args.name, valid_for, person=args.person
            )
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
            listed = store.list()
            if not listed:
                print(f"no tokens in {args.data_dir} (create one with `tokens create`)")
            else:
                print(
                    f"{'id':{len(listed[0].id)}}  {'role':16} {'communities':24} "
                    f"{'created (UTC)':16}  state  name"
                )
            for info in listed:
                if info.revoked_at:
                    state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}"
                elif info.expires_at:
                    state = f"expires {info.expires_at:%Y-%m-%d %H:%M}"
                else:
                    state = "active"
                print(
                    f"{info.id}  {info.role.value:16} {','.join(info.communities):24} "
                    f"{info.created_at:%Y-%m-%d %H:%M}  {state}  {info.name or ''}"
                    f"{f'  person {info.person}' if info.person else ''}".rstrip()
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


def _refusal(data_dir: Path, action: str) -> str | None:
    """Why `action` is refused on `data_dir`, or None. A mistyped path must not quietly become a
    fresh, empty data dir: only `create` makes one (and says so), and listing or revoking where no
    token was ever made says so."""
    if not data_dir.is_dir():
        return (
            f"no data dir {data_dir}: give the gateway's --data-dir "
            "(the demo prints its own; see `community-edge demo --help`)"
        )
    if action != "create" and not (data_dir / "tokens.db").exists():
        return f"no tokens in {data_dir}: no token was ever created there (is it the gateway's?)"
    return None
