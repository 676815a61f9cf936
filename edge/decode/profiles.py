"""Device profiles: one YAML file per device model saying how its messages become readings.

`ProfileRegistry.load(directory)` reads every `*.yaml` file; a typo fails the load with the file and
the key. See device_profiles/README.md for the language.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from edge.decode.fields import Converter, converter
from edge.errors import ProfileError, UnknownTopic
from edge.identifier import refuse_invalid_ids
from edge.model import FieldValue
from edge.rule_spec import PLACE_KINDS, Condition, RuleSpec
from edge.yaml_file import load_yaml_model

_NAME = r"^[a-z][a-z0-9_]*$"
_PLACEHOLDERS = ("device_id", "community", "building", "unit")
_PLACEHOLDER_RE = re.compile(r"^\{([a-z_]+)\}$")
Loc = tuple[str | int, ...]
# a field as decode reads it: name, its one JSON key, its path's parts, converter, spec
FieldReader = tuple[str, str | None, tuple[str, ...] | None, Converter, "FieldSpec"]
# A topic's match is remembered: a device's topic never changes, so one dict lookup places nearly
# every message (0.1 us instead of 1-2 us of splitting and walking the tree). About 430 bytes a
# topic. At the bound no more are remembered: those kept stay, and the topics of a gateway with
# more devices than that are walked every time, as before (no clearing, which would make a
# gateway above the bound pay for remembering on every message and gain nothing).
MATCHES_KEPT = 16_384  # ~7 MB at most; a community of 2,000-10,000 devices fits


def _refuse(title: str, problems: list[tuple[Loc, str]]) -> ValidationError:
    """Every problem a validator found, each at its own key, in one ValidationError."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("profile", "{reason}", {"reason": reason}),
                loc=loc,
                input=None,
            )
            for loc, reason in problems
        ],
    )


class Layout:
    """Where a frame field's bits are: bytes [start, end), byte order, sign, and a bit mask."""

    __slots__ = ("end", "mask", "order", "shift", "signed", "start", "unpack_from")

    def __init__(
        self, start: int, length: int, order: Literal["big", "little"], signed: bool, bits: Any
    ) -> None:
        self.start = start
        self.end = start + length
        self.order: Literal["big", "little"] = order
        self.signed = signed
        # what int.from_bytes(frame[start:end], order, signed=signed) says, without the slice
        # and the keyword: a field is 1, 2, 4 or 8 bytes, each a struct code
        code = {1: "b", 2: "h", 4: "i", 8: "q"}[length]
        self.unpack_from = struct.Struct(
            (">" if order == "big" else "<") + (code if signed else code.upper())
        ).unpack_from
        low, high = (bits, bits) if isinstance(bits, int) else bits or (0, 8 * length - 1)
        self.shift = low
        self.mask = (1 << (high - low + 1)) - 1 if bits is not None else None


