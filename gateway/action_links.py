"""Action links: one alert, one action, one person, signed, expiring, usable once.

A link is `/a/<token>`; the token carries what it allows (alert id, action, person id and name,
expiry, a nonce) and an HMAC-SHA256 of that under the gateway's own secret
(`DATA_DIR/action-link-secret`, created once, mode 0600), so an altered token fails to verify and
nothing about it needs to be stored until it is used. Using one records its nonce in
`DATA_DIR/action-links.db` in the same step that checks it, so a link acts once even when two
people press at the same moment or the gateway restarted in between.

Opening a link (GET) never acts: chat apps and mail scanners open links on their own. Only the
button on the confirmation page (POST) does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from edge.database import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS used_links (
    nonce TEXT PRIMARY KEY, alert_id TEXT NOT NULL, action TEXT NOT NULL, person TEXT NOT NULL,
    used_at TEXT NOT NULL);
"""
_SIGNATURE_BYTES = 16  # 128 bits of HMAC-SHA256: unforgeable, and short enough for an SMS


class LinkAction(StrEnum):
    """What a link lets its person do."""

    ACKNOWLEDGE = "ack"
    ON_MY_WAY = "onway"
    RESOLVE = "resolve"


class LinkRefused(Exception):
    """A link that cannot act; `reason` is one of altered, expired, used."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a verified link allows."""

    alert_id: str
    action: LinkAction
    person_id: str
    person_name: str
    expires_at: datetime
    nonce: str


@dataclass(frozen=True, slots=True)
class LinkUse:
    """When and by whom a link was used."""

    person_id: str
    used_at: datetime


class ActionLinks:
    """Issues and checks action links for one gateway."""

    def __init__(self, data_dir: Path) -> None:
        self._secret = _secret(data_dir / "action-link-secret")
        self._conn = open_database(data_dir / "action-links.db", _SCHEMA, check_same_thread=False)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def issue(
        self,
        alert_id: str,
        action: LinkAction,
        person_id: str,
        person_name: str,
        *,
        now: datetime,
        valid_for: timedelta,
    ) -> str:
        """A token for `/a/<token>`."""
        payload = {
            "a": alert_id,
            "x": action.value,
            "p": person_id,
            "n": person_name,
            "e": int((now + valid_for).timestamp()),
            "i": secrets.token_urlsafe(9),
        }
        body = _b64(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._sign(body))}"

    def verify(self, token: str, now: datetime) -> LinkClaim:
        """What the token allows; raises LinkRefused (altered, expired, used). Changes nothing."""
        claim = self._claim(token)
        if now >= claim.expires_at:
            raise LinkRefused("expired", f"this link expired at {claim.expires_at.isoformat()}")
        used = self.used(claim.nonce)
        if used is not None:
            raise LinkRefused("used", f"this link was used at {used.used_at.isoformat()}")
        return claim

    def consume(self, token: str, now: datetime) -> LinkClaim:
        """Verify and mark used in one step; only one of two simultaneous uses gets the claim."""
        claim = self.verify(token, now)
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO used_links (nonce, alert_id, action, person, used_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (claim.nonce, claim.alert_id, claim.action.value, claim.person_id,
                     now.isoformat()),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise LinkRefused("used", "this link has just been used") from None
        return claim

    def used(self, nonce: str) -> LinkUse | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT person, used_at FROM used_links WHERE nonce = ?", (nonce,)
            ).fetchone()
        return None if row is None else LinkUse(row[0], datetime.fromisoformat(row[1]))

    def _claim(self, token: str) -> LinkClaim:
        body, _, signature = token.partition(".")
        try:
            given = _unb64(signature)
            payload = json.loads(_unb64(body))
            if not hmac.compare_digest(given, self._sign(body)):
                raise ValueError("signature")
            return LinkClaim(
                alert_id=str(payload["a"]),
                action=LinkAction(payload["x"]),
                person_id=str(payload["p"]),
                person_name=str(payload["n"]),
                expires_at=datetime.fromtimestamp(int(payload["e"]), UTC),
                nonce=str(payload["i"]),
            )
        except (ValueError, KeyError, TypeError):
            raise LinkRefused("altered", "this link is not valid") from None

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _secret(path: Path) -> bytes:
    """The gateway's link secret, created once (0600, in one step: never readable by others)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fd:
            fd.write(secrets.token_bytes(32))
            fd.flush()
            os.fsync(fd.fileno())
    except FileExistsError:
        pass
    secret = path.read_bytes()
    if len(secret) < 32:
        raise ValueError(f"{path}: shorter than 32 bytes; delete it to get a new one")
    return secret


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or len(text) > 4096:
        raise ValueError("length")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
