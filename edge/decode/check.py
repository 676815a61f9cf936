"""Profile checking: every problem in a directory of profiles, each with its file, line and key.

YAML is composed into nodes first, so a pydantic error's `loc` finds its line; then every example
is decoded and compared with the fields it declares. The agent's start-up uses `load_profile`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from edge.decode.decode import decode
from edge.decode.profiles import DeviceProfile, Loc, ProfileRegistry
from edge.errors import DecodeError
from edge.model import RawMessage
from edge.yaml_file import line_of

# examples are checked for their fields; a fixed receive time keeps the check reproducible
_RECEIVED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a profile; `line` is 1-based, None when no line applies."""

    file: Path
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The profiles that passed, and every problem found."""

    profiles: list[DeviceProfile]
    problems: list[Problem]


def check_profiles(directory: Path) -> CheckResult:
    """Check every `*.yaml` profile in `directory`; never raises for a bad profile."""
    if not directory.is_dir():
        return CheckResult([], [Problem(directory, None, "", "profile directory does not exist")])
    files = sorted(directory.glob("*.yaml"))
    if not files:
        return CheckResult([], [Problem(directory, None, "", "no *.yaml device profiles found")])
    problems: list[Problem] = []
    loaded: list[tuple[Path, yaml.Node, DeviceProfile]] = []
    names: dict[str, Path] = {}
    for path in files:
        found, node, profile = _check_file(path)
        problems.extend(found)
        if profile is None or node is None:
            continue
        if profile.name in names:
            problems.append(
                Problem(
                    path,
                    line_of(node, ("name",)),
                    "name",
                    f"{profile.name!r} already used by {names[profile.name]}",
                )
            )
            continue
        names[profile.name] = path
        loaded.append((path, node, profile))
    registry = ProfileRegistry([profile for _, _, profile in loaded])
    passed: list[DeviceProfile] = []
    for path, node, profile in loaded:
        found = list(_check_examples(path, node, profile, registry))
        problems.extend(found)
        if not found:
            passed.append(profile)
    problems.sort(key=lambda problem: (str(problem.file), problem.line or 0))
    return CheckResult(passed, problems)


def _check_file(path: Path) -> tuple[list[Problem], yaml.Node | None, DeviceProfile | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [Problem(path, None, "", f"cannot read: {exc.strerror or exc}")], None, None
    except UnicodeDecodeError as exc:
        return [Problem(path, None, "", f"not UTF-8 text: {exc.reason}")], None, None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return [Problem(path, line, "", f"not valid YAML: {reason}")], None, None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        return [Problem(path, line, "", "expected a mapping at the top level")], None, None
    try:
        profile = DeviceProfile.model_validate(data)
    except ValidationError as exc:
        return [_problem(path, node, err["loc"], err["msg"]) for err in exc.errors()], node, None
    return [], node, profile


def _problem(path: Path, node: yaml.Node, loc: Loc, message: str) -> Problem:
    key = ".".join(str(part) for part in loc) or "(top level)"
    return Problem(path, line_of(node, loc), key, message)


def _check_examples(
    path: Path, node: yaml.Node, profile: DeviceProfile, registry: ProfileRegistry
) -> list[Problem]:
    problems: list[Problem] = []
    for index, example in enumerate(profile.examples):

        def problem(key: str, message: str, index: int = index) -> Problem:
            loc: Loc = ("examples", index, key)
            return Problem(path, line_of(node, loc), f"examples.{index}.{key}", message)

        try:
            payload = orjson.dumps(example.payload)
        except orjson.JSONEncodeError as exc:
            problems.append(problem("payload", f"not JSON-serialisable: {exc}"))
            continue
        raw = RawMessage(topic=example.topic, payload=payload, received_at=_RECEIVED_AT)
        try:
            decoded = decode(raw, registry)
        except DecodeError as exc:
            key = "topic" if exc.cause in ("unknown_topic", "invalid_id") else "payload"
            problems.append(problem(key, f"does not decode ({exc.cause}): {exc.detail}"))
            continue
        if decoded.profile.name != profile.name:
            problems.append(problem("topic", f"claimed by profile {decoded.profile.name!r}"))
            continue
        differences = _differences(decoded.fields, example.fields)
        if differences:
            problems.append(problem("fields", "; ".join(differences)))
    return problems


def _differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    out = []
    for name in sorted(got.keys() | expected.keys()):
        if name not in got:
            out.append(f"{name}: expected {expected[name]!r}, not decoded")
        elif name not in expected:
            out.append(f"{name}: decodes to {got[name]!r}, not in the example's fields")
        # 1 == 1.0 == True in Python; a reading's type is part of what an example pins
        elif got[name] != expected[name] or type(got[name]) is not type(expected[name]):
            out.append(f"{name}: decodes to {got[name]!r}, expected {expected[name]!r}")
    return out
