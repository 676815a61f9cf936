"""The machine's words on a Chinese page (trial #3): categories, canonical fields, tiers, actors and
the notes the agent and the channels write into an alert's history, rendered zh or en. The notes
are made by the code that writes them, so a reworded note that no longer matches fails here."""

from __future__ import annotations

import re

import yaml

from edge.decode import default_profile_dir
from gateway.console.labels import (
    CATEGORIES,
    FIELDS,
    actor_label,
    category_label,
    field_label,
    note_label,
    role_label,
    tier_label,
)
from gateway.reach import ChannelReach
from tests.factories import opened_event

_LATIN = re.compile(r"[A-Za-z_]{3,}")


def _rules_of(document: object) -> list[dict[str, object]]:
    """The rule mappings of a community rules file, however it nests them."""
    if isinstance(document, dict):
        found = [document] if "id" in document else []
        return found + [r for v in document.values() for r in _rules_of(v)]
    if isinstance(document, list):
        return [r for v in document for r in _rules_of(v)]
    return []


def test_every_shipped_category_and_field_has_a_chinese_label() -> None:
    categories: set[str] = set()
    fields: set[str] = set()
    for path in sorted(default_profile_dir().glob("*.yaml")):
        profile = yaml.safe_load(path.read_text(encoding="utf-8"))
        categories.add(profile["category"])
        fields.update(f["name"] for f in profile.get("fields", []))
    rules = yaml.safe_load((default_profile_dir() / "community" / "default-rules.yaml").read_text())
    categories.update(str(r["category"]) for r in _rules_of(rules) if "category" in r)
    assert "fire" in categories
    assert categories - set(CATEGORIES) == set()
    assert fields - set(FIELDS) == set()
    assert category_label("fall", "zh") == "跌倒"
    assert category_label("fall", "en") == "fall"
    assert field_label("linkquality", "zh") == "信号质量"
    assert field_label("a_new_field", "zh") == "a_new_field"  # unknown: as it is


def test_history_notes_tiers_and_actors_read_in_chinese() -> None:
    console_only = ChannelReach([]).unreached(opened_event(1))
    assert console_only is not None
    notes = [
        f"not acknowledged after 120 s: notifying tier property_manager; {console_only}",
        "not acknowledged after 60 s: notifying nobody; reached nobody: no duty roster is "
        "configured (roster_file); the next step at once",
        "superseded by fall alert 0190417",
        "silenced (更换探测器): recorded, not notified",
        "flapping: raised and cleared too often; not notified again until stable",
    ]
    for note in notes:
        zh = note_label(note, "zh")
        leftover = [w for w in _LATIN.findall(zh) if w not in {"channels", "roster_file", "fall"}]
        assert leftover == [], (note, zh)
        assert note_label(note, "en") == note
    assert note_label(notes[0], "zh").startswith("120 秒内无人确认")
    assert "物业经理" in note_label(notes[0], "zh")
    assert "只在值班台" in note_label(console_only, "zh")
    assert note_label("马上到", "zh") == "马上到"  # a person's own note as written
    assert tier_label("duty_officer", "zh") == "值班员"
    assert actor_label("device", "zh") == "设备"
    assert role_label("duty_officer", "zh") == "值班员"
    assert role_label("platform", "en") == "platform (read only)"
    assert actor_label("王芳", "zh") == "王芳"
