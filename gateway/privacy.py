"""Personal data minimised by role: responders see it, others see it masked.

Residents' names, phone numbers, unit numbers and emergency contacts go in full only to the roles
that respond to an alert in that community (duty officer, property manager). A platform (district
or city), an admin and an edge agent see masked values: 张*丰, 138****5678, the building but not
the unit.
"""

from __future__ import annotations

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
