"""Decoding, property-based, for every shipped profile: anything a device (or an attacker) sends is
a reading or a DecodeError, never another exception; and a payload built from the profile's own
field specs decodes to exactly the values it was built from."""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.agent.pipeline import Pipeline
from edge.alerts import AlertBook
from edge.clock import FakeClock
from edge.decode import DeviceProfile, FieldSpec, ProfileRegistry, decode, default_profile_dir
from edge.enrich import DeviceHealth, DeviceRegistry
from edge.errors import DecodeError
from edge.model import FieldValue, RawMessage
from edge.rules import RuleEngine

PROFILES = ProfileRegistry.load(default_profile_dir())
SHIPPED = sorted(PROFILES, key=lambda p: p.name)
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
# bounded per profile and property: the whole file stays within a few seconds on a busy machine
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CASES: Counter[str] = Counter()  # examples run per property, reported at the end of the module

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    detail = ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # past the capture: a line in the run's output
        print(f"\ndecode properties: {CASES.total()} cases ({detail})")


def _topic(profile: DeviceProfile) -> str:
    return profile.topic_patterns()[0].render(
        device_id="d1", community="c1", building="b1", unit="u1"
    )


def _raw(profile: DeviceProfile, payload: bytes) -> RawMessage:
    return RawMessage(topic=_topic(profile), payload=payload, received_at=NOW)


def _pipeline() -> Pipeline:
    clock = FakeClock(NOW)
    return Pipeline(
        PROFILES,
        DeviceRegistry(),
        RuleEngine(PROFILES),
        AlertBook(clock),
        DeviceHealth(clock, PROFILES),
    )


def _decodes_or_refuses(raw: RawMessage, pipeline: Pipeline) -> None:
    """Only DecodeError out of decode; through the pipeline a refusal is a dead letter with a cause."""
    try:
        decode(raw, PROFILES)
    except DecodeError as exc:
        refused: DecodeError | None = exc
    else:
        refused = None
    output = pipeline.handle(raw)
    if refused is None:
        assert output.reading is not None
        assert output.dead_letter is None
    else:
        assert output.reading is None
        assert output.dead_letter is not None
        assert output.dead_letter.cause == refused.cause != "decode_error"


def _paths(profile: DeviceProfile) -> list[str]:
    """Every JSON path the profile reads: fields, frame, timestamp, sequence."""
    paths = [f.path for f in profile.fields if f.path is not None]
    paths += [s.path for s in (profile.frame, profile.timestamp, profile.sequence) if s is not None]
    return sorted(set(paths))


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        if part.isdecimal():  # "rxInfo.0.rssi": a list whose item holds the rest
            while len(node) <= int(part):
                node.append({})
            node = node[int(part)]
            continue
        following = parents[parents.index(part) + 1] if part != parents[-1] else last
        node = node.setdefault(part, [] if following.isdecimal() else {})
    if last.isdecimal():
        while len(node) <= int(last):
            node.append(None)
        node[int(last)] = value
    else:
        node[last] = value


def _frame_text(profile: DeviceProfile, frame: bytes, upper: bool = False) -> str:
    assert profile.frame is not None
    if profile.frame.encoding == "hex":
        return frame.hex().upper() if upper else frame.hex()
    return base64.b64encode(frame).decode()


# -- (a) arbitrary bytes -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", SHIPPED, ids=lambda p: p.name)
@BOUNDED
@given(payload=st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_become_dead_letters(
    profile: DeviceProfile, payload: bytes
) -> None:
    CASES["bytes"] += 1
    _decodes_or_refuses(_raw(profile, payload), _pipeline())


# -- (b) arbitrary JSON documents and frames ---------------------------------------------------


@st.composite
def _near_documents(draw: st.DrawFn, profile: DeviceProfile) -> dict[str, Any]:
    """A JSON object with arbitrary values at some of the paths the profile reads."""
    document: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), _JSON, max_size=3))
    for path in _paths(profile):
        if draw(st.booleans()):
            _put(document, path, draw(_JSON))
    if profile.frame is not None and draw(st.booleans()):
        frame = draw(st.binary(max_size=profile.frame_length + 4))
        _put(document, profile.frame.path, _frame_text(profile, frame, draw(st.booleans())))
    return document


@pytest.mark.parametrize("profile", SHIPPED, ids=lambda p: p.name)
@BOUNDED
@given(data=st.data())
def test_arbitrary_json_and_frames_decode_or_become_dead_letters(
    profile: DeviceProfile, data: st.DataObject
) -> None:
    CASES["json"] += 1
    document = data.draw(_JSON | _near_documents(profile))
    _decodes_or_refuses(_raw(profile, orjson.dumps(document)), _pipeline())


BINARY = [p for p in SHIPPED if p.frame is not None]


@pytest.mark.parametrize("profile", BINARY, ids=lambda p: p.name)
@BOUNDED
@given(data=st.data())
def test_a_frame_shorter_than_the_layout_is_a_short_frame(
    profile: DeviceProfile, data: st.DataObject
) -> None:
    CASES["short"] += 1
    assert profile.frame is not None
    document, _ = data.draw(_valid_payload(profile))
    frame = data.draw(st.binary(max_size=profile.frame_length - 1))
    _put(document, profile.frame.path, _frame_text(profile, frame))
    with pytest.raises(DecodeError) as caught:
        decode(_raw(profile, orjson.dumps(document)), PROFILES)
    assert caught.value.cause == "short_frame"


# -- (c) valid payloads from the profile's field specs -----------------------------------------


