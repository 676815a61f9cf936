"""Every shipped profile loads, and a broken profile fails naming its file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.decode import ProfileRegistry, default_profile_dir
from edge.decode import profiles as profiles_module
from edge.decode.profiles import TopicPattern
from edge.errors import ProfileError, UnknownTopic
from edge.rules import default_rules_file, load_rules_file

FAMILIES = {"access", "smoke", "fall", "sos"}


def test_shipped_profiles_load_and_cover_the_four_families() -> None:
    registry = ProfileRegistry.load(default_profile_dir())
    assert {p.category for p in registry} >= FAMILIES
    for profile in registry:
        assert profile.examples, f"{profile.name} ships no example payloads"


def test_topic_pattern_gives_subscription_and_values() -> None:
    pattern = TopicPattern("ce/{community}/{building}/zigbee-ias-smoke/{device_id}")
    assert pattern.subscription == "ce/+/+/zigbee-ias-smoke/+"
    assert pattern.match("ce/c1/b2/zigbee-ias-smoke/d3") == {
        "community": "c1",
        "building": "b2",
        "device_id": "d3",
    }
    assert pattern.match("ce/c1/b2/zigbee-ias-smoke/d3/extra") is None


def test_unknown_topic_is_refused() -> None:
    registry = ProfileRegistry.load(default_profile_dir())
    with pytest.raises(UnknownTopic):
        registry.match("somewhere/else")


def test_a_topics_match_is_remembered_and_answers_the_same() -> None:
    registry = ProfileRegistry.load(default_profile_dir())
    topic = "ce/c1/b2/zigbee-ias-smoke/d3"
    first = registry.match(topic)
    assert registry.match(topic) == first
    assert first[0].name == "zigbee-ias-smoke"
    assert first[1] == {"community": "c1", "building": "b2", "device_id": "d3"}
    with pytest.raises(UnknownTopic):
        registry.match("ce/c1/b2/no-such-model/d3")
    assert registry.remembered == 1  # an unclaimed topic is not remembered


def test_past_the_bound_topics_are_not_remembered_and_still_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profiles_module, "MATCHES_KEPT", 3)
    registry = ProfileRegistry.load(default_profile_dir())
    topics = [f"ce/c1/b{n}/tuya-sos-button/sos-{n}" for n in range(5)]
    topics.append("ce/c1/b0/tuya-sos-button/sos-0/availability")
    for _ in range(2):  # the second time, the first three are remembered, the rest walked
        for n, topic in enumerate(topics):
            profile, values = registry.match(topic)
            assert profile.name == "tuya-sos-button"
            assert values == {
                "community": "c1",
                "building": f"b{n % 5}",
                "device_id": f"sos-{n % 5}",
            }
        assert registry.remembered == 3


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    return tmp_path


GOOD = """
name: m1
vendor: v
description: d
category: smoke
topics: ["x/{device_id}"]
fields:
  - {name: smoke, path: smoke, type: bool}
"""


def test_a_typo_in_a_key_names_file_and_key(tmp_path: Path) -> None:
    directory = _write(tmp_path, GOOD.replace("type: bool", "type: bool, requird: true"))
    with pytest.raises(ProfileError, match=r"bad\.yaml: fields\.0\.requird: Extra inputs"):
        ProfileRegistry.load(directory)


def test_a_rule_reading_an_unknown_field_is_refused(tmp_path: Path) -> None:
    text = (
        GOOD
        + """
rules:
  - {id: r, summary: s, severity: critical, when: {field: smok, eq: true}}
"""
    )
    with pytest.raises(ProfileError, match="unknown fields: smok"):
        ProfileRegistry.load(_write(tmp_path, text))


def test_a_condition_with_two_operators_is_refused(tmp_path: Path) -> None:
    text = (
        GOOD
        + """
rules:
  - {id: r, summary: s, severity: critical, when: {field: smoke, eq: true, ne: false}}
