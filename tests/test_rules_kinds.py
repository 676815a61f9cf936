"""Rule kinds on a fake clock: holds, counts, two-stage confirmation, absence, correlation,
schedules, overrides, life safety, and state that survives a new engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from edge.alerts import AlertBook
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.errors import RuleError
from edge.model import DeviceRef, FieldValue, Reading
from edge.rule_spec import RuleSpec
from edge.rules import (
    CommunityRules,
    RuleEngine,
    RuleStateStore,
    Verdict,
    default_rules_file,
    load_rules_file,
)

PROFILES = ProfileRegistry.load(default_profile_dir())
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 08:00 in Asia/Shanghai


def _device(
    model: str, device_id: str = "d1", building: str = "b1", unit: str | None = "0801"
) -> DeviceRef:
    return DeviceRef(device_id, model, PROFILES.get(model).category, "c1", building, unit)


def _reading(device: DeviceRef, at: datetime, **fields: FieldValue) -> Reading:
    return Reading(device=device, fields=fields, at=at, received_at=at)


def _ids(verdicts: list[Verdict]) -> list[tuple[str, str]]:
    return [(v.rule.id, v.action) for v in verdicts]


def _rules(tmp_path: Path, text: str) -> CommunityRules:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_rules_file(path, PROFILES)


def test_door_held_open_raises_after_two_minutes_and_clears_on_close() -> None:
    engine = RuleEngine(PROFILES)
    door = _device("zigbee-door-contact")
    assert _ids(engine.evaluate(_reading(door, T0, open=True))) == []
    assert engine.tick(T0 + timedelta(seconds=119)) == []
    assert _ids(engine.tick(T0 + timedelta(seconds=120))) == [("door-held-open", "raise")]
    assert engine.tick(T0 + timedelta(seconds=200)) == []  # raised once
    closed = engine.evaluate(_reading(door, T0 + timedelta(seconds=201), open=False))
    assert _ids(closed) == [("door-held-open", "clear")]


def test_a_door_closed_in_time_raises_nothing() -> None:
    engine = RuleEngine(PROFILES)
    door = _device("zigbee-door-contact")
    engine.evaluate(_reading(door, T0, open=True))
    engine.evaluate(_reading(door, T0 + timedelta(seconds=60), open=False))
    assert engine.tick(T0 + timedelta(seconds=600)) == []


def test_five_denied_swipes_at_one_door_in_a_minute_raise_once() -> None:
    engine = RuleEngine(PROFILES)
    acc = _device("hikvision-access-controller", unit=None)
    raised = []
    for i in range(7):
        raised += engine.evaluate(
            _reading(acc, T0 + timedelta(seconds=10 * i), event="denied", door=1)
        )
    assert _ids(raised) == [("denied-swipes", "raise")]
    assert raised[0].reading.at == T0 + timedelta(seconds=40)  # the fifth


def test_denied_swipes_spread_out_or_at_two_doors_raise_nothing() -> None:
    engine = RuleEngine(PROFILES)
    acc = _device("hikvision-access-controller", unit=None)
    verdicts = []
    for i in range(8):  # one every 20 s: never five within 60 s
        verdicts += engine.evaluate(
            _reading(acc, T0 + timedelta(seconds=20 * i), event="denied", door=1)
        )
    for i in range(4):
        for door in (2, 3):
            verdicts += engine.evaluate(
                _reading(acc, T0 + timedelta(seconds=i), event="denied", door=door)
            )
    assert verdicts == []


def test_a_maybe_fall_becomes_a_fall_unless_withdrawn() -> None:
    engine = RuleEngine(PROFILES)
    radar = _device("tuya-fall-radar")
    first = engine.evaluate(_reading(radar, T0, fall_state="maybe_fall"))
    assert _ids(first) == [("possible-fall", "raise")]
    assert engine.tick(T0 + timedelta(seconds=59)) == []
    raised = engine.tick(T0 + timedelta(seconds=60))
    assert [(v.rule.id, v.action, v.rule.severity.value) for v in raised] == [
        ("fall", "raise", "critical")
    ]
    other = _device("tuya-fall-radar", "d2")
    engine.evaluate(_reading(other, T0, fall_state="maybe_fall"))
    engine.evaluate(_reading(other, T0 + timedelta(seconds=20), fall_state="none"))
    assert engine.tick(T0 + timedelta(seconds=600)) == []


def test_a_confirmed_fall_raises_in_the_same_evaluation() -> None:
    engine = RuleEngine(PROFILES)
    radar = _device("tuya-fall-radar")
    engine.evaluate(_reading(radar, T0, fall_state="maybe_fall"))
    now = engine.evaluate(_reading(radar, T0 + timedelta(seconds=5), fall_state="fall"))
    # the fall only: the alert book closes the possible fall as superseded (test_superseded.py)
    assert _ids(now) == [("fall", "raise")]
    assert engine.tick(T0 + timedelta(seconds=600)) == []  # not raised twice


ABSENCE = """
timezone: Asia/Shanghai
rules:
  - id: no-activity
    kind: absence
    summary: No activity
    severity: major
    quiet_hours: 2
    window: {from: "07:00", to: "22:00"}
    households: ["c1/b2/1201"]
    signals:
      - {name: door, categories: [door], when: {field: open, present: true}}
      - {name: motion, categories: [motion], when: {field: motion, eq: true}}
