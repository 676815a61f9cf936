"""Decoding: shipped examples decode to their canonical fields; bad payloads say why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from edge.decode import ProfileRegistry, decode, default_profile_dir
from edge.errors import BadPayload, UnknownTopic
from edge.model import RawMessage

PROFILES = ProfileRegistry.load(default_profile_dir())
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
EXAMPLES = [(p.name, i, e) for p in PROFILES for i, e in enumerate(p.examples)]


def _raw(topic: str, payload: object) -> RawMessage:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return RawMessage(topic=topic, payload=body, received_at=NOW)


@pytest.mark.parametrize(
    ("model", "index", "example"), EXAMPLES, ids=[f"{m}-{i}" for m, i, _ in EXAMPLES]
)
def test_every_profile_example_decodes_to_its_fields(
    model: str, index: int, example: object
) -> None:
    from edge.decode.profiles import ProfileExample

    assert isinstance(example, ProfileExample)
    decoded = decode(_raw(example.topic, example.payload), PROFILES)
    assert decoded.profile.name == model
    assert decoded.fields == example.fields
    assert all(type(decoded.fields[k]) is type(v) for k, v in example.fields.items())


def test_device_time_in_ms_is_kept_at_millisecond_precision() -> None:
    at = NOW - timedelta(seconds=5, microseconds=123_456)
    ms = int(at.timestamp() * 1000)
    decoded = decode(
        _raw("ce/c1/b1/tuya-sos-button/s1", {"action": "emergency", "ts": ms}), PROFILES
    )
    assert decoded.time_source == "device"
    assert int(decoded.at.timestamp() * 1000) == ms


def test_device_time_in_seconds_is_recognised() -> None:
    seconds = int((NOW - timedelta(seconds=30)).timestamp())
    decoded = decode(
        _raw("ce/c1/b1/tuya-sos-button/s1", {"action": "emergency", "ts": seconds}), PROFILES
    )
    assert decoded.time_source == "device"
    assert decoded.at == datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize("ts", [0, -5, 4_102_444_800_000, "yesterday", True])
def test_insane_device_time_falls_back_to_receive_time(ts: object) -> None:
    decoded = decode(
        _raw("ce/c1/b1/tuya-sos-button/s1", {"action": "emergency", "ts": ts}), PROFILES
    )
    assert decoded.time_source == "gateway"
    assert decoded.at == NOW


def test_hikvision_iso_time_with_offset_is_converted_to_utc() -> None:
    payload = {
        "dateTime": "2026-11-23T10:59:58+08:00",
        "eventType": "AccessControllerEvent",
        "AccessControllerEvent": {"majorEventType": 5, "subEventType": 27, "serialNo": 9},
    }
    decoded = decode(_raw("ce/c1/b1/hikvision-access-controller/a1", payload), PROFILES)
    # whole-second device time: the serial number (mod 1000) makes the milliseconds
    assert decoded.at == datetime(2026, 11, 23, 2, 59, 58, 9000, tzinfo=UTC)
    assert decoded.seq == 9
    assert decoded.fields["event"] == "door_forced"


def test_unmapped_access_code_maps_to_the_default() -> None:
    payload = {"eventType": "AccessControllerEvent", "AccessControllerEvent": {"subEventType": 999}}
    decoded = decode(_raw("ce/c1/b1/hikvision-access-controller/a1", payload), PROFILES)
    assert decoded.fields["event"] == "other"
    assert decoded.fields["event_code"] == 999


def test_contact_style_inverted_boolean() -> None:
    from edge.decode import DeviceProfile

    profile = DeviceProfile.model_validate(
        {
            "name": "contact",
            "vendor": "v",
            "description": "d",
            "category": "door",
            "topics": ["d/{device_id}"],
            "fields": [{"name": "open", "path": "contact", "type": "bool", "invert": True}],
        }
    )
    decoded = decode(_raw("d/x", {"contact": True}), ProfileRegistry([profile]))
    assert decoded.fields == {"open": False}


@pytest.mark.parametrize(
    ("payload", "cause"),
    [
        (b"not json at all", "not_json"),
        (b"[1, 2]", "not_object"),
        ({"battery": 90}, "missing_field"),  # smoke is required
        ({"smoke": "yes"}, "wrong_type"),
        ({"smoke": False, "battery": 140}, "out_of_range"),
        ({"smoke": False, "battery": "full"}, "wrong_type"),
        (b"{" + b" " * 70_000 + b"}", "too_large"),
    ],
)
def test_bad_payloads_raise_with_a_cause(payload: object, cause: str) -> None:
    with pytest.raises(BadPayload) as caught:
        decode(_raw("ce/c1/b1/zigbee-ias-smoke/s1", payload), PROFILES)
    assert caught.value.cause == cause


def test_unknown_topic() -> None:
    with pytest.raises(UnknownTopic):
        decode(_raw("ce/c1/b1/toaster/t1", {"smoke": True}), PROFILES)


def test_payload_with_no_known_field() -> None:
    with pytest.raises(BadPayload) as caught:
        decode(_raw("ce/c1/b1/tuya-sos-button/s1", {"hello": 1}), PROFILES)
    assert caught.value.cause == "no_known_field"


# -- binary frames ---------------------------------------------------------------------------------

LORA_SMOKE = "ce/c1/b1/lorawan-smoke-detector/lsm-1"
NB_WATER = "ce/c1/b1/nbiot-water-meter/nwm-1"


def test_frame_fields_follow_the_byte_layout() -> None:
    # 21 40 ff 9c: flags 0x21 (smoke, silenced), battery 0x40 = 64 %, int16 0xff9c = -100 -> -10.0 °C
    payload = {"data": "IUD/nA==", "rxInfo": [{"rssi": -80}]}
    decoded = decode(_raw(LORA_SMOKE, payload), PROFILES)
    assert decoded.fields == {
        "smoke": True,
        "test": False,
        "tamper": False,
        "battery_low": False,
        "fault": False,
        "silence": True,
        "battery": 64.0,
        "temperature": -10.0,
        "rssi": -80.0,
    }


def test_little_endian_litres_become_cubic_metres() -> None:
    decoded = decode(_raw(NB_WATER, {"payload_hex": "00ffffffff000000"}), PROFILES)
    assert decoded.fields["water_consumed"] == 4_294_967.295  # the uint32 register's top
    assert decoded.fields["battery_voltage"] == 0.0


def test_a_longer_frame_is_read_and_its_extra_bytes_ignored() -> None:
    decoded = decode(_raw(NB_WATER, {"payload_hex": "001b4a06001c0e09aabbcc"}), PROFILES)
    assert decoded.fields["water_consumed"] == 412.187


@pytest.mark.parametrize(
    ("topic", "payload", "cause"),
    [
        (LORA_SMOKE, {"fPort": 2}, "missing_frame"),
        (LORA_SMOKE, {"data": None}, "missing_frame"),
        (LORA_SMOKE, {"data": 42}, "bad_frame"),
        (LORA_SMOKE, {"data": "AF8A1w"}, "bad_frame"),  # base64 without its padding
        (LORA_SMOKE, {"data": "AF8A\n1w=="}, "bad_frame"),
        (LORA_SMOKE, {"data": "AF8="}, "short_frame"),  # 2 bytes, the layout needs 4
        (LORA_SMOKE, {"data": ""}, "short_frame"),
        (LORA_SMOKE, {"data": "AGUA1w=="}, "out_of_range"),  # battery 0x65 = 101 %
        (NB_WATER, {"payload_hex": "001b4a06001c0e0"}, "bad_frame"),  # odd number of digits
        (NB_WATER, {"payload_hex": "zz1b4a06001c0e09"}, "bad_frame"),
        (NB_WATER, {"payload_hex": "001b4a06"}, "short_frame"),
        (NB_WATER, {"payload_hex": "001b4a06001c0e7f"}, "out_of_range"),  # water at 127 °C
        (NB_WATER, {"payload_hex": "001b4a06001c0e09", "rsrp": "weak"}, "wrong_type"),
    ],
)
def test_bad_frames_raise_with_a_cause(topic: str, payload: object, cause: str) -> None:
    with pytest.raises(BadPayload) as caught:
        decode(_raw(topic, payload), PROFILES)
    assert caught.value.cause == cause


def test_a_whole_byte_read_as_a_flag_must_be_zero_or_one() -> None:
    from edge.decode import DeviceProfile

    profile = DeviceProfile.model_validate(
        {
            "name": "flag",
            "vendor": "v",
            "description": "d",
            "category": "sos",
            "topics": ["f/{device_id}"],
            "format": "binary",
            "frame": {"path": "hex", "encoding": "hex"},
            "fields": [{"name": "sos", "byte": 0, "type": "bool"}],
        }
    )
    registry = ProfileRegistry([profile])
    assert decode(_raw("f/x", {"hex": "01"}), registry).fields == {"sos": True}
    with pytest.raises(BadPayload) as caught:
        decode(_raw("f/x", {"hex": "02"}), registry)
    assert caught.value.cause == "wrong_type"


_NAME, _PHONE = "张三丰", "13812345678"


@pytest.mark.parametrize(
    ("topic", "payload", "detail"),
    [
        (
            "ce/c1/b1/tuya-sos-button/s1",
            {"action": "emergency", "battery": f"{_NAME} {_PHONE}"},
            "field 'battery': a string of 15 characters, not a number",
        ),
        (
            "ce/c1/b1/tuya-sos-button/s1",
            {"action": "emergency", "battery": int(_PHONE)},
            "field 'battery' above [0.0, 100.0]",
        ),
        (
            "ce/c1/b1/tuya-sos-button/s1",
            {"action": "emergency", "battery": -int(_PHONE)},
            "field 'battery' below [0.0, 100.0]",
        ),
        (
            "ce/c1/b1/tuya-sos-button/s1",
            {"action": "emergency", "state": f"{_NAME} {_PHONE}"},
            "field 'state': a string of 15 characters not in the profile's map",
        ),
        (
            "ce/c1/b1/zigbee-ias-smoke/s1",
            {"smoke": {"who": _NAME}},
            "field 'smoke': a JSON object, not a boolean",
        ),
    ],
)
def test_a_bad_value_is_described_never_quoted(topic: str, payload: object, detail: str) -> None:
    """#20 finding 7: `field 'battery' = '<name> <phone>' is not a number` went to the log and
    to the dead letter's detail."""
    with pytest.raises(BadPayload) as caught:
        decode(_raw(topic, payload), PROFILES)
    assert caught.value.detail == detail
    assert _NAME not in str(caught.value)
    assert _PHONE not in str(caught.value)


@pytest.mark.parametrize("model", ["tuya-sos-button", "ias-sos-button"])
@pytest.mark.parametrize("word", [b"online", b"offline", b"offline\n"])
def test_plain_text_availability_reads_as_the_json_form(model: str, word: bytes) -> None:
    """Zigbee2MQTT's legacy availability payload is the bare word, not JSON."""
    topic = f"ce/c1/b1/{model}/btn-1/availability"
    plain = decode(_raw(topic, word), PROFILES)
    state = word.strip().decode()
    assert plain.fields == {"availability": state}
    assert plain.fields == decode(_raw(topic, {"state": state}), PROFILES).fields


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("ce/c1/b1/tuya-sos-button/btn-1/availability", b"maybe"),  # not one of the two words
        ("ce/c1/b1/tuya-sos-button/btn-1", b"offline"),  # not the availability topic
    ],
)
def test_other_plain_text_stays_a_bad_payload(topic: str, payload: bytes) -> None:
    with pytest.raises(BadPayload) as caught:
        decode(_raw(topic, payload), PROFILES)
    assert caught.value.cause == "not_json"
