"""Households: the home behind a unit, with who lives there, its devices, family and care worker.

One record per household, keyed `community/building/unit` (the key the absence rules and the away
flag already use). Residents' names and phones, the family's phones and the care worker's phone
are personal data: they stay in DATA_DIR/households.db (mode 0600) and reach an API caller only
masked by role (gateway.privacy). Escalation to family members, the daily sign of life and the
monthly reports read the same record.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from edge.database import open_or_set_aside
from edge.errors import HouseholdError, HouseholdNotFound
from edge.identifier import STORED, Identifier
from edge.model import epoch_ms

_log = logging.getLogger(__name__)
_PHONE = r"^\+?[0-9][0-9 -]{3,24}$"
_PERSON = r"^[A-Za-z0-9_.\-]+$"  # as the roster's person ids
MAX_RESIDENTS = 8
MAX_FAMILY = 5
DEFAULT_CALL_AFTER_MINUTES = 10  # an SOS or a fall nobody on duty acknowledges: then the family

_SCHEMA = """
CREATE TABLE IF NOT EXISTS households (
    id TEXT PRIMARY KEY, community TEXT NOT NULL, building TEXT NOT NULL, unit TEXT NOT NULL,
    care_worker TEXT, living_alone INTEGER NOT NULL, away_until_ms INTEGER, body TEXT NOT NULL,
    updated_ms INTEGER NOT NULL, revision INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS households_away ON households (away_until_ms)
    WHERE away_until_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS households_by_community ON households (community, building, unit);
CREATE INDEX IF NOT EXISTS households_by_worker ON households (care_worker);
CREATE TABLE IF NOT EXISTS household_devices (
    device_id TEXT PRIMARY KEY, household TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS household_devices_by_household ON household_devices (household);
CREATE TABLE IF NOT EXISTS household_family (
    household TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (household, person_id));
CREATE INDEX IF NOT EXISTS household_family_by_person ON household_family (person_id);
"""


class CareLevel(StrEnum):
    """How much help the resident needs in daily life (the city programmes' three grades)."""

    INDEPENDENT = "independent"  # 自理
    PARTIAL = "partial"  # 半失能
    DEPENDENT = "dependent"  # 失能


class Resident(BaseModel):
    """Someone who lives in the household."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    phone: str | None = Field(default=None, pattern=_PHONE)
    birth_year: int | None = Field(default=None, ge=1900, le=2100)


class FamilyContact(BaseModel):
    """A relative to call when an SOS or a fall stays unacknowledged for `call_after_minutes`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    relation: str = Field(default="", max_length=32)  # 儿子, 女儿, 侄女, ...
    phone: str = Field(pattern=_PHONE)
    # None: never called by escalation (kept for the care worker's information only)
    call_after_minutes: int | None = Field(default=DEFAULT_CALL_AFTER_MINUTES, ge=0, le=24 * 60)
    # the person id a family member's token carries, when the family has access (their
    # relative's alerts and nothing else)
    person_id: str | None = Field(default=None, max_length=64, pattern=_PERSON)


class CareWorker(BaseModel):
    """The community care worker (社区网格员 / 助老员) who visits the household."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    person_id: str = Field(min_length=1, max_length=64, pattern=_PERSON)
    name: str = Field(min_length=1, max_length=64)
    phone: str | None = Field(default=None, pattern=_PHONE)


class Household(BaseModel):
    """One home: its address, residents, devices, family contacts, care worker, and absence."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    community: Identifier  # edge.identifier's rule, as the registry's and the topics'
    building: Identifier
    floor: str | None = Field(default=None, max_length=16)
    unit: Identifier
    residents: tuple[Resident, ...] = Field(default=(), max_length=MAX_RESIDENTS)
    living_alone: bool = False
    care_level: CareLevel = CareLevel.INDEPENDENT
    device_ids: tuple[Identifier, ...] = ()
    family: tuple[FamilyContact, ...] = Field(default=(), max_length=MAX_FAMILY)
    care_worker: CareWorker | None = None
    away_until: AwareDatetime | None = None  # hospital, visiting family: inactivity not counted
    away_reason: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500)
    updated_at: AwareDatetime | None = None  # set by the store
    revision: int = 0  # set by the store: +1 per write, for "someone else changed it"

    @model_validator(mode="after")
    def _consistent(self) -> Household:
        if len(set(self.device_ids)) != len(self.device_ids):
            raise ValueError("a device is listed twice")
        if self.living_alone and len(self.residents) > 1:
            raise ValueError("living alone, but more than one resident is listed")
        if self.away_reason is not None and self.away_until is None:
            raise ValueError("away_reason without away_until")
        return self

    @property
    def id(self) -> str:
        """`community/building/unit`, the key the absence rules and the away flag use."""
        return household_id(self.community, self.building, self.unit)

    def is_away(self, now: datetime) -> bool:
        """Away (hospital, visiting family) at `now`: until the end date passes."""
        return self.away_until is not None and now < self.away_until

    def family_to_call(self) -> list[FamilyContact]:
        """The family members escalation calls, soonest first."""
        called = [f for f in self.family if f.call_after_minutes is not None]
        return sorted(called, key=lambda f: f.call_after_minutes or 0)


def household_id(community: str, building: str, unit: str) -> str:
    """The household key: `community/building/unit`."""
    return f"{community}/{building}/{unit}"


def split_household_id(value: str) -> tuple[str, str, str]:
    """`community/building/unit` into its parts (HouseholdError when it is not three)."""
    parts = value.split("/")
    if len(parts) != 3 or not all(parts):
        raise HouseholdError(f"household {value!r} must be 'community/building/unit'")
    return parts[0], parts[1], parts[2]


class HouseholdStore:
    """The household register on disk: put (create or replace), get, list, delete; thread-safe.

    A device belongs to at most one household; `household_of_device` answers escalation's
    question "whose home is this SOS button in?" with one indexed lookup.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn, self.problem = open_or_set_aside(path, _SCHEMA, "household register")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- writes --------------------------------------------------------------------------------

    def put(
        self, household: Household, now: datetime, *, expect_revision: int | None = None
    ) -> Household:
        """Create or replace a household; returns it as stored (revision and time stamped).

        Args:
            expect_revision: the revision the caller read (0: must not exist yet); a different
                one raises HouseholdError (someone else changed it in between).
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                stored = self._put(household, now, expect_revision)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return stored

    def put_many(self, households: Iterable[Household], now: datetime) -> int:
        """Create or replace many in one transaction (an import): all of them or none."""
        count = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for household in households:
                    self._put(household, now, None)
                    count += 1
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return count

    def _put(self, household: Household, now: datetime, expect: int | None) -> Household:
        hid = household.id
        row = self._conn.execute("SELECT revision FROM households WHERE id = ?", (hid,)).fetchone()
        current = 0 if row is None else int(row[0])
        if expect is not None and expect != current:
            raise HouseholdError(
                f"household {hid} was changed meanwhile (revision {current}, not {expect}): "
                "read it again"
            )
        for device_id in household.device_ids:
            owner = self._conn.execute(
                "SELECT household FROM household_devices WHERE device_id = ?", (device_id,)
            ).fetchone()
            if owner is not None and owner[0] != hid:
                raise HouseholdError(f"device {device_id} already belongs to household {owner[0]}")
        stored = household.model_copy(update={"updated_at": now, "revision": current + 1})
        worker = stored.care_worker.person_id if stored.care_worker else None
        self._conn.execute(
            "INSERT INTO households (id, community, building, unit, care_worker, living_alone, "
            "away_until_ms, body, updated_ms, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET care_worker = excluded.care_worker, "
            "living_alone = excluded.living_alone, away_until_ms = excluded.away_until_ms, "
            "body = excluded.body, "
            "updated_ms = excluded.updated_ms, revision = excluded.revision",
            (
                hid,
                stored.community,
                stored.building,
                stored.unit,
                worker,
                int(stored.living_alone),
                epoch_ms(stored.away_until) if stored.away_until else None,
                stored.model_dump_json(),
                epoch_ms(now),
                stored.revision,
            ),
        )
        self._conn.execute("DELETE FROM household_devices WHERE household = ?", (hid,))
        self._conn.executemany(
            "INSERT INTO household_devices (device_id, household) VALUES (?, ?)",
            [(d, hid) for d in stored.device_ids],
        )
        self._conn.execute("DELETE FROM household_family WHERE household = ?", (hid,))
        self._conn.executemany(
            "INSERT OR IGNORE INTO household_family (household, person_id) VALUES (?, ?)",
            [(hid, f.person_id) for f in stored.family if f.person_id is not None],
        )
        return stored

    def set_away(
        self, hid: str, until: datetime | None, reason: str | None, now: datetime
    ) -> Household:
        """Mark a household away until a date (None: back home); HouseholdNotFound if unknown."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                current = self._get(hid)
                if current is None:
                    raise HouseholdNotFound(f"no household {hid}")
                changed = current.model_copy(
                    update={"away_until": until, "away_reason": reason if until else None}
                )
                # re-validated for the new dates; its ids as stored (edge.identifier.STORED)
                revalidated = Household.model_validate(changed.model_dump(), context=STORED)
                stored = self._put(revalidated, now, None)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return stored

    def delete(self, hid: str) -> bool:
        """Remove a household (its devices and family links too); whether it existed."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute("DELETE FROM households WHERE id = ?", (hid,))
                self._conn.execute("DELETE FROM household_devices WHERE household = ?", (hid,))
                self._conn.execute("DELETE FROM household_family WHERE household = ?", (hid,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return cur.rowcount > 0

    # -- reads ---------------------------------------------------------------------------------

    def get(self, hid: str) -> Household | None:
        with self._lock:
            return self._get(hid)

    def _get(self, hid: str) -> Household | None:
        row = self._conn.execute("SELECT body FROM households WHERE id = ?", (hid,)).fetchone()
        return None if row is None else Household.model_validate_json(row[0], context=STORED)

    def household_of_device(self, device_id: str) -> Household | None:
        """The household a device is installed in, if it is registered to one."""
        with self._lock:
            row = self._conn.execute(
                "SELECT h.body FROM household_devices d JOIN households h ON h.id = d.household "
                "WHERE d.device_id = ?",
                (device_id,),
            ).fetchone()
        return None if row is None else Household.model_validate_json(row[0], context=STORED)

    def list(
        self,
        communities: Iterable[str] | None = None,
        *,
        building: str | None = None,
        care_worker: str | None = None,
        family_person: str | None = None,
        living_alone: bool | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Household]:
        """Households in id order, filtered (None: no filter); `after` an id to page from."""
        where: list[str] = []
        args: list[object] = []
        if communities is not None:
            wanted = sorted(set(communities))
            if not wanted:
                return []
            where.append(f"community IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        if building is not None:
            where.append("building = ?")
            args.append(building)
        if care_worker is not None:
            where.append("care_worker = ?")
            args.append(care_worker)
        if family_person is not None:
            where.append("id IN (SELECT household FROM household_family WHERE person_id = ?)")
            args.append(family_person)
        if living_alone is not None:
            where.append("living_alone = ?")
            args.append(int(living_alone))
        if after is not None:
            where.append("id > ?")
            args.append(after)
        sql = "SELECT body FROM households"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Household.model_validate_json(r[0], context=STORED) for r in rows]

    def __iter__(self) -> Iterator[Household]:
        return iter(self.list())

    def count(self, community: str | None = None) -> int:
        with self._lock:
            if community is None:
                row = self._conn.execute("SELECT count(*) FROM households").fetchone()
            else:
                row = self._conn.execute(
                    "SELECT count(*) FROM households WHERE community = ?", (community,)
                ).fetchone()
        return int(row[0])

    def with_away_dates(self) -> builtins.list[Household]:
        """Households with an away end date, past or not (an index, not a scan of the register)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM households WHERE away_until_ms IS NOT NULL ORDER BY id"
            ).fetchall()
        return [Household.model_validate_json(r[0], context=STORED) for r in rows]

    def away(self, now: datetime) -> builtins.list[Household]:
        """Households away at `now` (the board shows them; inactivity is not counted)."""
        return [h for h in self.with_away_dates() if h.is_away(now)]

    def expired_away(self, now: datetime) -> builtins.list[Household]:
        """Households whose away end date has passed but are still marked away."""
        return [h for h in self.with_away_dates() if not h.is_away(now)]
