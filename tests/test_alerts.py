"""The alert lifecycle: one open alert per rule and device, explicit transitions, events with ids."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from edge.alerts import AlertBook
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.errors import AlertNotFound, AlertTransitionError
from edge.model import AlertEventKind, AlertStatus, DeviceRef, FieldValue, Reading
from edge.rules import RuleEngine

PROFILES = ProfileRegistry.load(default_profile_dir())
ENGINE = RuleEngine(PROFILES)


_SENT = itertools.count()


def _apply(
    book: AlertBook, device_id: str, at: datetime | None = None, **fields: FieldValue
) -> list[AlertEventKind]:
    device = DeviceRef(
        device_id=device_id,
        model="zigbee-ias-smoke",
        category="smoke",
        community="c1",
        building="b1",
    )
    at = at or datetime(2026, 11, 23, tzinfo=UTC) + timedelta(seconds=next(_SENT))
    reading = Reading(device=device, fields=fields, at=at, received_at=at)
    events = [book.apply(v) for v in ENGINE.evaluate(reading)]
    return [e.kind for e in events if e is not None]


def test_repeat_updates_the_open_alert_instead_of_opening_another() -> None:
    book = AlertBook(FakeClock())
    assert _apply(book, "s1", smoke=True) == [AlertEventKind.OPENED]
    assert _apply(book, "s1", smoke=True) == [AlertEventKind.REPEATED]
    assert len(book) == 1
    assert book.open_alerts()[0].count == 2
    assert _apply(book, "s2", smoke=True) == [AlertEventKind.OPENED]
    assert len(book) == 2


def test_device_clearing_resolves_and_a_new_alarm_opens_a_new_alert() -> None:
    book = AlertBook(FakeClock())
    _apply(book, "s1", smoke=True)
    first = book.open_alerts()[0].id
    assert _apply(book, "s1", smoke=False) == [AlertEventKind.RESOLVED]
    assert len(book) == 0
    _apply(book, "s1", smoke=True)
    assert book.open_alerts()[0].id != first


def test_acknowledge_then_resolve_records_who_and_when() -> None:
    clock = FakeClock()
    book = AlertBook(clock)
    _apply(book, "s1", smoke=True)
    alert_id = book.open_alerts()[0].id
    clock.advance(30)
    ack = book.acknowledge(alert_id, "officer-7", "on my way")
    assert ack.alert.status == AlertStatus.ACKNOWLEDGED
    assert ack.alert.acknowledged_by == "officer-7"
    assert ack.alert.acknowledged_at == clock.now()
    with pytest.raises(AlertTransitionError):
        book.acknowledge(alert_id, "officer-8")
    done = book.resolve(alert_id, "officer-7", "false alarm: cooking")
    assert done.alert.status == AlertStatus.RESOLVED
    assert done.id != ack.id
    with pytest.raises(AlertNotFound):
        book.resolve(alert_id, "officer-7")


def test_restored_book_keeps_open_alerts_only() -> None:
    book = AlertBook(FakeClock())
    _apply(book, "s1", smoke=True)
    _apply(book, "s2", smoke=True)
    resolved = book.resolve(book.open_alerts()[0].id, "x").alert
    restored = AlertBook(FakeClock(), [*book.open_alerts(), resolved])
    assert len(restored) == 1


def test_a_redelivered_message_does_not_count_as_a_repeat() -> None:
    book = AlertBook(FakeClock())
    at = datetime(2026, 11, 23, 1, tzinfo=UTC)
    assert _apply(book, "s1", at=at, smoke=True) == [AlertEventKind.OPENED]
    assert _apply(book, "s1", at=at, smoke=True) == []  # QoS 1 redelivery: same device time
    assert book.open_alerts()[0].count == 1


def test_the_same_device_id_in_two_communities_gets_two_alerts() -> None:
    book = AlertBook(FakeClock())
    at = datetime(2026, 11, 23, 2, tzinfo=UTC)
    for community in ("a", "b"):
        device = DeviceRef(
            device_id="sos-1",
            model="tuya-sos-button",
            category="sos",
            community=community,
            building="b1",
        )
        reading = Reading(device=device, fields={"action": "emergency"}, at=at, received_at=at)
        kinds = [book.apply(v) for v in ENGINE.evaluate(reading)]
        assert [k.kind for k in kinds if k is not None] == [AlertEventKind.OPENED]
    assert sorted(a.community for a in book.open_alerts()) == ["a", "b"]
