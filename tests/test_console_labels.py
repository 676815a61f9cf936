"""The machine's words on a Chinese page (trial #3): categories, canonical fields, tiers, actors and
the notes the agent and the channels write into an alert's history, rendered zh or en. The notes
are made by the code that writes them, so a reworded note that no longer matches fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from zoneinfo import ZoneInfo

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


# Where the agent writes an alert's history notes, and in what role each piece is written: a
# whole `note`, `whom` a step notified (after "notifying "), `why` it reached nobody (after
# "reached nobody: "), a duty's `reason` (inside a whom: "(on duty in <team>, <reason>)").
_NOTE_SITES: dict[str, dict[str, str]] = {
    "edge/alerts/lifecycle.py": {"note": "note", "then": "then"},
    "edge/agent/family_caller.py": {"note": "note"},
    "edge/alerts/reach.py": {
        "whom": "whom",
        "tier": "whom",
        "resolve": "whom",
        "_people": "people",
        "_where": "where",
    },
    "edge/alerts/roster.py": {"reason": "reason", "_duty": "reason"},
    "gateway/reach.py": {"unreached": "why"},
}
_MARK = "7"  # what the agent fills in (a person, a team, a count, a time): 7 fits every pattern


def _template(node: ast.AST) -> str | None:
    """The wording of a string or f-string, each filled-in value as `_MARK`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(v.value)
            if isinstance(v, ast.Constant)
            else repr(_MARK)
            if isinstance(v, ast.FormattedValue) and v.conversion == ord("r")
            else _MARK
            for v in node.values
        )
    return None


def _wordings(expression: ast.AST) -> list[str]:
    """Every wording in an expression; an f-string's literal parts are not read on their own."""
    inner = {id(v) for n in ast.walk(expression) if isinstance(n, ast.JoinedStr) for v in n.values}
    return [
        t
        for n in ast.walk(expression)
        if id(n) not in inner and (t := _template(n)) is not None and re.search("[A-Za-z]{2,}", t)
    ]


def _agent_notes() -> dict[str, set[str]]:
    """The wordings of every note site, by role (read from the code, so a new wording shows)."""
    root = Path(__file__).resolve().parents[1]
    roles: dict[str, set[str]] = {"note": set(), "then": set(), "whom": set(), "why": set()}
    roles["reason"], roles["where"] = set(), set()
    for path, sites in _NOTE_SITES.items():
        tree = ast.parse((root / path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in sites:
                        roles[sites[target.id]].update(_wordings(node.value))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in sites
            ):  # a value handed to the method that keeps it (`self._duty(..., reason, ...)`)
                for argument in node.args:
                    roles[sites[node.func.attr]].update(_wordings(argument))
            if isinstance(node, ast.FunctionDef) and node.name in sites:
                role = sites[node.name]
                for ret in ast.walk(node):
                    if not isinstance(ret, ast.Return) or ret.value is None:
                        continue
                    if role == "people" and isinstance(ret.value, ast.Tuple):
                        _, how, nobody = ret.value.elts
                        roles["whom"].update(_wordings(how))
                        roles["why"].update(_wordings(nobody))
                    elif role != "people":
                        roles[role].update(_wordings(ret.value))
    return roles


def _leftover(zh: str) -> list[str]:
    allowed = {"UTC", "channels", "roster_file", "family"}
    return [w for w in re.findall(r"[A-Za-z_]{2,}", zh) if w not in allowed]


def test_every_history_note_the_agent_writes_has_a_chinese_rendering() -> None:
    """Collects each note wording from the code that writes it; one without a translation in
    gateway/console/labels.py (a rewording in edge/, a new note) fails here by name."""
    roles = _agent_notes()
    assert "superseded by 7 alert 7" in roles["note"]  # the collector reads the code
    assert "not acknowledged after 7 s: notifying 7" in roles["note"]
    assert any(w.startswith("nobody is on duty in") for w in roles["why"])
    assert any("on duty in" in w for w in roles["whom"])
    assert {"override", "shift 7", "holiday 7"} <= roles["reason"]
    assert "default audience" in roles["whom"]
    # each role's wordings inside a whole note the agent could write
    notes_with = {
        "note": "{}",
        "then": "reached nobody: 7; {}",
        "why": "not acknowledged after 7 s: notifying nobody; reached nobody: {}; no step left",
        "whom": "not acknowledged after 7 s: notifying {}",
        "where": "reached nobody: nobody is on duty in {} at 2026-12-06 07:00 UTC; no step left",
        "reason": "not acknowledged after 7 s: notifying 7 (on duty in 7, {})",
    }
    notes = [note.format(w) for role, note in notes_with.items() for w in roles[role]]
    rendered = [(note, note_label(note, "zh")) for note in notes]
    untranslated = [(note, zh) for note, zh in rendered if _leftover(zh)]
    assert untranslated == []


def test_a_notes_utc_time_reads_in_the_communitys_zone() -> None:
    note = (
        "not acknowledged after 60 s: notifying nobody; reached nobody: nobody is on duty in "
        "team east at 2026-12-06 23:30 UTC; no step left"
    )
    zone = ZoneInfo("Asia/Shanghai")
    zh = note_label(note, "zh", zone)
    assert "班组 east 在 2026-12-07 07:30 无人值班" in zh
    assert "UTC" not in zh
    assert "at 2026-12-07 07:30;" in note_label(note, "en", zone)
    assert note_label(note, "en") == note  # without a zone: as stored
