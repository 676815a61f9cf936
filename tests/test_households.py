"""The household register on disk: validation, put/get/list/delete, devices, family, away."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge.enrich import (
    CareLevel,
    CareWorker,
    FamilyContact,
    Household,
    HouseholdStore,
    Resident,
    split_household_id,
)
from edge.errors import HouseholdError, HouseholdNotFound

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def _household(unit: str = "1-101", **changes: Any) -> Household:
    values: dict[str, object] = {
        "community": "sunshine",
        "building": "b1",
        "floor": "1",
        "unit": unit,
        "residents": [{"name": "张桂英", "phone": "13812345678", "birth_year": 1941}],
        "living_alone": True,
        "care_level": "partial",
        "device_ids": [f"sos-{unit}", f"door-{unit}"],
        "family": [
            {"name": "李明", "relation": "儿子", "phone": "13900001111", "person_id": "li-ming"},
            {"name": "李芳", "relation": "女儿", "phone": "13900002222", "call_after_minutes": 5},
        ],
        "care_worker": {"person_id": "wang-fang", "name": "王芳", "phone": "13700003333"},
    }
    values.update(changes)
    return Household.model_validate(values)


@pytest.fixture
def store(tmp_path: Path) -> HouseholdStore:
    return HouseholdStore(tmp_path / "households.db")


def test_a_household_round_trips_with_its_chinese_names(store: HouseholdStore) -> None:
    stored = store.put(_household(), NOW)
    assert stored.id == "sunshine/b1/1-101"
    assert stored.revision == 1
    assert stored.updated_at == NOW
    again = store.get("sunshine/b1/1-101")
    assert again == stored
    assert again is not None
    assert again.residents[0] == Resident(name="张桂英", phone="13812345678", birth_year=1941)
    assert again.care_level is CareLevel.PARTIAL
    assert again.care_worker == CareWorker(person_id="wang-fang", name="王芳", phone="13700003333")


def test_the_file_is_owner_only(store: HouseholdStore) -> None:
    store.put(_household(), NOW)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_the_register_survives_a_reopen(tmp_path: Path) -> None:
    first = HouseholdStore(tmp_path / "households.db")
    first.put(_household(), NOW)
    first.close()
    second = HouseholdStore(tmp_path / "households.db")
    assert second.count() == 1
    assert second.household_of_device("sos-1-101") is not None


def test_family_is_called_soonest_first_and_never_when_not_wanted() -> None:
    household = _household(
        family=[
            {"name": "甲", "phone": "13900000001", "call_after_minutes": 15},
            {"name": "乙", "phone": "13900000002", "call_after_minutes": None},
            {"name": "丙", "phone": "13900000003", "call_after_minutes": 3},
        ]
    )
    assert [f.name for f in household.family_to_call()] == ["丙", "甲"]
    assert FamilyContact(name="丁", phone="13900000004").call_after_minutes == 10


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"unit": "1/101"}, "unit"),
        ({"residents": [{"name": "甲"}, {"name": "乙"}]}, "more than one resident"),
        ({"device_ids": ["a", "a"]}, "listed twice"),
        ({"away_reason": "住院"}, "away_reason without away_until"),
        ({"family": [{"name": "甲", "phone": "not a phone"}]}, "phone"),
        ({"care_level": "bedridden"}, "care_level"),
        ({"away_until": "2026-12-10T00:00:00"}, "away_until"),  # no time zone
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_records_are_refused_naming_the_field(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        _household(**changes)


def test_a_device_belongs_to_one_household(store: HouseholdStore) -> None:
    store.put(_household("1-101"), NOW)
    with pytest.raises(HouseholdError, match="sos-1-101 already belongs to household"):
        store.put(_household("1-102", device_ids=["sos-1-101"]), NOW)
    # moving a device: take it off the first household, then give it to the second
    store.put(_household("1-101", device_ids=["door-1-101"]), NOW)
    store.put(_household("1-102", device_ids=["sos-1-101"]), NOW)
    owner = store.household_of_device("sos-1-101")
    assert owner is not None
    assert owner.unit == "1-102"


def test_a_stale_revision_is_a_conflict(store: HouseholdStore) -> None:
    store.put(_household(), NOW, expect_revision=0)
    with pytest.raises(HouseholdError, match="changed meanwhile"):
        store.put(_household(note="x"), NOW, expect_revision=0)
    updated = store.put(_household(note="x"), NOW, expect_revision=1)
    assert updated.revision == 2


def test_lists_filter_by_community_worker_family_and_page(store: HouseholdStore) -> None:
    store.put(_household("1-101"), NOW)
    store.put(_household("1-102", care_worker=None, family=[]), NOW)
    store.put(_household("1-103", community="moonlight", device_ids=["x"]), NOW)
    assert [h.unit for h in store.list(["sunshine"])] == ["1-101", "1-102"]
    assert store.list([]) == []
    assert [h.id for h in store.list(care_worker="wang-fang")] == [
        "moonlight/b1/1-103",
        "sunshine/b1/1-101",
    ]
    assert [h.id for h in store.list(family_person="li-ming", communities=["sunshine"])] == [
        "sunshine/b1/1-101"
    ]
    first = store.list(limit=2)
    rest = store.list(after=first[-1].id)
    assert [h.id for h in first + rest] == sorted(h.id for h in store)
    assert store.count("sunshine") == 2


def test_away_until_a_date_then_back(store: HouseholdStore) -> None:
    store.put(_household(), NOW)
    until = NOW + timedelta(days=7)
    away = store.set_away("sunshine/b1/1-101", until, "住院", NOW)
    assert away.is_away(NOW)
    assert away.away_reason == "住院"
    assert [h.id for h in store.away(NOW)] == ["sunshine/b1/1-101"]
    later = until + timedelta(seconds=1)
    assert store.away(later) == []
    assert [h.id for h in store.expired_away(later)] == ["sunshine/b1/1-101"]
    back = store.set_away("sunshine/b1/1-101", None, "ignored", later)
    assert back.away_until is None
    assert back.away_reason is None
    with pytest.raises(HouseholdNotFound):
        store.set_away("sunshine/b1/9-999", until, None, NOW)


def test_delete_frees_the_devices(store: HouseholdStore) -> None:
    store.put(_household(), NOW)
    assert store.delete("sunshine/b1/1-101")
    assert not store.delete("sunshine/b1/1-101")
    assert store.household_of_device("sos-1-101") is None
    store.put(_household("1-102", device_ids=["sos-1-101"]), NOW)


def test_household_ids_split_into_three_parts() -> None:
    assert split_household_id("c/b/u") == ("c", "b", "u")
    with pytest.raises(HouseholdError, match="community/building/unit"):
        split_household_id("c/b")


def test_an_unreadable_register_is_set_aside_and_said_so(tmp_path: Path) -> None:
    path = tmp_path / "households.db"
    path.write_bytes(b"this is not a database" * 100)
    store = HouseholdStore(path)
    assert store.problem is not None
    assert "unreadable" in store.problem
    assert "restore it from a backup" in store.problem
    assert store.count() == 0
    assert list(tmp_path.glob("households.db.corrupt-*"))
    store.put(_household(), NOW)  # alarms and the register go on
    assert HouseholdStore(path).problem is None