class FieldSpec(BaseModel):
    """How one canonical field is read out of the payload: a JSON path, or bytes of the frame."""

    # YAML reads .nan and .inf: a NaN bound never refuses, a NaN scale refuses every message
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    name: str = Field(pattern=_NAME)
    # dotted path into the JSON payload (or envelope): "AccessControllerEvent.subEventType";
    # a number indexes a list: "rxInfo.0.rssi"
    path: str | None = None
    # binary profiles: the field's first byte in the frame (not `offset`: that one is added
    # after scaling), its length, byte order, sign, and optionally bits within it (0 = lowest)
    byte: int | None = Field(default=None, ge=0)
    length: Literal[1, 2, 4, 8] | None = None
    endianness: Literal["big", "little"] | None = None
    signed: bool | None = None
    bits: int | tuple[int, int] | None = None  # one bit (a flag) or an inclusive range [low, high]
    type: Literal["bool", "int", "float", "enum", "str"]
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    minimum: float | None = None  # after scaling; outside the range the message is a bad payload
    maximum: float | None = None
    invert: bool = False  # bool only: a contact that reports true when closed
    map: dict[str, str] | None = None  # enum only: vendor value -> canonical value
    default: str | None = None  # enum only: canonical value for vendor values not in `map`
    required: bool = False  # a message without it is a bad payload
    nullable: bool = True  # a JSON null means "not reported" (the field is left out)

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        problems: list[tuple[Loc, str]] = []
        if self.type == "enum" and not self.map:
            problems.append((("map",), f"enum field {self.name!r} needs a 'map'"))
        if self.type != "enum" and (self.map is not None or self.default is not None):
            key = "map" if self.map is not None else "default"
            problems.append(((key,), f"'map' and 'default' are for enum fields ({self.name!r})"))
        if self.invert and self.type != "bool":
            problems.append((("invert",), f"'invert' is for bool fields ({self.name!r})"))
        if self.type not in ("int", "float") and (self.scale != 1.0 or self.offset != 0.0):
            key = "scale" if self.scale != 1.0 else "offset"
            problems.append(
                ((key,), f"'scale' and 'offset' are for numeric fields ({self.name!r})")
            )
        problems.extend(self._layout_problems())
        if problems:
            raise _refuse("FieldSpec", problems)
        return self

    def _layout_problems(self) -> list[tuple[Loc, str]]:
        layout_keys = [
            k for k in ("length", "endianness", "signed", "bits") if getattr(self, k) is not None
        ]
        if (self.path is None) == (self.byte is None):
            return [
                ((), f"field {self.name!r} needs exactly one of 'path' (JSON) and 'byte' (frame)")
            ]
        if self.byte is None:
            return [((k,), f"{k!r} is for frame fields (with 'byte')") for k in layout_keys]
        problems: list[tuple[Loc, str]] = []
        if self.type == "str":
            problems.append((("type",), "a frame field is bool, int, float or enum, not str"))
        if self.bits is not None:
            low, high = (self.bits, self.bits) if isinstance(self.bits, int) else self.bits
            width = 8 * (self.length or 1)
            if not 0 <= low <= high < width:
                problems.append((("bits",), f"bits must lie within 0..{width - 1}, low <= high"))
            if self.signed:
                problems.append((("signed",), "a bit range is unsigned"))
        return problems

    @cached_property
    def divisor(self) -> int | None:
        """1 / scale when that is a whole number (0.1, 0.001), else None."""
        if self.scale == 0 or abs(self.scale) >= 1:
            return None
        inverse = 1 / self.scale
        return round(inverse) if abs(inverse - round(inverse)) < 1e-9 else None

    def scaled(self, value: float) -> float:
        """`value * scale + offset`; a scale of 1/N divides by N, so 412203 L is 412.203 m³,
        not 412.20300000000003."""
        divisor = self.divisor
        return (value / divisor if divisor else value * self.scale) + self.offset

    @property
    def where(self) -> str:
        """The field's place in the payload, for messages: its path, or `frame[byte]`."""
        return self.path if self.path is not None else f"frame[{self.byte}]"

    @cached_property
    def parts(self) -> tuple[str, ...] | None:
        """The JSON path split once (decode walks it for every message); None for a frame field."""
        return None if self.path is None else tuple(self.path.split("."))

    @cached_property
    def convert(self) -> Converter:
        """A payload value to this field's canonical value, checked; raises BadPayload."""
        return converter(self)

    @cached_property
    def layout(self) -> Layout | None:
        """The frame layout (None for a JSON field)."""
        if self.byte is None:
            return None
        return Layout(
            self.byte, self.length or 1, self.endianness or "big", bool(self.signed), self.bits
        )


class _AtPath(BaseModel):
    """A spec of one value at a dotted path into the JSON payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str

    @cached_property
    def parts(self) -> tuple[str, ...]:
        """The path split once (decode walks it for every message)."""
        return tuple(self.path.split("."))


class FrameSpec(_AtPath):
    """Where a binary frame sits in the JSON envelope, and how it is written there."""

    # path: "data" (ChirpStack), "payload_hex", "uplink_message.frm_payload" (TTS)
    encoding: Literal["hex", "base64"]


class TimestampSpec(_AtPath):
    """Where the device's own event time is, and in what form."""

    format: Literal["epoch_ms", "epoch_s", "epoch_auto", "iso8601"] = "epoch_auto"
    # "s": the device stamps whole seconds (Hikvision ISAPI). Two events in one second would be
    # one time-series point, so the device's sequence number (mod 1000) becomes the milliseconds:
    # unique per second and the same on every redelivery; without one, the receive time's ms.
    resolution: Literal["ms", "s"] = "ms"


class SequenceSpec(_AtPath):
    """Where the device's own message counter is (gaps reveal lost messages)."""


class PayloadDeviceSpec(_AtPath):
    """Where the payload names its own device (a LoRaWAN server's `deviceInfo.deviceName`).

    Identity comes from the topic, which the broker's ACL binds to the device; a payload naming
    another device keeps the topic's device and is flagged `device_mismatch` and counted.
    """


