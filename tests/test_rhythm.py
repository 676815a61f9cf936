"""Sign of life with a learned rhythm, on a fake clock: each resident's own day, a whole day of hers
without a sign, a home where water is usual, away with an end date, a check-in answered, living
alone from the household records, state that survives a new engine, memory per household."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from edge.alerts import EscalationPolicies
from edge.decode import ProfileRegistry, default_profile_dir
from edge.model import Alert, AlertStatus, DeviceRef, FieldValue, Reading, Severity
from edge.rules import (
    CommunityRules,
    Day,
    HouseholdRhythm,
    RuleEngine,
    RuleStateStore,
    Verdict,
    default_rules_file,
    load_rules_file,
)
from gateway.settings import Settings

PROFILES = ProfileRegistry.load(default_profile_dir())
MIDNIGHT = datetime(2026, 11, 1, 16, 0, tzinfo=UTC)  # 2026-11-02 00:00 in Asia/Shanghai
PLACE = "c1/b2/1201"

RULES = """
timezone: Asia/Shanghai
rules:
  - id: no-sign
    kind: absence
    summary: No sign of life
    severity: major
    quiet_hours: 4
    window: {from: "06:00", to: "22:00"}
    households: ["c1/b2/1201"]
    rhythm: {learn_days: 28, min_days: 7, active_share: 0.5}
    signals:
      - {name: motion, categories: [motion], when: {field: motion, eq: true}}
      - {name: water, models: [water-flow-meter], when: {field: flow, gt: 0}}
"""


def _rules(tmp_path: Path, text: str = RULES) -> CommunityRules:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_rules_file(path, PROFILES)


def _device(model: str, device_id: str, unit: str = "1201") -> DeviceRef:
    return DeviceRef(device_id, model, PROFILES.get(model).category, "c1", "b2", unit)


PIR = _device("zigbee-pir-motion", "pir-1")
WATER = _device("water-flow-meter", "wtr-1")


def _at(day: int, hour: float) -> datetime:
    return MIDNIGHT + timedelta(days=day, hours=hour)


def _move(engine: RuleEngine, at: datetime) -> list[Verdict]:
    return engine.evaluate(Reading(device=PIR, fields={"motion": True}, at=at, received_at=at))


def _water(engine: RuleEngine, at: datetime, flow: FieldValue = 6.0) -> list[Verdict]:
    reading = Reading(device=WATER, fields={"flow": flow}, at=at, received_at=at)
    return engine.evaluate(reading)


def _tick(engine: RuleEngine, at: datetime) -> list[Verdict]:
    """Tick at `at`, after ticks every half hour since the last one (none of which may raise):
    a gap longer than an hour would be an outage, whose quiet time is not counted."""
    last = engine.places.last_tick
    if last is not None:
        step = last + 1800
        while step < at.timestamp():
            between = datetime.fromtimestamp(step, UTC)
            assert engine.tick(between) == [], f"raised at {between}"
            step += 1800
    return engine.tick(at)


def _raised(verdicts: list[Verdict]) -> list[tuple[str, str, str]]:
    return [(v.rule.id, v.action, v.reading.device.device_id) for v in verdicts]


def _late_riser(engine: RuleEngine, days: int) -> None:
    """Up at 10:00, about until 20:00: a sign every two hours; the engine ticked each hour."""
    for day in range(days):
        for hour in range(24):
            if 10 <= hour <= 20 and hour % 2 == 0:
                _move(engine, _at(day, hour + 0.25))
            assert engine.tick(_at(day, hour + 0.5)) == [], (day, hour)


def test_a_late_riser_is_not_counted_from_the_window_but_from_her_own_day(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path))
    _tick(engine, _at(0, 0))
    _late_riser(engine, 8)  # learning: the 06:00 window stands, a sign every 2 h within 4 h
    [view] = engine.rhythm_of("c1", "b2", "1201", _at(8, 0))
    assert view.days_learned == 8
    assert view.own_day == Day(10, 21)
    assert view.histogram[10] == 8
    assert view.histogram[9] == 0
    # day 8: nothing at all. Her last sign was at 20:15 last night: 45 minutes of her day, then
    # the night (never counted), then her day from 10:00: 4 quiet hours end at 13:15, not 10:00
    assert _tick(engine, _at(8, 13.24)) == []
    assert _raised(_tick(engine, _at(8, 13.25))) == [("no-sign", "raise", "household:1201")]
    assert _tick(engine, _at(8, 15)) == []  # once
    assert _raised(_move(engine, _at(8, 15.5))) == [("no-sign", "clear", "household:1201")]


def test_a_whole_day_of_hers_without_a_sign_raises_at_its_end(tmp_path: Path) -> None:
    text = RULES.replace("quiet_hours: 4", "quiet_hours: 12")
    engine = RuleEngine(PROFILES, _rules(tmp_path, text))
    _tick(engine, _at(0, 0))
    _late_riser(engine, 8)
    # day 8: 45 min of day 7 and her 11-hour day 8 are not 12 h, but her whole day passed quiet
    assert _tick(engine, _at(8, 20.99)) == []
    assert len(_tick(engine, _at(8, 21))) == 1
    # day 9: one sign in her day is enough, and nothing counts after 21:00
    _move(engine, _at(9, 11))
    assert _tick(engine, _at(9, 21.5)) == []


def test_night_is_never_counted(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path))
    _tick(engine, _at(0, 0))
    _late_riser(engine, 8)
    _move(engine, _at(8, 20.5))
    for hour in (21, 22, 23, 24, 28, 30, 33.9):  # 21:00 day 8 .. 09:54 day 9
        assert _tick(engine, _at(8, hour)) == []


WATER_RULE = """
timezone: Asia/Shanghai
rules:
  - id: water-idle
    kind: absence
    summary: Water unused for 12 hours
    severity: major
    quiet_hours: 12
    window: {from: "06:00", to: "23:00"}
    households: ["c1/b2/1201", "c1/b2/1202"]
    rhythm: {learn_days: 28, min_days: 7, active_share: 0.3, usual_share: 0.8}
    signals:
      - {name: water, models: [water-flow-meter], when: {field: flow, gt: 0}}