"""
    )
    with pytest.raises(ProfileError, match="exactly one of"):
        ProfileRegistry.load(_write(tmp_path, text))


def test_topic_without_device_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"needs a \{device_id\} level"):
        ProfileRegistry.load(_write(tmp_path, GOOD.replace("x/{device_id}", "x/{building}")))


def test_unreadable_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not valid YAML"):
        ProfileRegistry.load(_write(tmp_path, "name: [unclosed"))


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"no \*\.yaml device profiles"):
        ProfileRegistry.load(tmp_path)


BINARY = """
name: m1
vendor: v
description: d
category: smoke
topics: ["x/{device_id}"]
format: binary
frame: {path: data, encoding: base64}
fields:
  - {name: smoke, byte: 0, bits: 0, type: bool}
  - {name: temperature, byte: 1, length: 2, endianness: little, signed: true, type: float}
"""


def test_a_binary_profile_knows_its_frame_length(tmp_path: Path) -> None:
    (profile,) = ProfileRegistry.load(_write(tmp_path, BINARY))
    assert profile.frame_length == 3


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("format: binary\n", "", r"fields\.0\.byte: frame fields need 'format: binary'"),
        (
            "frame: {path: data, encoding: base64}\n",
            "",
            r"format: a binary profile needs a 'frame'",
        ),
        ("encoding: base64", "encoding: base85", r"frame\.encoding: Input should be 'hex' or"),
        ("bits: 0", "bits: 8", r"fields\.0\.bits: bits must lie within 0\.\.7"),
        ("length: 2", "length: 3", r"fields\.1\.length: Input should be 1, 2, 4 or 8"),
        (
            "byte: 0, bits: 0",
            "byte: 0, path: smoke, bits: 0",
            r"fields\.0: field 'smoke' needs exactly one",
        ),
        (
            "signed: true, type: float",
            "signed: true, type: str",
            r"fields\.1\.type: a frame field is",
        ),
    ],
)
def test_a_broken_frame_layout_names_its_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in BINARY
    with pytest.raises(ProfileError, match=message):
        ProfileRegistry.load(_write(tmp_path, BINARY.replace(old, new)))


def test_layout_keys_on_a_json_field_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"fields\.0\.length: 'length' is for frame fields"):
        ProfileRegistry.load(_write(tmp_path, GOOD.replace("type: bool", "type: bool, length: 2")))


def test_every_event_an_alarm_profile_decodes_has_a_rule_or_a_reason() -> None:
    """What a duty officer would act on has a default rule; the rest says why not (`unalerted`)."""
    registry = ProfileRegistry.load(default_profile_dir())
    missing = {
        profile.name: profile.unalerted_values()
        for profile in registry
        if profile.lane == "alarm" and profile.unalerted_values()
    }
    assert missing == {}
    access = registry.get("hikvision-access-controller")
    raised = {rule.when.eq for rule in access.rules if rule.when is not None}
    assert {"door_forced", "climbing", "tailgating", "reverse_passage"} <= raised


def test_an_unalerted_entry_must_name_a_decoded_value_and_a_reason(tmp_path: Path) -> None:
    enum = "  - {name: mode, path: m, type: enum, map: {a: armed, d: disarmed}}\n"
    base = GOOD.replace("fields:\n", "fields:\n" + enum, 1)
    for entry, problem in [
        ("unalerted: {mode: {sleeping: because}}\n", "mode never decodes to 'sleeping'"),
        ("unalerted: {mode: {armed: ' '}}\n", "say why no rule looks at it"),
        ("unalerted: {m: {armed: because}}\n", "'m' is not an enum field"),
    ]:
        with pytest.raises(ProfileError, match=problem):
            ProfileRegistry.load(_write(tmp_path, base + entry))
    profile = ProfileRegistry.load(_write(tmp_path, base)).get("m1")
    assert profile.unalerted_values() == [("mode", "armed"), ("mode", "disarmed")]


def test_every_shipped_rule_has_a_chinese_summary() -> None:
    """The console's Chinese pages show `summary_zh`: an English line there is a gap."""
    profiles = ProfileRegistry.load(default_profile_dir())
    rules = [(p.name, r) for p in profiles for r in p.rules]
    rules += [("community", r) for r in load_rules_file(default_rules_file(), profiles).rules]
    missing = [f"{where}: {r.id}" for where, r in rules if not r.summary_zh]
    assert missing == []
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r.summary_zh or "") for _, r in rules), (
        "summary_zh is written in Chinese"
    )