def _raw_range(spec: FieldSpec) -> tuple[float, float]:
    """The vendor values that land within [minimum, maximum] once scaled, and fit the layout."""
    low, high = -1e12, 1e12
    for bound, is_min in ((spec.minimum, True), (spec.maximum, False)):
        if bound is not None:
            raw = (bound - spec.offset) / spec.scale
            if is_min == (spec.scale > 0):
                low = max(low, raw)
            else:
                high = min(high, raw)
    layout = spec.layout
    if layout is not None:
        width = layout.mask.bit_length() if layout.mask else 8 * (layout.end - layout.start)
        if layout.signed:
            low, high = max(low, -(2 ** (width - 1))), min(high, 2 ** (width - 1) - 1)
        else:
            low, high = max(low, 0), min(high, 2**width - 1)
    return low, high


def _in_range(spec: FieldSpec, raw: float) -> bool:
    number = spec.scaled(raw)
    return (spec.minimum is None or number >= spec.minimum) and (
        spec.maximum is None or number <= spec.maximum
    )


def _vendor_value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """What a device may send for this field (frame fields: the unsigned or signed integer)."""
    frame = spec.layout is not None
    if spec.type == "bool":
        flags = st.booleans()
        return flags.map(int) if frame else flags
    if spec.type == "enum":
        assert spec.map is not None
        codes = sorted(spec.map)
        if frame:
            return st.sampled_from([int(c) for c in codes if c.isdecimal()])
        known = st.sampled_from(codes)
        as_sent = known | known.filter(str.isdecimal).map(int)  # Hikvision sends 27, maps "27"
        if spec.default is None:
            return as_sent
        mapped = set(codes)
        unmapped = st.text(max_size=6).filter(lambda code: code not in mapped)
        return as_sent | unmapped  # unmapped codes become the default
    if spec.type == "str":
        return st.text(max_size=20)
    low, high = _raw_range(spec)
    integers = st.integers(math.ceil(low), math.floor(high))
    if spec.type == "int" and spec.scale == 1.0 and spec.offset == 0.0:
        candidates: st.SearchStrategy[Any] = integers
    elif spec.type == "int" or frame:
        candidates = integers.filter(lambda v: spec.type == "float" or spec.scaled(v) % 1 == 0)
    else:
        candidates = integers | st.floats(low, high, allow_nan=False, allow_infinity=False)
    return candidates.filter(lambda v: _in_range(spec, v))


def _canonical(spec: FieldSpec, vendor: Any) -> FieldValue:
    """What the profile says `vendor` means: the oracle the decoder is held to."""
    if spec.type == "bool":
        return bool(vendor) != spec.invert
    if spec.type == "enum":
        assert spec.map is not None
        mapped = spec.map.get(str(vendor), spec.default)
        assert mapped is not None
        return mapped
    if spec.type == "str":
        assert isinstance(vendor, str)
        return vendor
    number = vendor * spec.scale + spec.offset
    return round(number) if spec.type == "int" else float(number)


def _pack(frame: bytearray, spec: FieldSpec, vendor: int) -> None:
    layout = spec.layout
    assert layout is not None
    chunk = frame[layout.start : layout.end]
    if layout.mask is None:
        value = vendor.to_bytes(len(chunk), layout.order, signed=layout.signed)
    else:
        word = int.from_bytes(chunk, layout.order)
        word &= ~(layout.mask << layout.shift)
        value = (word | vendor << layout.shift).to_bytes(len(chunk), layout.order)
    frame[layout.start : layout.end] = value


@st.composite
def _valid_payload(
    draw: st.DrawFn, profile: DeviceProfile
) -> tuple[dict[str, Any], dict[str, FieldValue]]:
    """A payload the profile accepts, and the canonical fields it must decode to."""
    document: dict[str, Any] = {}
    expected: dict[str, FieldValue] = {}
    frame: bytearray | None = None
    if profile.frame is not None:
        frame = bytearray(
            draw(st.binary(min_size=profile.frame_length, max_size=profile.frame_length + 4))
        )
    by_path: dict[str, list[FieldSpec]] = {}
    for spec in profile.fields:
        if spec.layout is not None:
            assert frame is not None
            vendor = draw(_vendor_value(spec))
            _pack(frame, spec, vendor)
            expected[spec.name] = _canonical(spec, vendor)
        else:
            assert spec.path is not None
            by_path.setdefault(spec.path, []).append(spec)
    for path, specs in by_path.items():
        # Hikvision's subEventType is read twice (an enum and its raw code): one value for both
        if not (any(s.required for s in specs) or draw(st.booleans())):
            continue
        vendor = draw(_vendor_value(specs[-1]))
        _put(document, path, vendor)
        for spec in specs:
            expected[spec.name] = _canonical(spec, vendor)
    if frame is not None:
        assert profile.frame is not None
        _put(document, profile.frame.path, _frame_text(profile, bytes(frame), draw(st.booleans())))
    if not expected:  # a message needs at least one of its fields
        spec = next(s for s in profile.fields if s.path is not None)
        assert spec.path is not None
        vendor = draw(_vendor_value(spec))
        _put(document, spec.path, vendor)
        expected[spec.name] = _canonical(spec, vendor)
    return document, expected


@pytest.mark.parametrize("profile", SHIPPED, ids=lambda p: p.name)
@BOUNDED
@given(data=st.data())
def test_payloads_built_from_the_field_specs_decode_to_what_was_built(
    profile: DeviceProfile, data: st.DataObject
) -> None:
    CASES["valid"] += 1
    document, expected = data.draw(_valid_payload(profile))
    decoded = decode(_raw(profile, orjson.dumps(document)), PROFILES)
    assert decoded.profile.name == profile.name
    assert decoded.fields.keys() == expected.keys()
    for name, want in expected.items():
        got = decoded.fields[name]
        assert type(got) is type(want), name
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12), name
        else:
            assert got == want, name