class ProfileExample(BaseModel):
    """A payload the model really sends and the canonical fields it must decode to."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    description: str
    topic: str
    payload: dict[str, Any]
    fields: dict[str, FieldValue]


class TopicPattern:
    """A topic with `{placeholder}` levels, e.g. `ce/{community}/{building}/smoke/{device_id}`."""

    def __init__(self, pattern: str) -> None:
        levels = pattern.split("/")
        names: list[str] = []
        regex_parts: list[str] = []
        filter_parts: list[str] = []
        for level in levels:
            if "+" in level or "#" in level:
                raise ValueError(f"topic {pattern!r}: use {{placeholders}}, not MQTT wildcards")
            match = _PLACEHOLDER_RE.match(level)
            if match:
                name = match.group(1)
                if name not in _PLACEHOLDERS:
                    raise ValueError(
                        f"topic {pattern!r}: unknown placeholder {{{name}}} "
                        f"(allowed: {', '.join(_PLACEHOLDERS)})"
                    )
                if name in names:
                    raise ValueError(f"topic {pattern!r}: placeholder {{{name}}} twice")
                names.append(name)
                regex_parts.append(f"(?P<{name}>[^/]+)")
                filter_parts.append("+")
            elif "{" in level or "}" in level:
                raise ValueError(f"topic {pattern!r}: a placeholder must fill a whole level")
            else:
                regex_parts.append(re.escape(level))
                filter_parts.append(level)
        if "device_id" not in names:
            raise ValueError(f"topic {pattern!r} needs a {{device_id}} level")
        self.pattern = pattern
        self.placeholders = tuple(names)
        self.levels = tuple(levels)
        self.slots = tuple(
            (index, level[1:-1])
            for index, level in enumerate(levels)
            if _PLACEHOLDER_RE.match(level)
        )
        self.subscription = "/".join(filter_parts)
        self._regex = re.compile("^" + "/".join(regex_parts) + "$")

    def match(self, topic: str) -> dict[str, str] | None:
        found = self._regex.match(topic)
        return found.groupdict() if found else None

    def render(self, **values: str) -> str:
        out = self.pattern
        for name in self.placeholders:
            out = out.replace("{" + name + "}", values[name])
        return out


class _TopicTree:
    """Topic patterns by level: a literal level is a dict lookup, a placeholder a wildcard child.

    Matching walks the levels once (literal before placeholder, so the more specific pattern
    wins) and keeps nothing per topic: 100,000 devices cost no memory here.
    """

    __slots__ = ("ends", "literal", "wild")

    def __init__(self) -> None:
        self.literal: dict[str, _TopicTree] = {}
        self.wild: _TopicTree | None = None
        self.ends: list[tuple[DeviceProfile, TopicPattern]] = []

    def add(self, profile: DeviceProfile, pattern: TopicPattern) -> None:
        node = self
        for level in pattern.levels:
            if _PLACEHOLDER_RE.match(level):
                node.wild = node.wild or _TopicTree()
                node = node.wild
            else:
                node = node.literal.setdefault(level, _TopicTree())
        node.ends.append((profile, pattern))

    def find(self, levels: list[str], index: int = 0) -> tuple[DeviceProfile, TopicPattern] | None:
        if index == len(levels):
            return self.ends[0] if self.ends else None
        level = levels[index]
        child = self.literal.get(level)
        if child is not None:
            found = child.find(levels, index + 1)
            if found is not None:
                return found
        if self.wild is not None and level:  # a placeholder never matches an empty level
            return self.wild.find(levels, index + 1)
        return None


class DeviceProfile(BaseModel):
    """One device model: its topics, payload fields, liveness interval and default rules."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    vendor: str
    description: str
    category: str = Field(pattern=_NAME)
    topics: list[str] = Field(min_length=1)
    # binary: the device's frame travels hex or base64 in a JSON envelope (LoRaWAN, NB-IoT)
    format: Literal["json", "binary"] = "json"
    frame: FrameSpec | None = None
    fields: list[FieldSpec] = Field(min_length=1)
    timestamp: TimestampSpec | None = None
    sequence: SequenceSpec | None = None
    payload_device: PayloadDeviceSpec | None = None
    heartbeat_seconds: int | None = Field(default=None, gt=0)
    # alarm: life-safety devices (SOS, smoke, fall, forced door) get their own MQTT session and
    # queue, so a telemetry flood cannot delay them
    lane: Literal["alarm", "telemetry"] = "telemetry"
    rules: list[RuleSpec] = Field(default_factory=list)
    # enum values the model decodes that no default rule looks at, each with the reason why:
    # {field: {canonical value: reason}}. `unalerted_values()` must be empty for alarm models.
    unalerted: dict[str, dict[str, str]] = Field(default_factory=dict)
    examples: list[ProfileExample] = Field(default_factory=list)

    def unalerted_values(self) -> list[tuple[str, str]]:
        """(field, value) pairs of enum fields that neither a default rule's conditions mention
        nor `unalerted` explains; an enum's `default` (an unknown vendor code) is exempt."""
        mentioned: set[tuple[str, object]] = set()
        for rule in self.rules:
            for condition in (rule.when, rule.clear, rule.confirm, rule.withdraw):
                if condition is not None:
                    mentioned |= _mentioned(condition)
        missing = []
        for spec in self.fields:
            if spec.type != "enum" or not spec.map:
                continue
            explained = self.unalerted.get(spec.name, {})
            for value in sorted(set(spec.map.values())):
                if value == spec.default or (spec.name, value) in mentioned:
                    continue
                if value not in explained:
                    missing.append((spec.name, value))
        return missing

    @model_validator(mode="after")
    def _consistent(self) -> DeviceProfile:
        problems: list[tuple[Loc, str]] = []
        names = [f.name for f in self.fields]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append((("fields", index, "name"), f"field name {name!r} used twice"))
        for index, pattern in enumerate(self.topics):
            try:
                TopicPattern(pattern)
            except ValueError as exc:
                problems.append((("topics", index), str(exc)))
        rule_ids = [r.id for r in self.rules]
        for index, rule_id in enumerate(rule_ids):
            if rule_id in rule_ids[:index]:
                problems.append((("rules", index, "id"), f"rule id {rule_id!r} used twice"))
        known = set(names)
        for index, rule in enumerate(self.rules):
            unknown = sorted(rule.fields() - known)
            if unknown:
                in_when = rule.when is not None and rule.when.fields() - known
                problems.append(
                    (
                        ("rules", index, "when" if in_when else "clear"),
                        f"rule {rule.id!r} reads unknown fields: {', '.join(unknown)}",
                    )
                )
        for index, rule in enumerate(self.rules):
            for name in rule.supersedes or ():
                if name not in rule_ids:
                    problems.append(
                        (
                            ("rules", index, "supersedes"),
                            f"rule {rule.id!r} supersedes {name!r}, not a rule of this model",
                        )
                    )
        offline = [i for i, r in enumerate(self.rules) if r.kind == "offline"]
        for index in offline[1:]:
            problems.append((("rules", index, "kind"), "one offline rule per model at most"))
        if offline and self.heartbeat_seconds is None:
            problems.append(
                (
                    ("rules", offline[0], "kind"),
                    "an offline rule needs the model's heartbeat_seconds",
                )
            )
        for index, rule in enumerate(self.rules):
            if rule.kind in PLACE_KINDS:  # they watch a household or building, not one model
                problems.append(
                    (("rules", index, "kind"), f"{rule.kind} rules belong in the rules file")
                )
        problems.extend(self._frame_problems())
        problems.extend(self._unalerted_problems())
        if problems:
            raise _refuse("DeviceProfile", problems)
        return self

    def _unalerted_problems(self) -> list[tuple[Loc, str]]:
        enums = {f.name: set((f.map or {}).values()) for f in self.fields if f.type == "enum"}
        problems: list[tuple[Loc, str]] = []
        for name, reasons in self.unalerted.items():
            if name not in enums:
                problems.append((("unalerted", name), f"{name!r} is not an enum field"))
                continue
            for value, reason in reasons.items():
                if value not in enums[name]:
                    problems.append(
                        (("unalerted", name, value), f"{name} never decodes to {value!r}")
                    )
                elif not reason.strip():
                    problems.append((("unalerted", name, value), "say why no rule looks at it"))
        return problems

    def _frame_problems(self) -> list[tuple[Loc, str]]:
        frame_fields = [i for i, f in enumerate(self.fields) if f.byte is not None]
        if self.format == "json":
            problems: list[tuple[Loc, str]] = [
                (("fields", i, "byte"), "frame fields need 'format: binary' and a 'frame'")
                for i in frame_fields
            ]
            if self.frame is not None:
                problems.append((("frame",), "'frame' is for 'format: binary' profiles"))
            return problems
        if self.frame is None:
            return [(("format",), "a binary profile needs a 'frame' (path and encoding)")]
        if not frame_fields:
            return [(("fields",), "a binary profile needs at least one frame field ('byte')")]
        return []

    @cached_property
    def readers(self) -> tuple[FieldReader, ...]:
        """What decode needs of each field, in order, read once: its name, its one JSON key
        (most vendor fields sit at the top level) or its path's parts (None for a frame
        field), and its converter."""
        return tuple(
            (
                spec.name,
                spec.parts[0] if spec.parts is not None and len(spec.parts) == 1 else None,
                spec.parts,
                spec.convert,
                spec,
            )
            for spec in self.fields
        )

    @cached_property
    def frame_length(self) -> int:
        """The bytes a frame needs to hold every frame field (0 for JSON profiles)."""
        return max((f.layout.end for f in self.fields if f.layout is not None), default=0)

    def topic_patterns(self) -> list[TopicPattern]:
        return [TopicPattern(p) for p in self.topics]


