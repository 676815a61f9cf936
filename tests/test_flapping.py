"""Flapping on a FakeClock: many raises and clears in a window are noticed once, then quiet."""

from __future__ import annotations

from edge.alerts import FlapDetector
from edge.clock import FakeClock
from tests.lifecycle import CRITICAL_POLICY, SMOKE, START, book, cleared, device, raised


def test_a_flapping_key_is_notified_once_then_recorded_quietly_until_stable() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY, flaps=FlapDetector(transitions=4, window_s=300))
    smoke = device("s1", "smoke")
    notified = []
    for _ in range(5):  # raise, clear five times, 10 s apart: 10 changes in 100 s
        opened = raised(alerts, SMOKE, smoke, clock)
        clock.advance(5)
        done = cleared(alerts, SMOKE, smoke, clock)
        clock.advance(5)
        notified.append((opened.notify, opened.alert.flapping, done.notify))
    assert notified == [
        (True, False, True),
        (True, False, True),  # 4th change: flapping from here
        (True, True, True),  # the one notice; its resolution is notified too
        (False, True, False),
        (False, True, False),
    ]
    # a whole window without a change: stable, notified again
    clock.advance(300)
    again = raised(alerts, SMOKE, smoke, clock)
    assert again.notify
    assert not again.alert.flapping


def test_a_flapping_alert_that_stays_open_escalates_once_stable() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY, flaps=FlapDetector(transitions=3, window_s=60))
    smoke = device("s1", "smoke")
    raised(alerts, SMOKE, smoke, clock)
    cleared(alerts, SMOKE, smoke, clock)
    raised(alerts, SMOKE, smoke, clock)  # 3rd change: the notice
    cleared(alerts, SMOKE, smoke, clock)
    quiet = raised(alerts, SMOKE, smoke, clock)  # stays open, not notified
    assert not quiet.notify
    fired = []
    for _ in range(61):
        clock.advance(1)
        fired.extend(alerts.escalate_due())
    assert [e.tier for e in fired] == ["duty_officer"]  # held while flapping, then told


def test_the_detector_forgets_quiet_keys() -> None:
    clock = FakeClock(START)
    flaps = FlapDetector(transitions=2, window_s=10)
    flaps.record("k", clock.now())
    flaps.record("k", clock.now())
    assert flaps.is_flapping("k", clock.now())
    clock.advance(10)
    flaps.prune(clock.now())
    assert len(flaps) == 0
    assert not flaps.is_flapping("k", clock.now())
