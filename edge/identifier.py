"""Identifiers: the one rule for a device id and the names of places (community, building, unit).

1 to 64 characters of `A-Z a-z 0-9 . _ : -`, the first a letter or a digit. An id travels into
time-series tags (where `,` `=` `"` and spaces are line-protocol syntax), database rows, URL paths
(`/`, `?`, `#`, `%`), MQTT topics (`+`, `#`, `/`), log lines and chat messages (control, bidi and
markup characters): the rule keeps every character that means something in one of them out, and
admits what real devices are called: MAC addresses (`a4:c1:38:0f:2e:91`), Zigbee IEEE addresses
(`0x00158d0001a2b3c4`), IMEIs, LoRaWAN DevEUIs, Tuya ids in mixed case, serial numbers
(`DS-K1T671M-20240311`). A first letter or digit rules out `.`, `..` and `-flag`; `household:` and
`building:` start the ids of place alerts, not a device's. Names in Chinese are labels, never ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

from edge.errors import InvalidId

ID_MAX_LENGTH = 64
# for schemas (pydantic, OpenAPI); `id_problem` is what checks, and says why
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
ID_RULE = "1-64 characters of A-Z a-z 0-9 . _ : -, the first a letter or a digit"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
_SHOWN = 40  # characters of a refused id quoted in a message: enough to find it, not a flood
# the device ids of place alerts (edge.rules.place: `household:1201`, `building:b02`): a device
# of that name would take a home's or a building's alerts for its own
RESERVED_PREFIXES = ("household:", "building:")


def id_problem(value: str) -> str | None:
    """Why `value` is not an identifier (naming the first bad character), or None when it is."""
    if _ID.fullmatch(value):
        if value.startswith(RESERVED_PREFIXES):
            return f"'{value.split(':', 1)[0]}:' starts the ids of place alerts"
        return None
    if not value:
        return "empty"
    if len(value) > ID_MAX_LENGTH:
        return f"{len(value):,} characters long, at most {ID_MAX_LENGTH}"
    for position, char in enumerate(value):
        if char not in _ALLOWED:
            return f"character {_show(char)} at position {position} is not allowed"
    return f"starts with {_show(value[0])}, not a letter or a digit"


def check_id(value: str) -> str:
    """`value` when it is an identifier; raises ValueError saying why not (a pydantic validator).

    The message does not quote the value: the error names the key or column, and a registry or
    household file may hold a name in the wrong column (personal data, kept out of messages)."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"not an identifier: {problem} ({ID_RULE})")
    return value


def refuse_invalid_ids(values: Mapping[str, str]) -> None:
    """Raise InvalidId naming the first of a topic's values (device_id, community, building,
    unit) that is not an identifier. Once per topic: decode remembers a topic's match."""
    for name, value in values.items():
        problem = id_problem(value)
        if problem is not None:
            raise InvalidId(f"{name} {shown(value)} in the topic: {problem} ({ID_RULE})")


def shown(value: str) -> str:
    """`value` quoted for a message or a log line: escaped (repr), and cut when long."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}..."


def _show(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})"


# Validation context for records read back from a store of the gateway's own: their ids were
# checked when written, or written before this rule, and must still load (an upgrade that could
# not read its households would stop the agent): `model_validate_json(body, context=STORED)`
STORED = {"stored": True}


def _checked(value: str, info: ValidationInfo) -> str:
    context = info.context
    if context is not None and context.get("stored") is True:
        return value
    return check_id(value)


# A model field holding a device id or a place name: refused with the reason, documented with
# the pattern (the pattern is not what checks, or pydantic's own message would win)
Identifier = Annotated[
    str,
    AfterValidator(_checked),
    Field(json_schema_extra={"pattern": ID_PATTERN, "maxLength": ID_MAX_LENGTH}),
]