def load_profile(path: Path) -> DeviceProfile:
    """Read and validate one profile file; errors name the file and the key."""
    return load_yaml_model(path, DeviceProfile, ProfileError)


class ProfileRegistry:
    """Every loaded profile, and which one claims a topic."""

    def __init__(self, profiles: list[DeviceProfile]) -> None:
        self._profiles = {p.name: p for p in profiles}
        if len(self._profiles) != len(profiles):
            raise ProfileError("two profiles share a name")
        self._patterns = [(p, t) for p in profiles for t in p.topic_patterns()]
        self._tree = _TopicTree()
        for profile, pattern in self._patterns:
            self._tree.add(profile, pattern)
        self._matches: dict[str, tuple[DeviceProfile, Mapping[str, str]]] = {}

    @classmethod
    def load(cls, directory: Path) -> ProfileRegistry:
        if not directory.is_dir():
            raise ProfileError(f"{directory}: profile directory does not exist")
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise ProfileError(f"{directory}: no *.yaml device profiles found")
        profiles = [load_profile(f) for f in files]
        seen: dict[str, Path] = {}
        for profile, path in zip(profiles, files, strict=True):
            if profile.name in seen:
                raise ProfileError(
                    f"{path}: name {profile.name!r} already used by {seen[profile.name]}"
                )
            seen[profile.name] = path
        return cls(profiles)

    def __iter__(self) -> Any:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def get(self, name: str) -> DeviceProfile:
        try:
            return self._profiles[name]
        except KeyError:
            raise ProfileError(f"no device profile named {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._profiles)

    def subscriptions(self, lane: str | None = None) -> list[str]:
        """MQTT topic filters covering the profiles' topics (of one lane), without repeats."""
        return sorted({t.subscription for p, t in self._patterns if lane is None or p.lane == lane})

    def match(self, topic: str) -> tuple[DeviceProfile, Mapping[str, str]]:
        """The profile that claims `topic` and the placeholder values (shared by every message
        on the topic: read, never changed); raises UnknownTopic, or InvalidId for a value that
        is not an identifier."""
        matched = self._matches.get(topic)
        if matched is not None:
            return matched
        levels = topic.split("/")
        found = self._tree.find(levels)
        if found is None:
            raise UnknownTopic(f"no device profile claims topic {topic!r}")
        profile, pattern = found
        # places interned: thousands of devices share a handful of communities and buildings
        values = {
            name: levels[index] if name == "device_id" else sys.intern(levels[index])
            for index, name in pattern.slots
        }
        # checked once, as the match is built: a remembered match holds valid ids only, and a
        # refused topic (InvalidId) is not remembered
        refuse_invalid_ids(values)
        matched = (profile, values)
        if len(self._matches) < MATCHES_KEPT:
            self._matches[topic] = matched
        return matched

    @property
    def remembered(self) -> int:
        """Topics whose match is remembered (MATCHES_KEPT at most)."""
        return len(self._matches)

    def community_of(self, topic: str) -> str | None:
        """The community a topic names, by the profile that claims it (None: no such level)."""
        levels = topic.split("/")
        found = self._tree.find(levels)
        if found is None:
            return None
        return next((levels[i] for i, name in found[1].slots if name == "community"), None)


def default_profile_dir() -> Path:
    """The profiles shipped with the package (`device_profiles/` beside the code)."""
    return Path(__file__).resolve().parents[2] / "device_profiles"


def _mentioned(condition: Condition) -> set[tuple[str, object]]:
    """Every (field, value) a condition compares with `eq`, `ne` or `in`."""
    if condition.field is not None:
        values = [condition.eq, condition.ne, *(condition.in_ or [])]
        return {(condition.field, v) for v in values if v is not None}
    children = [*(condition.all or []), *(condition.any or []), condition.not_]
    return set().union(*(_mentioned(c) for c in children if c is not None))
