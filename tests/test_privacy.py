"""Masking of personal data, and who sees it unmasked."""

from __future__ import annotations

import pytest

from gateway.privacy import mask_name, mask_phone, sees_personal_data
from gateway.tokens import Principal, Role


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三丰", "张*丰"), ("李四", "李*"), ("王", "*"), ("Li Na", "L***a"), ("欧阳修文", "欧**文")],
)
def test_names_keep_their_first_and_last_character(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138 1234 5678", "+86 1** **** 5678"),
        ("1234567", "*******"),
    ],
)
def test_phones_keep_three_leading_and_four_trailing_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("role", "communities", "community", "sees"),
    [
        (Role.DUTY_OFFICER, {"a"}, "a", True),
        (Role.PROPERTY_MANAGER, {"a"}, "a", True),
        (Role.PROPERTY_MANAGER, {"a"}, "b", False),  # not their community
        (Role.PLATFORM, {"*"}, "a", False),
        (Role.ADMIN, {"*"}, "a", False),
        (Role.EDGE_AGENT, {"a"}, "a", False),
    ],
)
def test_only_responders_of_the_community_see_personal_data(
    role: Role, communities: set[str], community: str, sees: bool
) -> None:
    principal = Principal("t1", role, frozenset(communities))
    assert sees_personal_data(principal, community) is sees