"""


def test_absence_raises_once_for_a_quiet_household_and_clears_on_activity(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path, ABSENCE))
    pir = _device("zigbee-pir-motion", building="b2", unit="1201")
    engine.tick(T0)  # 08:00 local: watching starts
    assert engine.evaluate(_reading(pir, T0 + timedelta(minutes=30), motion=False)) == []  # no sign
    assert engine.tick(T0 + timedelta(hours=1, minutes=59)) == []
    raised = engine.tick(T0 + timedelta(hours=2))
    assert [(v.rule.id, v.action, v.reading.device.device_id) for v in raised] == [
        ("no-activity", "raise", "household:1201")
    ]
    assert engine.tick(T0 + timedelta(hours=5)) == []
    back = engine.evaluate(_reading(pir, T0 + timedelta(hours=5), motion=True))
    assert _ids(back) == [("no-activity", "clear")]


def test_absence_counts_only_inside_the_daily_window(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path, ABSENCE))
    night = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # 23:00 local
    engine.tick(night)
    assert engine.tick(night + timedelta(hours=7, minutes=59)) == []  # 06:59 local: outside
    assert engine.tick(night + timedelta(hours=9, minutes=59)) == []  # 08:59: window opened 07:00
    assert len(engine.tick(night + timedelta(hours=10))) == 1  # 09:00: two quiet window hours


def test_an_away_household_raises_nothing_and_its_alert_clears(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path, ABSENCE))
    engine.tick(T0)
    assert len(engine.tick(T0 + timedelta(hours=2))) == 1
    cleared = engine.set_away("c1", "b2", "1201", True, T0 + timedelta(hours=2, minutes=1))
    assert _ids(cleared) == [("no-activity", "clear")]
    assert engine.tick(T0 + timedelta(hours=8)) == []
    engine.set_away("c1", "b2", "1201", False, T0 + timedelta(hours=8))
    assert engine.tick(T0 + timedelta(hours=9, minutes=59)) == []  # counts from the return
    assert len(engine.tick(T0 + timedelta(hours=10))) == 1


def test_two_smoke_detectors_in_one_building_are_one_confirmed_fire() -> None:
    engine = RuleEngine(PROFILES, load_rules_file(default_rules_file(), PROFILES))
    book = AlertBook(FakeClock(T0))
    verdicts = []
    for i, building in enumerate(("b3", "b4", "b3", "b3")):
        smoke = _device("tuya-smoke-detector", f"smk-{i}", building)
        verdicts += engine.evaluate(_reading(smoke, T0 + timedelta(seconds=30 * i), smoke=True))
    fire = [v for v in verdicts if v.rule.id == "confirmed-fire"]
    assert [(v.reading.device.device_id, v.rule.severity.value) for v in fire] == [
        ("building:b3", "critical"),
        ("building:b3", "critical"),  # a third detector joins: a repeat of the same alert
    ]
    assert fire[0].rule.summary.endswith("(smk-0, smk-2)")
    events = [e for v in verdicts if (e := book.apply(v)) is not None]
    assert sorted(str(e.kind) for e in events if e.alert.rule == "confirmed-fire") == [
        "opened",
        "repeated",
    ]
    assert sum(1 for e in events if e.alert.rule == "smoke") == 4  # each detector still alerts


def test_smoke_plus_heat_on_one_detector_is_a_confirmed_fire_and_far_apart_is_not() -> None:
    engine = RuleEngine(PROFILES, load_rules_file(default_rules_file(), PROFILES))
    lora = _device("lorawan-smoke-detector", "ls-1")
    verdicts = engine.evaluate(_reading(lora, T0, smoke=True, test=False, temperature=61.0))
    assert ("confirmed-fire", "raise") in _ids(verdicts)
    a, b = _device("tuya-smoke-detector", "a", "b9"), _device("tuya-smoke-detector", "b", "b9")
    engine.evaluate(_reading(a, T0, smoke=True))
    engine.tick(T0 + timedelta(seconds=121))
    late = engine.evaluate(_reading(b, T0 + timedelta(seconds=121), smoke=True))
    assert ("confirmed-fire", "raise") not in _ids(late)


def test_overrides_by_building_and_device(tmp_path: Path) -> None:
    rules = _rules(
        tmp_path,
        """
overrides:
  - {rule: door-held-open, building: b1, for_seconds: 300}
  - {rule: door-held-open, device: lobby, for_seconds: 10}
  - {rule: denied-swipes, community: c1, enabled: false}
