"""Rules: the default rules raise and clear what a community expects, with three-valued logic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.decode import ProfileRegistry, default_profile_dir
from edge.model import DeviceRef, FieldValue, Reading
from edge.rule_spec import Condition
from edge.rules import RuleEngine
from edge.rules.engine import evaluate_condition

PROFILES = ProfileRegistry.load(default_profile_dir())
ENGINE = RuleEngine(PROFILES)
AT = datetime(2026, 11, 23, tzinfo=UTC)


def _reading(model: str, **fields: FieldValue) -> Reading:
    profile = PROFILES.get(model)
    device = DeviceRef(
        device_id="d1", model=model, category=profile.category, community="c1", building="b1"
    )
    return Reading(device=device, fields=fields, at=AT, received_at=AT)


def _verdicts(model: str, **fields: FieldValue) -> set[tuple[str, str]]:
    return {(v.rule.id, v.action) for v in ENGINE.evaluate(_reading(model, **fields))}


def test_smoke_raises_critical() -> None:
    verdicts = ENGINE.evaluate(_reading("zigbee-ias-smoke", smoke=True, test=False))
    assert [(v.rule.id, v.action, v.rule.severity.value) for v in verdicts] == [
        ("smoke", "raise", "critical")
    ]


def test_a_self_test_is_not_a_fire() -> None:
    assert ("smoke", "raise") not in _verdicts("zigbee-ias-smoke", smoke=True, test=True)


def test_smoke_clears_when_the_detector_reports_clear() -> None:
    assert ("smoke", "clear") in _verdicts("zigbee-ias-smoke", smoke=False)


def test_sos_press_raises_and_a_battery_report_does_not_clear_it() -> None:
    assert ("sos", "raise") in _verdicts("tuya-sos-button", action="emergency")
    assert _verdicts("tuya-sos-button", battery=80.0) == {("low-battery", "clear")}


def test_low_battery_has_hysteresis() -> None:
    assert _verdicts("tuya-sos-button", battery=15.0) == {("low-battery", "raise")}
    assert _verdicts("tuya-sos-button", battery=22.0) == set()  # between the two thresholds
    assert _verdicts("tuya-sos-button", battery=30.0) == {("low-battery", "clear")}


def test_fall_is_critical_and_not_cleared_by_the_radar() -> None:
    # the possible fall is not cleared but superseded by the alert book (test_superseded.py)
    assert _verdicts("tuya-fall-radar", fall_state="fall") == {("fall", "raise")}
    assert ("fall", "clear") not in _verdicts("tuya-fall-radar", fall_state="none")
    assert ("possible-fall", "clear") in _verdicts("tuya-fall-radar", fall_state="none")


def test_door_forced_is_major() -> None:
    verdicts = ENGINE.evaluate(_reading("hikvision-access-controller", event="door_forced"))
    assert [(v.rule.id, v.rule.severity.value) for v in verdicts] == [("door-forced", "major")]


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        ({"field": "a", "gt": 1}, {"a": 2}, True),
        ({"field": "a", "gt": 1}, {}, None),
        ({"field": "a", "gt": 1}, {"a": True}, False),  # a boolean is no number
        ({"field": "a", "eq": 1}, {"a": True}, False),
        ({"field": "a", "in": ["x", "y"]}, {"a": "y"}, True),
        ({"field": "a", "present": False}, {}, True),
        ({"all": [{"field": "a", "eq": 1}, {"field": "b", "eq": 2}]}, {"a": 1}, None),
        ({"all": [{"field": "a", "eq": 1}, {"field": "b", "eq": 2}]}, {"a": 0}, False),
        ({"any": [{"field": "a", "eq": 1}, {"field": "b", "eq": 2}]}, {"a": 1}, True),
        ({"not": {"field": "a", "eq": 1}}, {}, None),
        ({"not": {"field": "a", "eq": 1}}, {"a": 2}, True),
    ],
)
def test_condition_logic(
    condition: dict[str, object], fields: dict[str, FieldValue], expected: bool | None
) -> None:
    assert evaluate_condition(Condition.model_validate(condition), fields) is expected
