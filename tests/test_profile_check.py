"""The profile checker: every problem, each at its file, line and key; shipped profiles are clean."""

from __future__ import annotations

import re
from pathlib import Path

from edge.decode import ProfileRegistry, check_profiles, default_profile_dir

BROKEN = """\
name: m1
vendor: v
description: d
category: smoke
colour: red
topics: ["x/{device_id}"]
fields:
  - {name: smoke, path: smoke, type: bool}
  - name: battery
    path: battery
    type: float
    minimum: zero
rules:
  - id: smoke
    summary: s
    severity: urgent
    when: {field: smoke, eq: true}
"""


def _lines(directory: Path) -> list[str]:
    return [str(p).removeprefix(f"{directory}/") for p in check_profiles(directory).problems]


def test_every_problem_is_listed_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "m1.yaml").write_text(BROKEN, encoding="utf-8")
    assert _lines(tmp_path) == [
        "m1.yaml:5: colour: Extra inputs are not permitted",
        "m1.yaml:12: fields.1.minimum: Input should be a valid number, "
        "unable to parse string as a number",
        "m1.yaml:16: rules.0.severity: Input should be 'critical', 'major', 'minor', 'warning' "
        "or 'info'",
    ]


def test_cross_field_problems_point_at_the_key_that_causes_them(tmp_path: Path) -> None:
    text = (
        BROKEN.replace("colour: red\n", "")
        .replace("minimum: zero", "minimum: 0")
        .replace("urgent", "critical")
        .replace('topics: ["x/{device_id}"]', 'topics: ["x/{device_id}", "y/{building}"]')
        .replace("name: battery", "name: smoke")
        .replace("{field: smoke, eq: true}", "{field: smok, eq: true}")
    )
    (tmp_path / "m1.yaml").write_text(text, encoding="utf-8")
    assert _lines(tmp_path) == [
        "m1.yaml:5: topics.1: topic 'y/{building}' needs a {device_id} level",
        "m1.yaml:8: fields.1.name: field name 'smoke' used twice",
        "m1.yaml:16: rules.0.when: rule 'smoke' reads unknown fields: smok",
    ]


def test_an_example_that_does_not_decode_to_its_fields_is_a_problem(tmp_path: Path) -> None:
    text = (
        BROKEN.replace("colour: red\n", "")
        .replace("minimum: zero", "minimum: 0")
        .replace("urgent", "critical")
        + """\
examples:
  - {description: ok, topic: x/d1, payload: {smoke: true}, fields: {smoke: true}}
  - description: battery as an int
    topic: x/d1
    payload: {smoke: false, battery: 50}
    fields: {smoke: false, battery: 50}
  - {description: wrong topic, topic: z/d1, payload: {smoke: true}, fields: {smoke: true}}
  - {description: bad, topic: x/d1, payload: {smoke: 1}, fields: {smoke: true}}
"""
    )
    (tmp_path / "m1.yaml").write_text(text, encoding="utf-8")
    assert _lines(tmp_path) == [
        "m1.yaml:22: examples.1.fields: battery: decodes to 50.0, expected 50",
        "m1.yaml:23: examples.2.topic: does not decode (unknown_topic): "
        "no device profile claims topic 'z/d1'",
        "m1.yaml:24: examples.3.payload: does not decode (wrong_type): "
        "field 'smoke': a number, not a boolean",
    ]
    assert check_profiles(tmp_path).profiles == []


def test_bad_yaml_and_a_duplicate_name_are_problems_with_lines(tmp_path: Path) -> None:
    good = BROKEN.replace("colour: red\n", "").replace("zero", "0").replace("urgent", "critical")
    (tmp_path / "a.yaml").write_text(good, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(good, encoding="utf-8")
    (tmp_path / "c.yaml").write_text("name: x\nfields: [unclosed\n", encoding="utf-8")
    (tmp_path / "d.yaml").write_text("- a list\n", encoding="utf-8")
    problems = _lines(tmp_path)
    assert problems[0] == f"b.yaml:1: name: 'm1' already used by {tmp_path / 'a.yaml'}"
    assert problems[1].startswith("c.yaml:3: not valid YAML: ")
    assert problems[2] == "d.yaml:1: expected a mapping at the top level"
    assert [p.name for p in check_profiles(tmp_path).profiles] == ["m1"]


def test_the_shipped_profiles_are_clean() -> None:
    result = check_profiles(default_profile_dir())
    assert result.problems == []
    assert len(result.profiles) == len(ProfileRegistry.load(default_profile_dir()))


def test_a_missing_or_empty_directory_is_one_problem(tmp_path: Path) -> None:
    assert _lines(tmp_path) == [f"{tmp_path}: no *.yaml device profiles found"]
    assert [str(p) for p in check_profiles(tmp_path / "gone").problems] == [
        f"{tmp_path / 'gone'}: profile directory does not exist"
    ]


def test_the_worked_examples_in_the_readme_are_clean(tmp_path: Path) -> None:
    readme = (default_profile_dir() / "README.md").read_text(encoding="utf-8")
    profiles = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if b.startswith("name:")]
    assert len(profiles) == 2  # one JSON device, one binary device
    for index, text in enumerate(profiles):
        (tmp_path / f"worked-{index}.yaml").write_text(text, encoding="utf-8")
    result = check_profiles(tmp_path)
    assert result.problems == []
    assert sorted(p.format for p in result.profiles) == ["binary", "json"]
