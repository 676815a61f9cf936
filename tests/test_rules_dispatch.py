"""The engine runs only the rules a reading can meet: what it decides is what running every rule
of the model in order decides, overrides included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.decode import ProfileRegistry, default_profile_dir
from edge.model import DeviceRef, FieldValue, Reading
from edge.rules import RuleEngine, Verdict, load_rules_file

PROFILES = ProfileRegistry.load(default_profile_dir())
T0 = datetime(2026, 11, 23, tzinfo=UTC)
ACCESS = "hikvision-access-controller"


def _reading(model: str, at: datetime, building: str = "b1", **fields: FieldValue) -> Reading:
    device = DeviceRef("d1", model, PROFILES.get(model).category, "c1", building)
    return Reading(device=device, fields=fields, at=at, received_at=at)


def _ids(verdicts: list[Verdict]) -> list[tuple[str, str]]:
    return [(v.rule.id, v.action) for v in verdicts]


def test_verdicts_come_in_the_profiles_rule_order() -> None:
    engine = RuleEngine(PROFILES)
    # `sos` is decided by the text of `action` alone, `low-battery` is not: both run, in order
    verdicts = engine.evaluate(_reading("tuya-sos-button", T0, action="emergency", battery=15.0))
    assert _ids(verdicts) == [("sos", "raise"), ("low-battery", "raise")]
    assert _ids(engine.evaluate(_reading("tuya-sos-button", T0, battery=30.0))) == [
        ("low-battery", "clear")
    ]


def test_each_access_event_meets_its_own_rule_and_other_events_none() -> None:
    engine = RuleEngine(PROFILES)
    assert _ids(engine.evaluate(_reading(ACCESS, T0, event="door_forced"))) == [
        ("door-forced", "raise")
    ]
    assert _ids(engine.evaluate(_reading(ACCESS, T0, event="climbing"))) == [
        ("gate-climbing", "raise")
    ]
    for value in ("access", "Door_forced", 1, True):  # another text, another type: no rule
        assert engine.evaluate(_reading(ACCESS, T0, event=value)) == []


def test_a_rule_an_override_holds_drops_its_hold_on_another_event(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("overrides:\n  - {rule: door-held-open, building: b2, for_seconds: 30}\n")
    engine = RuleEngine(PROFILES, load_rules_file(path, PROFILES))
    held = _reading(ACCESS, T0, building="b2", event="door_held_open")
    assert engine.evaluate(held) == []  # held for 30 s in b2
    # the door closed (any other event): a held rule acts on a reading that does not meet it
    engine.evaluate(_reading(ACCESS, T0 + timedelta(seconds=10), building="b2", event="access"))
    assert engine.tick(T0 + timedelta(seconds=60)) == []
    # elsewhere the rule is as the profile wrote it: raised at once
    assert _ids(engine.evaluate(_reading(ACCESS, T0, event="door_held_open"))) == [
        ("door-held-open", "raise")
    ]