""",
    )
    engine = RuleEngine(PROFILES, rules)
    slow, lobby = _device("zigbee-door-contact", "d1"), _device("zigbee-door-contact", "lobby")
    other = _device("zigbee-door-contact", "d9", building="b2")
    for door in (slow, lobby, other):
        engine.evaluate(_reading(door, T0, open=True))
    assert [v.reading.device.device_id for v in engine.tick(T0 + timedelta(seconds=10))] == [
        "lobby"
    ]
    assert [v.reading.device.device_id for v in engine.tick(T0 + timedelta(seconds=120))] == ["d9"]
    assert [v.reading.device.device_id for v in engine.tick(T0 + timedelta(seconds=300))] == ["d1"]
    acc = _device("hikvision-access-controller")
    assert [engine.evaluate(_reading(acc, T0, event="denied", door=1)) for _ in range(6)] == [
        []
    ] * 6


def test_a_schedule_limits_raising_to_active_hours(tmp_path: Path) -> None:
    rules = _rules(
        tmp_path,
        "timezone: Asia/Shanghai\noverrides:\n  - {rule: low-battery, model: zigbee-door-contact,"
        ' schedule: {from: "09:00", to: "18:00"}}\n',
    )
    engine = RuleEngine(PROFILES, rules)
    door = _device("zigbee-door-contact")
    assert engine.evaluate(_reading(door, T0, battery_low=True)) == []  # 08:00 local
    assert _ids(engine.evaluate(_reading(door, T0 + timedelta(hours=1), battery_low=True))) == [
        ("low-battery", "raise")
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"for_seconds": 5}, "cannot be held"),
        ({"schedule": {"from": "08:00", "to": "20:00"}}, "cannot have a schedule"),
        ({"enabled": False}, "cannot be disabled"),
        ({"kind": "count", "at_least": 2, "within_seconds": 60}, "cannot be a count"),
    ],
)
def test_life_safety_rules_cannot_be_delayed(rule: dict[str, object], message: str) -> None:
    base = {"id": "sos", "summary": "SOS", "severity": "critical", "when": {"field": "a", "eq": 1}}
    with pytest.raises(ValueError, match=message):
        RuleSpec.model_validate(base | rule)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("{rule: smoke, for_seconds: 30}", "critical rule 'smoke' cannot be held"),
        ("{rule: sos, enabled: false}", "cannot be disabled"),
        ("{rule: smoke, severity: minor}", "cannot lower its severity"),
        (
            "{rule: fall, model: tuya-fall-radar, schedule: {from: '08:00', to: '20:00'}}",
            "schedule",
        ),
        ("{rule: no-such-rule, for_seconds: 3}", "no rule 'no-such-rule'"),
    ],
)
def test_rules_file_refuses_overrides_that_break_life_safety(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(RuleError, match=message) as info:
        _rules(tmp_path, f"overrides:\n  - {override}\n")
    assert f"{tmp_path / 'rules.yaml'}:2: overrides.0" in str(info.value)


def test_rules_file_names_line_and_key_of_a_typo(tmp_path: Path) -> None:
    data = yaml.safe_load(default_rules_file().read_text())
    data["rules"][1]["quiet_hour"] = 3
    with pytest.raises(RuleError, match=r"rules.yaml:\d+: rules\.1\.quiet_hour: Extra inputs"):
        _rules(tmp_path, yaml.safe_dump(data))
    with pytest.raises(RuleError, match="write times quoted"):
        _rules(tmp_path, ABSENCE.replace('"22:00"', "22:00"))


def test_place_kinds_are_refused_in_a_profile() -> None:
    from edge.decode import DeviceProfile
    from edge.errors import ProfileError

    data = yaml.safe_load((default_profile_dir() / "zigbee-door-contact.yaml").read_text())
    data["rules"].append(yaml.safe_load(default_rules_file().read_text())["rules"][1])
    with pytest.raises((ProfileError, ValueError), match="belong in the rules file"):
        DeviceProfile.model_validate(data)


def test_pending_state_survives_a_new_engine(tmp_path: Path) -> None:
    rules = _rules(tmp_path, ABSENCE)
    store = RuleStateStore(tmp_path / "rules.db")
    engine = RuleEngine(PROFILES, rules, store)
    radar, door = _device("tuya-fall-radar"), _device("zigbee-door-contact")
    acc = _device("hikvision-access-controller")
    engine.tick(T0)
    engine.evaluate(_reading(radar, T0, fall_state="maybe_fall"))
    engine.evaluate(_reading(door, T0, open=True))
    for i in range(4):
        engine.evaluate(_reading(acc, T0 + timedelta(seconds=i), event="denied", door=1))
    engine.flush()
    store.close()
    assert (tmp_path / "rules.db").stat().st_mode & 0o777 == 0o600
    again = RuleEngine(PROFILES, rules, RuleStateStore(tmp_path / "rules.db"))
    fifth = again.evaluate(_reading(acc, T0 + timedelta(seconds=5), event="denied", door=1))
    assert _ids(fifth) == [("denied-swipes", "raise")]
    assert sorted(_ids(again.tick(T0 + timedelta(seconds=120)))) == [
        ("door-held-open", "raise"),
        ("fall", "raise"),
    ]
    assert _ids(again.tick(T0 + timedelta(hours=2))) == [("no-activity", "raise")]  # since T0