"""


def test_water_idle_raises_only_in_a_home_that_usually_uses_water(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path, WATER_RULE))
    other = _device("water-flow-meter", "wtr-2", unit="1202")
    _tick(engine, _at(0, 0))
    for day in range(10):
        _water(engine, _at(day, 7.5))
        _water(engine, _at(day, 18.5))
        if day % 3 == 0:  # 1202 uses water one day in three: not usual
            at = _at(day, 9)
            engine.evaluate(Reading(device=other, fields={"flow": 3.0}, at=at, received_at=at))
        for hour in range(24):
            assert _tick(engine, _at(day, hour + 0.75)) == []
    views = {v.rule: v for v in engine.rhythm_of("c1", "b2", "1202", _at(10, 0))}
    assert views["water-idle"].watched is False
    assert views["water-idle"].usual_share == 0.4  # days 0, 3, 6, 9
    assert engine.rhythm_of("c1", "b2", "1201", _at(10, 0))[0].own_day == Day(7, 19)
    # day 10: the fall after the last draw of day 9 (18:30): her day is 07:00-19:00; half an
    # hour of day 9 and 11.5 hours of day 10 make 12 hours at 18:30
    assert _tick(engine, _at(10, 18.49)) == []
    assert _raised(_tick(engine, _at(10, 18.5))) == [("water-idle", "raise", "household:1201")]


def test_away_with_an_end_date_suppresses_and_ends_by_itself(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path))
    _tick(engine, _at(0, 0))
    _late_riser(engine, 8)
    assert len(_tick(engine, _at(8, 13.25))) == 1
    cleared = engine.set_away(
        "c1", "b2", "1201", True, _at(8, 15), until=_at(12, 9), reason="hospital"
    )
    assert _raised(cleared) == [("no-sign", "clear", "household:1201")]
    assert engine.away_of("c1", "b2", "1201") == (True, _at(12, 9), "hospital")
    for hour in range(15, 4 * 24 + 8):
        assert _tick(engine, _at(8, hour)) == []
    assert _tick(engine, _at(12, 9)) == []  # back: counts anew from now
    assert engine.away_of("c1", "b2", "1201") == (False, None, None)
    # days away are not learned from: her day stands
    assert engine.rhythm_of("c1", "b2", "1201", _at(12, 10))[0].own_day == Day(10, 21)
    # back at 09:00, before her day: its 4 quiet hours count from 10:00
    assert _tick(engine, _at(12, 13.99)) == []
    assert len(_tick(engine, _at(12, 14))) == 1


def test_a_check_in_answered_clears_and_counts_as_a_sign(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path))
    _tick(engine, _at(0, 6))
    assert len(_tick(engine, _at(0, 10))) == 1  # learning: the window's 06:00 + 4 h
    assert _raised(engine.sign("c1", "b2", "1201", _at(0, 10.5))) == [
        ("no-sign", "clear", "household:1201")
    ]
    assert _tick(engine, _at(0, 14.4)) == []
    assert len(_tick(engine, _at(0, 14.5))) == 1


def test_living_alone_households_come_from_the_records(tmp_path: Path) -> None:
    text = RULES.replace('households: ["c1/b2/1201"]', "households: living_alone")
    engine = RuleEngine(PROFILES, _rules(tmp_path, text))
    _tick(engine, _at(0, 6))
    assert _tick(engine, _at(0, 11)) == []  # nobody is known to live alone yet
    engine.care_for(["c1/b2/1201"])
    assert _raised(_tick(engine, _at(0, 11.5))) == [("no-sign", "raise", "household:1201")]
    _move(engine, _at(0, 12))
    engine.care_for([])  # moved in with her daughter
    assert _tick(engine, _at(0, 20)) == []
    assert engine.rhythm_of("c1", "b2", "1201", _at(0, 20)) == []
    assert engine.places.rhythms == {}  # what was learned of her is gone


def test_the_learned_rhythm_and_away_survive_a_new_engine(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    engine = RuleEngine(PROFILES, rules, RuleStateStore(tmp_path / "rules.db"))
    _tick(engine, _at(0, 0))
    _late_riser(engine, 8)
    engine.set_away("c1", "b2", "1201", True, _at(8, 1), until=_at(9, 12), reason="family")
    engine.flush()
    again = RuleEngine(PROFILES, rules, RuleStateStore(tmp_path / "rules.db"))
    [view] = again.rhythm_of("c1", "b2", "1201", _at(8, 2))
    assert view.own_day == Day(10, 21)
    assert view.days_learned == 8
    assert again.away_of("c1", "b2", "1201") == (True, _at(9, 12), "family")


def test_the_shipped_rules_watch_living_alone_homes_for_water_and_signs_of_life() -> None:
    rules = load_rules_file(default_rules_file(), PROFILES)
    by_id = {r.id: r for r in rules.rules}
    water = by_id["water-idle"]
    assert water.households == "living_alone"
    assert water.quiet_hours == 12
    assert water.rhythm is not None
    assert water.rhythm.usual_share > 0
    assert by_id["no-sign-of-life"].households == "living_alone"
    data = yaml.safe_load(default_rules_file().read_text())
    assert {r["id"] for r in data["rules"]} >= {"no-activity", "no-sign-of-life", "water-idle"}


def test_memory_of_a_households_rhythm_is_small() -> None:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    rhythms = [HouseholdRhythm(28, 739_000) for _ in range(1000)]
    for rhythm in rhythms:
        for day in range(739_000, 739_028):
            for hour in (7, 9, 12, 18, 21):
                rhythm.note(day, hour)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(s.size_diff for s in after.compare_to(before, "filename"))
    per_household = size / len(rhythms)
    print(f"rhythm memory: {per_household:.0f} bytes per household and rule")
    assert per_household < 512


def test_a_households_alert_escalates_like_an_sos_only_slower() -> None:
    policies = EscalationPolicies(Settings().escalation.policies)
    at = _at(0, 14)
    alert = Alert(
        id="a1",
        key="no-sign-of-life|household:1201",
        rule="no-sign-of-life",
        summary="No sign of life today",
        severity=Severity.MAJOR,
        status=AlertStatus.ACTIVE,
        device_id="household:1201",
        model="community-edge",
        category="household",
        community="c1",
        building="b2",
        unit="1201",
        opened_at=at,
        updated_at=at,
        last_seen_at=at,
    )
    household = policies.for_alert(alert)
    sos = policies.for_alert(alert.model_copy(update={"severity": Severity.CRITICAL}))
    assert household is not None
    assert sos is not None
    assert [s.tier for s in household.steps] == [s.tier for s in sos.steps]
    assert household.steps[-1].after_s > sos.steps[-1].after_s
    assert policies.for_alert(alert.model_copy(update={"category": "water"})) is None


def test_days_the_gateway_was_off_teach_nothing(tmp_path: Path) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path, WATER_RULE))
    _tick(engine, _at(0, 0))
    for day in range(8):
        _water(engine, _at(day, 7.5))
        _tick(engine, _at(day, 12))
    # off for five days (no tick, no sign), then back
    [view] = engine.rhythm_of("c1", "b2", "1201", _at(13, 8))
    assert view.days_learned == 8
    assert view.usual_share == 1.0
    assert view.watched is True


def test_a_gateway_back_after_a_day_off_does_not_raise_what_it_did_not_see(
    tmp_path: Path,
) -> None:
    engine = RuleEngine(PROFILES, _rules(tmp_path))
    engine.tick(_at(0, 0))
    _late_riser(engine, 8)
    # off from day 8 00:00 to day 9 12:00: her last sign it saw was day 7 at 20:15
    assert engine.tick(_at(9, 12)) == []  # not "quiet since yesterday": it did not see
    assert _tick(engine, _at(9, 15.99)) == []
    assert len(_tick(engine, _at(9, 16))) == 1  # four hours of her day since it came back
