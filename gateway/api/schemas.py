"""The request and response models of the gateway's alert API (the error envelope: errors.py)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
)

from edge.alerts import Incident, Silence
from edge.enrich import Contact
from edge.identifier import ID_RULE, check_id
from edge.model import Alert, AlertEvent
from edge.sinks import Delivery, StoredReading
from gateway.api.untrusted_text import IDENTIFIER_PATTERN, free_text, one_line


class AwayBody(BaseModel):
    """Whether a household is away from home (kept in DATA_DIR/rules.db); with `until`, a
    household in the register is brought back on that date (and keeps the reason)."""

    away: StrictBool
    until: AwareDatetime | None = None
    reason: Annotated[str, AfterValidator(one_line)] | None = Field(default=None, max_length=200)


class AlertList(BaseModel):
    items: list[Alert]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


class AlertDetail(BaseModel):
    alert: Alert
    history: list[AlertEvent]
    deliveries: list[Delivery] = Field(
        default=[],
        description="every notification channel's attempts at the alert's events, oldest first",
    )


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # lines allowed; control and bidi characters refused (gateway.api.untrusted_text)
    note: Annotated[str, AfterValidator(free_text)] | None = Field(default=None, max_length=2000)


class AssignAction(AlertAction):
    assignee: Annotated[str, AfterValidator(one_line)] = Field(
        min_length=1, max_length=100, description="who takes the alert on"
    )


class IncidentList(BaseModel):
    items: list[Incident]


class IncidentDetail(BaseModel):
    incident: Incident
    alerts: list[Alert]


class SilenceList(BaseModel):
    items: list[Silence]


class CommunitySummary(BaseModel):
    community: str
    since: datetime
    until: datetime
    opened: int = Field(description="alerts opened in the range")
    acknowledged: int
    resolved_by_person: int
    cleared_by_device: int
    ack_p50_s: float | None = Field(description="seconds from opening to acknowledgement")
    ack_p90_s: float | None
    resolve_p50_s: float | None = Field(
        description="seconds from opening to resolution by a person"
    )
    resolve_p90_s: float | None
    open_by_severity: dict[str, int] = Field(description="open now, whenever opened")
    escalations: int = Field(description="escalated events of the alerts opened in the range")
    escalated_alerts: int


class SummaryList(BaseModel):
    items: list[CommunitySummary]


class ReadingList(BaseModel):
    items: list[StoredReading]
    # run --shards N, readings of no one known device: the shards that did not answer in time
    # (their readings are missing from `items`)
    unanswered: list[str] = []


class DeadLetterView(BaseModel):
    id: int
    topic: str
    cause: str
    detail: str
    received_at: datetime
    payload_base64: str


class DeviceView(BaseModel):
    device_id: str
    model: str
    category: str
    community: str
    building: str
    unit: str | None
    status: Literal["unknown", "online", "offline"] = Field(
        description="offline: silent past the model's heartbeat_seconds, or reported offline "
        "on its availability topic; unknown: not heard since the gateway started"
    )
    reason: str | None = Field(description="why it is offline")
    last_seen: datetime | None = Field(description="the gateway's time of its last message")
    battery: int | None = Field(description="percent, as last reported")
    battery_low: bool | None
    linkquality: int | None
    heartbeat_seconds: int | None = Field(description="the model's check-in interval")


class DeviceList(BaseModel):
    items: list[DeviceView]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


class DeviceDetail(DeviceView):
    install_date: date | None
    resident_ref: str | None = Field(
        description="the resident's reference in the property's records"
    )
    emergency_contacts: list[Contact]
    open_alerts: list[Alert]


class UnregisteredView(BaseModel):
    topic: str
    cause: Literal["unknown_topic", "unknown_device"] = Field(
        description="unknown_topic: no device profile claims it; unknown_device: a profile does "
        "but the device is not in the registry"
    )
    model: str | None
    device_id: str | None
    first_seen: datetime
    last_seen: datetime
    count: int
    detail: str
    sample_base64: str = Field(description="the start of the latest payload (512 bytes at most)")


def _iso_time(value: Any) -> Any:
    """Query times are ISO 8601 text; a bare number (epoch seconds?) is refused, not guessed."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("an ISO 8601 time is expected, e.g. 2026-12-01T08:00:00+08:00")
    return value


# the times a query may name: wide enough for any "since the beginning" or "until forever", narrow
# enough that a route's arithmetic (until - 30 days, a conversion to UTC) cannot overflow into a 500
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("time out of range (1970-01-01 to 9999-01-01 UTC)") from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError("time out of range (1970-01-01 to 9999-01-01 UTC)")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_time), AfterValidator(_in_range)]
# a query time with its zone (the central API's filters)
ZonedTime = Annotated[AwareDatetime, AfterValidator(_in_range)]

# an id in a URL path (alert, incident, silence, device, place): no control or bidi character
PathId = Annotated[str, Path(pattern=IDENTIFIER_PATTERN)]
# a device id in a URL path: the identifier rule (edge.identifier), 422 saying why
DeviceIdPath = Annotated[str, Path(description=f"a device id: {ID_RULE}"), AfterValidator(check_id)]
# a device id in a query: the same rule (422, not an empty answer that reads as "no readings")
DeviceIdQuery = Annotated[str, AfterValidator(check_id)]
