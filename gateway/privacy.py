"""Personal data minimised by role: responders see it, others see it masked.

Residents' names, phone numbers, unit numbers and emergency contacts go in full only to the roles
that respond to an alert in that community (duty officer, property manager). A platform (district
or city), an admin and an edge agent see masked values: 张*丰, 138****5678, the building but not
the unit.

The unit also hides in identifiers the agent builds from places: a household rule's alert has the
device `household:<unit>` and the key `<rule>|<community>/<building>/household:<unit>`, and an
incident lists its alerts' devices. One rule for all of them: for a masked caller the unit in a
place identifier becomes the household's pseudonym (`Pseudonyms`), `household:h-<12 hex>`, the
same in alerts, keys, incidents, streams and exports, stable across requests and restarts, one per
household, and not reversible without the deployment's key (kept in tokens.db).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from edge.alerts import Incident
from edge.model import Alert
from gateway.tokens import Principal, Role

RESPONDERS = frozenset({Role.DUTY_OFFICER, Role.PROPERTY_MANAGER})


def sees_personal_data(principal: Principal, community: str) -> bool:
    """Whether the caller may read personal data of `community` unmasked."""
    return principal.role in RESPONDERS and principal.may_see(community)


# the device id edge.rules.place gives a household rule's alerts: `household:<unit>`
_HOUSEHOLD = "household:"


class Pseudonyms:
    """Opaque, stable stand-ins for units in place identifiers (HMAC-SHA256 under a secret key)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonym key needs at least 16 bytes")
        self._key = key

    def unit(self, community: str, building: str, unit: str) -> str:
        """The household's pseudonym: `h-` and 12 hex digits, the same for the same household."""
        place = f"{community}/{building}/{unit}".encode()
        return "h-" + hmac.new(self._key, place, hashlib.sha256).hexdigest()[:12]

    def device_id(self, community: str, building: str, device_id: str) -> str:
        """`household:<unit>` with the unit replaced by its pseudonym; other ids unchanged."""
        if not device_id.startswith(_HOUSEHOLD):
            return device_id
        unit = device_id[len(_HOUSEHOLD) :]
        return _HOUSEHOLD + self.unit(community, building, unit)

    def alert(self, alert: Alert) -> Alert:
        """The alert's device id and key without the unit (its `unit` field is the caller's)."""
        device_id = self.device_id(alert.community, alert.building, alert.device_id)
        if device_id == alert.device_id:
            return alert
        key = alert.key
        if key.endswith("/" + alert.device_id):  # <rule>|<community>/<building>/<device id>
            key = key[: -len(alert.device_id)] + device_id
        return alert.model_copy(update={"device_id": device_id, "key": key})

    def incident(self, incident: Incident) -> Incident:
        """The incident with its devices' place identifiers pseudonymous."""
        devices = [
            self.device_id(incident.community, incident.building, d) for d in incident.devices
        ]
        if devices == incident.devices:
            return incident
        return incident.model_copy(update={"devices": devices})


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
