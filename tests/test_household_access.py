"""Who sees which household and how much of it (gateway.household_access), without an API."""

from __future__ import annotations

import pytest

from edge.enrich import Household
from gateway.household_access import (
    list_filter,
    may_keep,
    may_visit,
    sees_household,
    sees_in_full,
    shown,
)
from gateway.privacy import Pseudonyms
from gateway.tokens import Principal, Role

PLACES = Pseudonyms(b"k" * 32)
HOUSEHOLD = Household.model_validate(
    {
        "community": "a",
        "building": "b1",
        "floor": "12",
        "unit": "12-1201",
        "residents": [{"name": "张桂英", "phone": "13812345678"}],
        "family": [{"name": "李明", "phone": "13900001111", "person_id": "li-ming"}],
        "care_worker": {"person_id": "wang-fang", "name": "王芳", "phone": "13700003333"},
        "away_until": "2026-12-24T00:00:00+08:00",
        "away_reason": "住院",
        "note": "耳背",
    }
)


def _who(role: Role, person: str | None = None, communities: str = "a") -> Principal:
    return Principal("t", role, frozenset(communities.split(",")), person)


@pytest.mark.parametrize(
    ("principal", "sees", "full", "keeps", "visits"),
    [
        (_who(Role.DUTY_OFFICER), True, True, False, True),
        (_who(Role.PROPERTY_MANAGER), True, True, True, True),
        (_who(Role.ADMIN), True, False, True, False),
        (_who(Role.PLATFORM), True, False, False, False),
        (_who(Role.EDGE_AGENT), False, False, False, False),
        (_who(Role.CARE_WORKER, "wang-fang"), True, True, False, True),
        (_who(Role.CARE_WORKER, "li-hua"), False, False, False, False),
        (_who(Role.CARE_WORKER, None), False, False, False, False),  # tokens.db edited by hand
        (_who(Role.FAMILY, "li-ming"), True, True, False, False),
        (_who(Role.FAMILY, "wang-fang"), False, False, False, False),
        (_who(Role.FAMILY, None), False, False, False, False),
        (_who(Role.PROPERTY_MANAGER, communities="b"), False, False, False, False),
        (_who(Role.CARE_WORKER, "wang-fang", communities="b"), False, False, False, False),
    ],
)
def test_the_rules(principal: Principal, sees: bool, full: bool, keeps: bool, visits: bool) -> None:
    assert sees_household(principal, HOUSEHOLD) is sees
    assert sees_in_full(principal, HOUSEHOLD) is full
    assert may_keep(principal, "a") is keeps
    assert may_visit(principal, HOUSEHOLD) is visits


def test_lists_of_care_roles_are_narrowed_even_without_a_person() -> None:
    assert list_filter(_who(Role.CARE_WORKER, "wang-fang")) == {"care_worker": "wang-fang"}
    assert list_filter(_who(Role.CARE_WORKER)) == {"care_worker": ""}
    assert list_filter(_who(Role.FAMILY)) == {"family_person": ""}
    assert list_filter(_who(Role.PLATFORM)) == {}


def test_a_masked_household_keeps_nothing_that_names_or_reaches_a_person() -> None:
    masked = shown(_who(Role.PLATFORM), HOUSEHOLD, PLACES)
    text = masked.model_dump_json()
    for secret in ("张桂英", "13812345678", "李明", "13900001111", "li-ming", "13700003333"):
        assert secret not in text
    for secret in ("12-1201", "住院", "耳背"):
        assert secret not in text
    assert masked.unit == PLACES.unit("a", "b1", "12-1201")
    assert masked.floor is None
    assert masked.residents[0].name == "张*英"
    assert masked.care_worker is not None
    assert masked.care_worker.name == "王芳"  # staff, named on every visit
    assert masked.away_until == HOUSEHOLD.away_until  # that it is away, not why
    assert shown(_who(Role.DUTY_OFFICER), HOUSEHOLD, PLACES) is HOUSEHOLD
