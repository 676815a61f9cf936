"""Silences on a FakeClock: matchers, spans, recurring windows; a silenced alert is recorded quietly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from edge.alerts import SilenceBook, SilenceSpec, new_silence
from edge.alerts.silences import Recurrence
from edge.clock import FakeClock
from edge.model import AlertEventKind, Severity
from tests.lifecycle import CRITICAL_POLICY, SMOKE, SOS, START, book, cleared, device, raised


def _silence(clock: FakeClock, minutes: int = 60, **match: object) -> SilenceBook:
    spec = SilenceSpec(
        ends_at=clock.now() + timedelta(minutes=minutes),
        reason="maintenance",
        **match,
    )
    return SilenceBook([new_silence(spec, "officer-7", clock.now())])


def test_a_silenced_alert_is_recorded_not_notified_and_its_resolution_not_either() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY, silences=_silence(clock, building="b1", rule="smoke"))
    opened = raised(alerts, SMOKE, device("s1", "smoke"), clock)
    assert opened.kind == AlertEventKind.OPENED
    assert (opened.notify, opened.alert.notified) == (False, False)
    assert opened.alert.silenced_by is not None
    assert "maintenance" in (opened.note or "")
    done = cleared(alerts, SMOKE, device("s1", "smoke"), clock)
    assert (done.kind, done.notify) == (AlertEventKind.RESOLVED, False)


def test_only_matching_alerts_are_silenced() -> None:
    clock = FakeClock(START)
    alerts = book(clock, silences=_silence(clock, device_id="s1", severity=Severity.CRITICAL))
    assert not raised(alerts, SMOKE, device("s1", "smoke"), clock).notify
    assert raised(alerts, SMOKE, device("s2", "smoke"), clock).notify
    assert raised(alerts, SOS, device("s3", building="b2"), clock).notify


def test_a_silence_that_ends_while_the_alert_is_open_lets_its_first_tier_hear_of_it() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY, silences=_silence(clock, minutes=10, rule="sos"))
    opened = raised(alerts, SOS, device("sos-1"), clock)
    assert not opened.notify
    fired = []
    for _ in range(600):  # the silence holds every step for ten minutes
        clock.advance(1)
        fired.extend(alerts.escalate_due())
    assert [e.tier for e in fired] == ["duty_officer"]
    assert fired[0].notify
    assert fired[0].alert.notified
    assert alerts.resolve(opened.alert.id, "officer-7").notify  # now it was notified


def test_an_alert_opened_before_a_silence_does_not_escalate_during_it() -> None:
    clock = FakeClock(START)
    silences = SilenceBook()
    alerts = book(clock, CRITICAL_POLICY, silences=silences)
    raised(alerts, SOS, device("sos-1"), clock)
    for silence in _silence(clock, minutes=5, community="c1", rule="sos")._by_id.values():
        silences.put(silence)
    clock.advance(200)
    assert alerts.escalate_due() == []  # property manager is due but held
    clock.advance(100)  # silence over at 300 s
    assert [e.tier for e in alerts.escalate_due()] == ["property_manager"]


def test_a_monthly_drill_window_in_local_time() -> None:
    drill = Recurrence(
        every="month", day=1, start="10:00", duration_s=3600, timezone="Asia/Shanghai"
    )
    assert drill.covers(datetime(2026, 4, 1, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    assert drill.covers(datetime(2026, 4, 1, 2, 59, tzinfo=UTC))
    assert not drill.covers(datetime(2026, 4, 1, 3, 0, tzinfo=UTC))
    assert not drill.covers(datetime(2026, 4, 2, 2, 30, tzinfo=UTC))
    assert not drill.covers(datetime(2026, 4, 1, 1, 59, tzinfo=UTC))


def test_weekly_and_daily_windows_across_midnight() -> None:
    sunday_night = Recurrence(every="week", day=6, start="23:30", duration_s=3600)
    assert sunday_night.covers(datetime(2026, 3, 8, 23, 45, tzinfo=UTC))  # Sunday
    assert sunday_night.covers(datetime(2026, 3, 9, 0, 15, tzinfo=UTC))  # into Monday
    assert not sunday_night.covers(datetime(2026, 3, 9, 23, 45, tzinfo=UTC))
    nightly = Recurrence(every="day", start="02:00", duration_s=600)
    assert nightly.covers(datetime(2026, 7, 9, 2, 5, tzinfo=UTC))
    assert not nightly.covers(datetime(2026, 7, 9, 2, 10, tzinfo=UTC))


def test_a_recurring_silence_holds_only_inside_its_windows() -> None:
    clock = FakeClock(datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
    spec = SilenceSpec(
        community="c1",
        rule="smoke",  # a drill names the alarm it sets off: a life-safety alarm needs that
        recurrence=Recurrence(every="month", day=1, start="10:00", duration_s=3600),
        reason="monthly fire drill",
    )
    alerts = book(clock, silences=SilenceBook([new_silence(spec, "manager", clock.now())]))
    assert raised(alerts, SMOKE, device("s1", "smoke"), clock).notify  # 09:00
    clock.advance(3600)
    assert not raised(alerts, SMOKE, device("s2", "smoke"), clock).notify  # 10:00
    clock.advance(3600)
    assert raised(alerts, SMOKE, device("s3", "smoke"), clock).notify  # 11:00


def test_a_maintenance_silence_does_not_hold_a_life_safety_alarm() -> None:
    # rules of reach: an SOS, a fall or smoke ignores silences not written for it
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY, silences=_silence(clock, building="b1"))
    assert raised(alerts, SOS, device("sos-1"), clock).notify
    assert raised(alerts, SMOKE, device("s1", "smoke"), clock).notify
    assert raised(alerts, SMOKE, device("door-1", "door"), clock).notify is False
    named = book(clock, CRITICAL_POLICY, silences=_silence(clock, device_id="sos-2"))
    assert raised(named, SOS, device("sos-2"), clock).notify is False  # written for it


def test_an_expired_silence_no_longer_holds() -> None:
    clock = FakeClock(START)
    silences = _silence(clock, community="c1")
    alerts = book(clock, silences=silences)
    (silence,) = silences._by_id.values()
    silences.put(silence.model_copy(update={"expired_at": clock.now()}))
    assert raised(alerts, SMOKE, device("s1", "smoke"), clock).notify


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"reason": "x", "ends_at": START}, "at least one matcher"),
        ({"reason": "x", "community": "c1"}, "needs ends_at"),
        ({"reason": "x", "community": "c1", "starts_at": START, "ends_at": START}, "after"),
    ],
)
def test_invalid_silences_are_refused(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SilenceSpec(**fields)


def test_invalid_recurrences_are_refused() -> None:
    with pytest.raises(ValidationError, match="day 1-31"):
        Recurrence(every="month", start="10:00", duration_s=60)
    with pytest.raises(ValidationError, match="unknown timezone"):
        Recurrence(every="day", start="10:00", duration_s=60, timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        Recurrence(every="day", start="25:00", duration_s=60)
