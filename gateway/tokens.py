"""API tokens: each has a role and the communities it may see; only a hash is ever stored.

A token reads `ce_<id>_<secret>`: the id finds the row, the secret is checked against its SHA-256
(tokens are 256-bit random strings, so a fast hash is enough: no password to stretch). Shown once,
at creation. Stored in DATA_DIR/tokens.db (mode 0600); a revoked or expired token fails at once, also
in a running API, which reads the file on each request and rechecks the token of an open live stream
every second (`TokenStore.active`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from edge.database import open_database

ALL = "*"  # the community list of a token that may see every community

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, communities TEXT NOT NULL,
    name TEXT, created_at TEXT NOT NULL, revoked_at TEXT, expires_at TEXT);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class Role(StrEnum):
    """What a token may do; who sees personal data is decided by the role (see gateway.privacy)."""

    DUTY_OFFICER = "duty_officer"
    PROPERTY_MANAGER = "property_manager"
    PLATFORM = "platform"
    ADMIN = "admin"
    EDGE_AGENT = "edge_agent"
    # people of the elderly-care work (gateway/api/households.py): a care worker reads and visits
    # her households; a family member reads their relative's household; both only there
    CARE_WORKER = "care_worker"
    FAMILY = "family"


# roles whose token names a person (`--person`), whose households are all they see
PERSONAL_ROLES = frozenset({Role.CARE_WORKER, Role.FAMILY})
_PERSON_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # as the roster's and households' person ids


class TokenError(ValueError):
    """A token request that cannot be carried out (bad role, no community, unknown id)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id (never its secret), role and communities."""

    token_id: str
    role: Role
    communities: frozenset[str]  # {ALL}: every community
    person: str | None = None  # the person a care_worker or family token stands for

    @property
    def all_communities(self) -> bool:
        return ALL in self.communities

    def may_see(self, community: str) -> bool:
        return self.all_communities or community in self.communities

    def scope(self, wanted: list[str] | None) -> list[str] | None:
        """The communities a query may read: the wanted ones within the token's (None: any)."""
        if self.all_communities:
            return wanted
        if wanted is None:
            return sorted(self.communities)
        return [c for c in wanted if c in self.communities]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as `tokens list` shows it (no secret, no hash)."""

    id: str
    role: Role
    communities: tuple[str, ...]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None  # None: until revoked
    person: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Tokens in a SQLite file; safe to use from the API's threads."""

    def __init__(self, path: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.path = path
        self._now = now
        self._conn = open_database(path, _SCHEMA, check_same_thread=False)
        self._lock = threading.Lock()
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(tokens)")}
        if "expires_at" not in columns:  # a tokens.db written before tokens could expire
            self._conn.execute("ALTER TABLE tokens ADD COLUMN expires_at TEXT")
        if "person" not in columns:  # ... or name a person (care_worker, family)
            self._conn.execute("ALTER TABLE tokens ADD COLUMN person TEXT")

    def close(self) -> None:
        self._conn.close()

    def create(
        self,
        role: str,
        communities: list[str],
        name: str | None = None,
        valid_for: timedelta | None = None,
        person: str | None = None,
    ) -> tuple[str, str]:
        """A new token: returns (id, the token itself). The token is not kept anywhere.

        Args:
            valid_for: how long the token works from now (None: until revoked).
            person: the person id a care_worker or family token stands for (required for them,
                refused for the other roles).
        """
        try:
            parsed = Role(role)
        except ValueError:
            raise TokenError(
                f"unknown role {role!r} (one of: {', '.join(r.value for r in Role)})"
            ) from None
        scope = sorted(set(communities))
        if not scope:
            raise TokenError("a token needs at least one --community (or '*' for all)")
        if ALL in scope and parsed not in (Role.ADMIN, Role.PLATFORM):
            raise TokenError(f"only admin and platform tokens may see every community ('{ALL}')")
        bad = [c for c in scope if c != ALL and (not c or "," in c or c.strip() != c)]
        if bad:
            raise TokenError(f"invalid community id {bad[0]!r}")
        if parsed in PERSONAL_ROLES and person is None:
            raise TokenError(f"a {parsed.value} token needs --person (the person id it stands for)")
        if parsed not in PERSONAL_ROLES and person is not None:
            raise TokenError(
                f"a {parsed.value} token stands for no person (--person is for care_worker and family)"
            )
        if person is not None and not _PERSON_ID.match(person):
            raise TokenError(f"invalid person id {person!r} (letters, digits, '_', '.', '-')")
        if valid_for is not None and valid_for <= timedelta(0):
            raise TokenError("a token's lifetime must be positive")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = self._now()
        expires = (now + valid_for).isoformat() if valid_for is not None else None
        with self._lock:
            self._conn.execute(
                "INSERT INTO tokens (id, hash, role, communities, name, created_at, expires_at, "
                "person) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *(token_id, _digest(secret), parsed.value, ",".join(scope), name),
                    *(now.isoformat(), expires, person),
                ),
            )
        return token_id, f"ce_{token_id}_{secret}"

    def verify(self, token: str) -> Principal | None:
        """The token's principal, or None when it is unknown, malformed, revoked or expired."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != "ce" or not token_id or not secret:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT hash, role, communities, revoked_at, expires_at, person FROM tokens "
                "WHERE id = ?",
                (token_id,),
            ).fetchone()
        if row is None or not self._usable(row[3], row[4]):
            return None
        if not hmac.compare_digest(row[0], _digest(secret)):
            return None
        return Principal(token_id, Role(row[1]), frozenset(row[2].split(",")), row[5])

    def active(self, token_id: str) -> bool:
        """Whether a token that authenticated earlier still works (not revoked, not expired)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT revoked_at, expires_at FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
        return row is not None and self._usable(row[0], row[1])

    def _usable(self, revoked_at: str | None, expires_at: str | None) -> bool:
        if revoked_at is not None:
            return False
        return expires_at is None or self._now() < datetime.fromisoformat(expires_at)

    def secret(self, name: str) -> bytes:
        """A random 32-byte key of this deployment, made on first use and kept here (0600):
        the key of the unit pseudonyms (gateway.privacy.Pseudonyms)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)",
                (name, secrets.token_bytes(32)),
            )
            row = self._conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        value: bytes = row[0]
        return value

    def list(self) -> list[TokenInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, role, communities, name, created_at, revoked_at, expires_at, person "
                "FROM tokens ORDER BY created_at, id"
            ).fetchall()
        return [
            TokenInfo(
                id=r[0],
                role=Role(r[1]),
                communities=tuple(r[2].split(",")),
                name=r[3],
                created_at=datetime.fromisoformat(r[4]),
                revoked_at=datetime.fromisoformat(r[5]) if r[5] else None,
                expires_at=datetime.fromisoformat(r[6]) if r[6] else None,
                person=r[7],
            )
            for r in rows
        ]

    def revoke(self, token_id: str) -> None:
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._now().isoformat(), token_id),
            )
            if cursor.rowcount == 0:
                known = self._conn.execute(
                    "SELECT 1 FROM tokens WHERE id = ?", (token_id,)
                ).fetchone()
                raise TokenError(
                    f"token {token_id!r} is already revoked" if known else f"no token {token_id!r}"
                )


def open_tokens(data_dir: Path) -> TokenStore:
    """The token store of a data directory (created on first use)."""
    try:
        return TokenStore(data_dir / "tokens.db")
    except sqlite3.DatabaseError as exc:
        raise TokenError(f"{data_dir / 'tokens.db'}: {exc}") from exc
