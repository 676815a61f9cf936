"""The phone book of sends: every SMS and call a phone channel made, for which alert and person.

DATA_DIR/phone-sends.db. A row is written before the provider is asked (status `pending`, with
our own reference, which goes to the provider as Alibaba's `OutId` or Tencent's `SessionContext`)
and completed with the provider's id (`BizId`, `CallId`, `SerialNo`) once it answers. A provider's
callback (a key pressed, a delivery receipt) is matched to its row by our reference, or by the
provider's id, so it acknowledges the right alert as the right person even when the agent
restarted between the call and the callback: the row is on disk (fsync on commit), not in memory.
The same rows keep a retried batch from ringing a person twice for one event. Rows older than
`keep` (the delivery log's retention) are deleted as new ones are written.

Phones are personal data: the book keeps a masked number to show and a SHA-256 of the digits to
match a callback's number against, never the number itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from edge.database import open_or_set_aside
from edge.model import epoch_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    ref TEXT PRIMARY KEY, channel TEXT NOT NULL, provider TEXT NOT NULL, medium TEXT NOT NULL,
    provider_id TEXT, event_id TEXT NOT NULL, event_kind TEXT NOT NULL, alert_id TEXT NOT NULL,
    person_id TEXT NOT NULL, person_name TEXT NOT NULL, phone_masked TEXT NOT NULL,
    phone_hash TEXT NOT NULL, status TEXT NOT NULL, detail TEXT, created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (channel, event_id, person_id));
CREATE INDEX IF NOT EXISTS sends_by_provider_id ON sends (provider, provider_id);
CREATE INDEX IF NOT EXISTS sends_by_phone ON sends (provider, phone_hash, created_ms);
"""
_DETAIL_CHARS = 300
KEEP = timedelta(days=90)  # a callback comes within minutes; the rows are kept as long as receipts
_PRUNE_EVERY = 100  # sends between two prunings
_DIGITS = re.compile(r"\D")


class SendStatus(StrEnum):
    """Where one send to one person stands."""

    PENDING = "pending"  # asked, no answer yet (or the agent stopped while asking)
    SENT = "sent"  # the provider took it
    FAILED = "failed"  # retried with the batch
    REJECTED = "rejected"  # the provider refused it for good (a number it will never reach)


@dataclass(frozen=True, slots=True)
class SendRecord:
    """One send to one person, as the book has it."""

    ref: str
    channel: str
    provider: str
    medium: str
    provider_id: str | None
    event_id: str
    event_kind: str
    alert_id: str
    person_id: str
    person_name: str
    phone_masked: str
    status: SendStatus
    created_at: datetime


def mask(phone: str) -> str:
    """`13812345678` as `138****5678`: enough to tell two numbers apart, not to dial one."""
    digits = _national(phone)
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def phone_hash(phone: str) -> str:
    """The digits' SHA-256, national form: `+86 138...`, `86138...` and `138...` match."""
    return hashlib.sha256(_national(phone).encode()).hexdigest()


def _national(phone: str) -> str:
    digits = _DIGITS.sub("", phone)
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


class PhoneBook:
    """Sends on disk; safe to use from several threads (one connection, one lock)."""

    def __init__(self, path: Path, keep: timedelta = KEEP) -> None:
        self.path = path
        self.keep = keep
        self._begun = 0
        self._conn, self.problem = open_or_set_aside(
            path,
            _SCHEMA,
            "phone book",
            "callbacks for earlier sends no longer match (no alert is lost)",
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def status(self, channel: str, event_id: str, person_id: str) -> SendStatus | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT status FROM sends WHERE channel = ? AND event_id = ? AND person_id = ?",
                (channel, event_id, person_id),
            ).fetchone()
        return None if row is None else SendStatus(row[0])

    def begin(
        self,
        *,
        channel: str,
        provider: str,
        medium: str,
        event_id: str,
        event_kind: str,
        alert_id: str,
        person_id: str,
        person_name: str,
        phone: str,
        now: datetime,
    ) -> str:
        """A new reference for one send (the provider echoes it back); on disk before it is used."""
        ref = secrets.token_hex(12)
        at = epoch_ms(now)
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO sends (ref, channel, provider, medium, event_id, event_kind, "
                "alert_id, person_id, person_name, phone_masked, phone_hash, status, created_ms, "
                "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel, event_id, person_id) DO UPDATE SET ref = excluded.ref, "
                "status = excluded.status, provider_id = NULL, updated_ms = excluded.updated_ms",
                (ref, channel, provider, medium, event_id, event_kind, alert_id, person_id,
                 person_name, mask(phone), phone_hash(phone), SendStatus.PENDING.value, at, at),
            )  # fmt: skip
            self._begun += 1
            if self._begun % _PRUNE_EVERY == 0:
                self._conn.execute(
                    "DELETE FROM sends WHERE created_ms < ?", (epoch_ms(now - self.keep),)
                )
        return ref

    def finish(
        self,
        ref: str,
        status: SendStatus,
        *,
        now: datetime,
        provider_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE sends SET status = ?, provider_id = coalesce(?, provider_id), "
                "detail = ?, updated_ms = ? WHERE ref = ?",
                (status.value, provider_id, _short(detail), epoch_ms(now), ref),
            )

    def by_ref(self, ref: str) -> SendRecord | None:
        return self._one("ref = ?", (ref,))

    def by_provider_id(self, provider: str, provider_id: str) -> SendRecord | None:
        return self._one("provider = ? AND provider_id = ?", (provider, provider_id))

    def latest_to(
        self, provider: str, medium: str, phone: str, now: datetime, within: timedelta
    ) -> SendRecord | None:
        """The newest send of `medium` to `phone` within `within` whose provider id was never
        written (the agent stopped between the provider's answer and the book): for a callback
        whose id the book does not know. A send with a known id is matched by that id only."""
        return self._one(
            "provider = ? AND medium = ? AND phone_hash = ? AND created_ms >= ? "
            "AND provider_id IS NULL ORDER BY created_ms DESC",
            (provider, medium, phone_hash(phone), epoch_ms(now - within)),
        )

    def matches_phone(self, record: SendRecord, phone: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT phone_hash FROM sends WHERE ref = ?", (record.ref,)
            ).fetchone()
        return row is not None and secrets.compare_digest(row[0], phone_hash(phone))

    def for_alert(self, alert_id: str) -> list[SendRecord]:
        return self._many("alert_id = ? ORDER BY created_ms, rowid", (alert_id,))

    def _one(self, where: str, args: tuple[object, ...]) -> SendRecord | None:
        found = self._many(where + " LIMIT 1", args)
        return found[0] if found else None

    def _many(self, where: str, args: tuple[object, ...]) -> list[SendRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT ref, channel, provider, medium, provider_id, event_id, event_kind, "
                "alert_id, person_id, person_name, phone_masked, status, created_ms "
                f"FROM sends WHERE {where}",
                args,
            ).fetchall()
        return [
            SendRecord(
                ref=r[0],
                channel=r[1],
                provider=r[2],
                medium=r[3],
                provider_id=r[4],
                event_id=r[5],
                event_kind=r[6],
                alert_id=r[7],
                person_id=r[8],
                person_name=r[9],
                phone_masked=r[10],
                status=SendStatus(r[11]),
                created_at=datetime.fromtimestamp(r[12] / 1000, UTC),
            )
            for r in rows
        ]


def _short(text: str | None) -> str | None:
    return None if text is None else text[:_DETAIL_CHARS]
