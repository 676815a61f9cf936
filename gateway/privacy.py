"""Personal data minimised by role: responders see it, others see it masked.

Residents' names, phone numbers, unit numbers and emergency contacts go in full only to the roles
that respond to an alert in that community (duty officer, property manager). A platform (district
or city), an admin and an edge agent see masked values: 张*丰, 138****5678, the building but not
the unit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.tokens import Principal, Role

RESPONDERS = frozenset({Role.DUTY_OFFICER, Role.PROPERTY_MANAGER})


def sees_personal_data(principal: Principal, community: str) -> bool:
    """Whether the caller may read personal data of `community` unmasked."""
    return principal.role in RESPONDERS and principal.may_see(community)


def mask_name(name: str) -> str:
    """张三丰 -> 张*丰, 李四 -> 李*, Li Na -> L***a: first and last character kept."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678: the first three and last four digits kept."""
    digits = [i for i, ch in enumerate(phone) if ch.isdigit()]
    if len(digits) <= 7:
        return "*" * len(phone)
    hidden = set(digits[3:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(phone))


# a vendor code or enum value ("emergency", "IAS_ZONE", "v1.2.0", "0x1a"): kept, it names no one
_CODE = re.compile(r"[A-Za-z0-9_.:+\-]{1,40}")
_LONG_DIGITS = re.compile(r"\d{7,}")
# in text that is not JSON: runs of CJK characters (names) and of seven digits or more (phones,
# ID numbers) are masked; the rest (keys, codes, short numbers) stays readable
_PERSONAL_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|\d{7,}")


def mask_payload(payload: bytes) -> bytes:
    """A raw device payload with what may name or reach a person masked, for non-responders.

    JSON keeps its keys, numbers, booleans and code-like strings; any other string (a name, a
    phone number, free text) is masked like a name. Text that is not JSON has its CJK runs and long
    digit runs masked. Binary frames (not UTF-8) are device codes and pass unchanged.
    """
    text = _as_text(payload)
    if text is None:
        return payload
    try:
        document = json.loads(text)
    except ValueError:
        return _PERSONAL_RUN.sub(lambda m: _mask_run(m.group()), text).encode()
    masked = _mask_json(document)
    if masked == document:
        return payload  # nothing personal: the payload as the device sent it
    return json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode()


def _as_text(payload: bytes) -> str | None:
    """The payload as text, also when a sample cut it inside a multi-byte character."""
    for cut in range(4):
        try:
            return payload[: len(payload) - cut].decode()
        except UnicodeDecodeError:
            continue
    return None


def mask_text(text: str) -> str:
    """Free text (a dead letter's reason quoting a payload value) with names and phones masked."""
    return _PERSONAL_RUN.sub(lambda m: _mask_run(m.group()), text)


def _mask_run(run: str) -> str:
    return mask_phone(run) if run.isdigit() else mask_name(run)


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _mask_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_json(item) for item in value]
    if isinstance(value, str):
        if _CODE.fullmatch(value) and not _LONG_DIGITS.search(value):
            return value
        return mask_name(value)
    return value
