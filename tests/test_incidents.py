"""Incidents on a FakeClock: grouping by community, building and category within a window."""

from __future__ import annotations

from pathlib import Path

from edge.alerts import AlertStore
from edge.alerts.incidents import summarize
from edge.clock import FakeClock
from edge.model import AlertStatus, Severity
from edge.rule_spec import RuleSpec
from tests.lifecycle import CONFIRMED_FIRE, SMOKE, SOS, START, book, device, raised

MAJOR_SMOKE = RuleSpec(
    id="smoke-major", summary="Smoke", severity=Severity.MAJOR, when=SMOKE.when, clear=SMOKE.clear
)
OFFLINE = RuleSpec(id="device-offline", kind="offline", summary="Offline", severity=Severity.MINOR)


def test_related_alerts_within_the_window_are_one_incident() -> None:
    clock = FakeClock(START)
    alerts = book(clock, incident_window_s=300)
    first = raised(alerts, SMOKE, device("s1", "smoke"), clock).alert
    clock.advance(120)
    second = raised(alerts, SMOKE, device("s2", "smoke"), clock).alert
    other_building = raised(alerts, SMOKE, device("s3", "smoke", building="b2"), clock).alert
    other_category = raised(alerts, SOS, device("sos-1"), clock).alert
    offline = raised(alerts, OFFLINE, device("s4", "smoke"), clock).alert
    assert first.incident_id == second.incident_id
    assert (
        len(
            {
                first.incident_id,
                other_building.incident_id,
                other_category.incident_id,
                offline.incident_id,
            }
        )
        == 4
    )
    clock.advance(301)
    late = raised(alerts, SMOKE, device("s5", "smoke"), clock).alert
    assert late.incident_id != first.incident_id


def test_a_resolved_incident_is_not_joined_again() -> None:
    clock = FakeClock(START)
    alerts = book(clock)
    first = raised(alerts, SOS, device("sos-1"), clock).alert
    alerts.resolve(first.id, "officer")
    again = raised(alerts, SOS, device("sos-2"), clock).alert
    assert again.incident_id != first.incident_id


def test_a_confirmed_fire_joins_the_buildings_smoke_incident_and_raises_its_severity(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START)
    alerts = book(clock, incident_window_s=60)
    store = AlertStore(tmp_path / "alerts.db")
    events = [raised(alerts, MAJOR_SMOKE, device("s1", "smoke"), clock)]
    clock.advance(30)
    events.append(raised(alerts, MAJOR_SMOKE, device("s2", "smoke"), clock))
    store.apply(events)
    incident_id = events[0].alert.incident_id
    assert incident_id is not None
    found = store.incident(incident_id)
    assert found is not None
    assert found[0].severity == Severity.MAJOR
    clock.advance(600)  # well past the window: a building-level alert joins anyway
    fire = raised(alerts, CONFIRMED_FIRE, device("building:b1", "smoke"), clock)
    store.apply([fire])
    assert fire.alert.incident_id == incident_id
    found = store.incident(incident_id)
    assert found is not None
    incident, members = found
    assert incident.severity == Severity.CRITICAL
    assert (incident.alert_count, incident.open_alerts) == (3, 3)
    assert incident.devices == ["building:b1", "s1", "s2"]
    assert [a.device_id for a in members] == ["s1", "s2", "building:b1"]


def test_incident_status_follows_its_alerts() -> None:
    clock = FakeClock(START)
    alerts = book(clock)
    a = raised(alerts, SOS, device("sos-1"), clock).alert
    b = raised(alerts, SOS, device("sos-2"), clock).alert
    assert a.incident_id == b.incident_id
    assert a.incident_id is not None
    ack = alerts.acknowledge(a.id, "x").alert
    assert summarize(a.incident_id, [ack, b]).status == AlertStatus.ACTIVE
    ack_b = alerts.acknowledge(b.id, "x").alert
    assert summarize(a.incident_id, [ack, ack_b]).status == AlertStatus.ACKNOWLEDGED
    assert alerts.in_incident(a.incident_id) == [ack, ack_b]


def test_open_incidents_survive_a_restart() -> None:
    clock = FakeClock(START)
    alerts = book(clock)
    first = raised(alerts, SOS, device("sos-1"), clock).alert
    restored = book(clock, open_alerts=alerts.open_alerts())
    clock.advance(10)
    assert raised(restored, SOS, device("sos-2"), clock).alert.incident_id == first.incident_id
