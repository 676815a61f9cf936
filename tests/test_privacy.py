"""Masking of personal data, and who sees it unmasked."""

from __future__ import annotations

import pytest

from gateway.privacy import mask_name, mask_payload, mask_phone, mask_text, sees_personal_data
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


def test_a_json_payload_keeps_its_codes_and_numbers_and_masks_people() -> None:
    payload = '{"action":"emergency","battery":80,"note":"李四 13912345678","ts":"2026-03-01T08:00:00Z","zone":"IAS_ZONE"}'
    masked = mask_payload(payload.encode()).decode()
    assert masked == (
        '{"action":"emergency","battery":80,"note":"李************8",'
        '"ts":"2026-03-01T08:00:00Z","zone":"IAS_ZONE"}'
    )


def test_a_payload_sample_cut_inside_a_character_is_still_masked() -> None:
    cut = "not json: 王五 13712345678 ".encode()[:-1] + "赵".encode()[:2]
    masked = mask_payload(cut).decode()
    assert "王五" not in masked
    assert "13712345678" not in masked
    assert masked.startswith("not json: 王* 137****5678")


def test_a_payload_with_nothing_personal_passes_byte_for_byte() -> None:
    payload = b'{"battery": 60,  "action": "single"}'
    assert mask_payload(payload) is payload


def test_a_binary_frame_passes_unchanged() -> None:
    frame = bytes([0x01, 0xFF, 0x80, 0x00, 0x7F])
    assert mask_payload(frame) == frame


def test_free_text_masks_names_and_phones() -> None:
    text = "field 'battery' = '张三丰 13812345678' is not a number"
    assert mask_text(text) == "field 'battery' = '张*丰 138****5678' is not a number"
