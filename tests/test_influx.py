"""InfluxSink: the pure line builders, then writes to a real VictoriaMetrics (marker `tsdb`)."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from influxdb_client.rest import ApiException

from edge.errors import SinkRejected, SinkUnavailable
from edge.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    DeviceRef,
    FieldValue,
    Reading,
    Severity,
    epoch_ms,
)
from edge.sinks import InfluxSink
from edge.sinks.influx import event_line, reading_line
from tests.http_receiver import HttpReceiver, state_of
from tests.servers import VictoriaMetricsFactory, VictoriaMetricsServer, free_port

BASE = datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
BASE_MS = 1767254400123
TOKEN = "tok-SECRET-0123456789"


def _device(
    device_id: str = "dev-1",
    *,
    category: str = "smoke",
    community: str = "c1",
    building: str = "b7",
    model: str = "acme-smoke-2",
    unit: str | None = "3-201",
) -> DeviceRef:
    return DeviceRef(
        device_id=device_id,
        model=model,
        category=category,
        community=community,
        building=building,
        unit=unit,
    )


def _reading(
    fields: dict[str, FieldValue], at: datetime = BASE, device: DeviceRef | None = None
) -> Reading:
    return Reading(device=device or _device(), fields=fields, at=at, received_at=at)


def _event(
    *,
    status: AlertStatus = AlertStatus.ACTIVE,
    kind: AlertEventKind = AlertEventKind.OPENED,
    count: int = 3,
    device_id: str = "dev-1",
    event_id: str = "evt-1",
    at: datetime = BASE,
) -> AlertEvent:
    alert = Alert(
        id="alert-1",
        key=f"smoke-alarm|{device_id}",
        rule="smoke-alarm",
        summary="smoke detected",
        severity=Severity.CRITICAL,
        status=status,
        device_id=device_id,
        model="acme-smoke-2",
        category="smoke",
        community="c1",
        building="b7",
        unit="3-201",
        opened_at=at,
        updated_at=at,
        last_seen_at=at,
        count=count,
    )
    return AlertEvent(id=event_id, kind=kind, at=at, actor="rule", alert=alert)


# -- a reference reader of one line, per the line-protocol reference ------------------------------


def _scan(text: str, i: int, stops: str) -> tuple[str, int]:
    """Raw text from i up to the first unescaped stop character (or the end), and its index."""
    start = i
    while i < len(text) and text[i] not in stops:
        i += 2 if text[i] == "\\" else 1
    return text[start:i], min(i, len(text))


def _scan_string(text: str, i: int) -> tuple[str, int]:
    """A quoted field value starting at text[i] == '"', with its quotes."""
    assert text[i] == '"'
    j = i + 1
    while text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return text[i : j + 1], j + 1


def _unescape_key(text: str) -> str:
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")


def _unescape_string(quoted: str) -> str:
    out: list[str] = []
    body = quoted[1:-1]
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
        else:
            assert body[i] != '"', f"unescaped quote in {quoted!r}"
            out.append(body[i])
            i += 1
    return "".join(out)


def _parse(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """(measurement, tags, raw field values, timestamp) of one line, read as InfluxDB reads it."""
    assert "\n" not in line
    assert "\r" not in line
    measurement, i = _scan(line, 0, ", ")
    tags = {}
    while line[i] == ",":
        key, i = _scan(line, i + 1, "=")
        value, i = _scan(line, i + 1, ", ")
        tags[_unescape_key(key)] = _unescape_key(value)
    assert line[i] == " "
    fields = {}
    while True:
        key, i = _scan(line, i + 1, "=")
        value, i = _scan_string(line, i + 1) if line[i + 1] == '"' else _scan(line, i + 1, ", ")
        fields[_unescape_key(key)] = value
        if line[i] == " ":
            break
        assert line[i] == ","
    timestamp = line[i + 1 :]
    assert timestamp.lstrip("-").isdigit(), line
    return measurement, tags, fields, int(timestamp)


# -- pure: layout --------------------------------------------------------------------------------


def test_reading_line_layout() -> None:
    reading = _reading({"alarm": True, "battery": 87, "temperature": 21.5, "event": "door_forced"})
    assert reading_line(reading) == (
        "smoke,building=b7,community=c1,device_id=dev-1,model=acme-smoke-2,unit=3-201 "
        'alarm=true,battery=87i,temperature=21.5,event="door_forced",event_door_forced=1i '
        "1767254400123"
    )


@pytest.mark.parametrize("unit", [None, ""])
def test_unit_tag_only_when_set(unit: str | None) -> None:
    line = reading_line(_reading({"v": 1.0}, device=_device(unit=unit)))
    assert line == "smoke,building=b7,community=c1,device_id=dev-1,model=acme-smoke-2 v=1.0 " + str(
        BASE_MS
    )


def test_tags_are_sorted_by_key() -> None:
    _, tags, _, _ = _parse(reading_line(_reading({"v": 1})))
    assert list(tags) == sorted(tags)


def test_event_line_layout() -> None:
    assert event_line(_event()) == (
        "alert_event,building=b7,category=smoke,community=c1,device_id=dev-1,kind=opened,"
        "model=acme-smoke-2,rule=smoke-alarm,severity=critical "
        'alert_id="evt-1",count=3i,status_code=0i 1767254400123'
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [(AlertStatus.ACTIVE, 0), (AlertStatus.ACKNOWLEDGED, 1), (AlertStatus.RESOLVED, 2)],
)
def test_event_status_codes(status: AlertStatus, code: int) -> None:
    _, _, fields, _ = _parse(event_line(_event(status=status)))
    assert fields["status_code"] == f"{code}i"


def test_event_escapes_its_id() -> None:
    _, _, fields, _ = _parse(event_line(_event(event_id='e "1" \\ x')))
    assert _unescape_string(fields["alert_id"]) == 'e "1" \\ x'


# -- pure: field values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0i"),
        (-5, "-5i"),
        (2**63 - 1, "9223372036854775807i"),
        (-(2**63), "-9223372036854775808i"),
        (21.5, "21.5"),
        (3.0, "3.0"),  # stays a float: an integral float must not turn into an int field
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (1e-7, "1e-07"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        ("open", '"open"'),
    ],
)
def test_field_value_formats(value: FieldValue, text: str) -> None:
    _, _, fields, _ = _parse(reading_line(_reading({"v": value})))
    assert fields["v"] == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_read_back_exactly(value: float) -> None:
    _, _, fields, _ = _parse(reading_line(_reading({"v": value})))
    assert not fields["v"].endswith("i")
    assert float(fields["v"]) == value
    assert math.copysign(1.0, float(fields["v"])) == math.copysign(1.0, value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1])
def test_unrepresentable_numbers_are_rejected(value: float) -> None:
    with pytest.raises(SinkRejected, match=r"device 'dev-1'.*field 'v'"):
        reading_line(_reading({"v": value}))


def test_enum_state_field_only_for_lowercase_words() -> None:
    _, _, fields, _ = _parse(
        reading_line(
            _reading({"state": "door_forced", "note": "Door Forced", "mode": "a-b", "code": "42"})
        )
    )
    assert fields == {
        "state": '"door_forced"',
        "state_door_forced": "1i",
        "note": '"Door Forced"',
        "mode": '"a-b"',
        "code": '"42"',
        "code_42": "1i",
    }


def test_enum_state_field_colliding_with_a_field_is_rejected() -> None:
    with pytest.raises(SinkRejected, match="collides"):
        reading_line(_reading({"state": "open", "state_open": 0}))


@pytest.mark.parametrize("fields", [{}, {"time": 1}, {"_field": 1}, {"_measurement": 1}])
def test_empty_or_reserved_fields_are_rejected(fields: dict[str, FieldValue]) -> None:
    with pytest.raises(SinkRejected):
        reading_line(_reading(fields))


# -- pure: timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "ms"),
    [
        (BASE, BASE_MS),
        (BASE.replace(microsecond=123999), BASE_MS),  # floored, never rounded up
        (BASE.replace(microsecond=0), BASE_MS - 123),
        (BASE.astimezone(timezone(timedelta(hours=8))), BASE_MS),  # any zone: same instant
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC), -1),
        (datetime(2286, 11, 20, 17, 46, 40, 1000, tzinfo=UTC), 10_000_000_000_001),
    ],
)
def test_timestamps_are_exact_milliseconds(at: datetime, ms: int) -> None:
    assert epoch_ms(at) == ms
    assert reading_line(_reading({"v": 1}, at=at)).endswith(f" {ms}")


def test_two_readings_one_millisecond_apart_stay_two_points() -> None:
    first = reading_line(_reading({"v": 1}, at=BASE))
    second = reading_line(_reading({"v": 1}, at=BASE + timedelta(milliseconds=1)))
    assert first != second


# -- pure: escaping ------------------------------------------------------------------------------


def test_tag_values_escape_commas_equals_and_spaces() -> None:
    device = _device("dev,1 =x", building="Block A, East", community="a=b", model="m 1")
    line = reading_line(_reading({"v": 1}, device=device))
    assert line.startswith(
        "smoke,building=Block\\ A\\,\\ East,community=a\\=b,device_id=dev\\,1\\ \\=x,"
        "model=m\\ 1,unit=3-201 "
    )
    _, tags, _, _ = _parse(line)
    assert tags["device_id"] == "dev,1 =x"
    assert tags["building"] == "Block A, East"


def test_field_keys_escape_commas_equals_and_spaces() -> None:
    line = reading_line(_reading({"wind speed": 1.5, "a,b": 2, "x=y": True}))
    assert " wind\\ speed=1.5,a\\,b=2i,x\\=y=true " in line


def test_string_fields_escape_quotes_and_backslashes() -> None:
    line = reading_line(_reading({"note": 'say "hi" \\ C:\\path\\'}))
    assert 'note="say \\"hi\\" \\\\ C:\\\\path\\\\"' in line
    _, _, fields, _ = _parse(line)
    assert _unescape_string(fields["note"]) == 'say "hi" \\ C:\\path\\'


def test_line_breaks_in_strings_become_visible_escapes() -> None:
    line = reading_line(_reading({"note": "a\nb\r\nc", "v": 1}))
    assert "\n" not in line
    assert "\r" not in line
    _, _, fields, _ = _parse(line)
    assert _unescape_string(fields["note"]) == "a\\nb\\r\\nc"


def test_a_string_cannot_inject_a_second_point() -> None:
    evil = '"\nevil,community=other v=1 0\n'
    line = reading_line(_reading({"note": evil, "v": 1}))
    measurement, tags, fields, timestamp = _parse(line)
    assert (measurement, tags["community"], timestamp) == ("smoke", "c1", BASE_MS)
    assert set(fields) == {"note", "v"}


@pytest.mark.parametrize(
    "category", ["Smoke", "smoke alarm", "smoke,x=1", "1smoke", "", "smoke\n", "_x"]
)
def test_measurement_must_be_a_lowercase_name(category: str) -> None:
    with pytest.raises(SinkRejected, match="measurement"):
        reading_line(_reading({"v": 1}, device=_device(category=category)))


@pytest.mark.parametrize(
    "device_id", ["dev\n1", "dev\r1", "dev\t1", "dev\\", "dev\\,x", "dev\x00", ""]
)
def test_unrepresentable_tag_values_are_rejected(device_id: str) -> None:
    with pytest.raises(SinkRejected, match="tag device_id"):
        reading_line(_reading({"v": 1}, device=_device(device_id)))


@pytest.mark.parametrize("key", ["a\nb", "a\\b", ""])
def test_unrepresentable_field_keys_are_rejected(key: str) -> None:
    with pytest.raises(SinkRejected, match="field key"):
        reading_line(_reading({key: 1}))


def test_unrepresentable_event_tags_are_rejected() -> None:
    with pytest.raises(SinkRejected, match=r"alert event 'evt-1'.*tag device_id"):
        event_line(_event(device_id="dev\n1"))


_TAG_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\\\x7f", min_codepoint=0x20),
    min_size=1,
)


@given(device_id=_TAG_TEXT, building=_TAG_TEXT, note=st.text(), key=_TAG_TEXT)
def test_any_representable_text_reads_back(
    device_id: str, building: str, note: str, key: str
) -> None:
    if key in {"time", "_field", "_measurement", "v", "note"} or key.startswith("note_"):
        key = f"k{key}"  # reserved, taken, or could collide with note's enum state field
    device = _device(device_id, building=building)
    line = reading_line(_reading({"note": note, key: 1, "v": 2.5}, device=device))
    measurement, tags, fields, timestamp = _parse(line)
    assert measurement == "smoke"
    assert tags["device_id"] == device_id
    assert tags["building"] == building
    assert _unescape_string(fields["note"]) == note.replace("\n", "\\n").replace("\r", "\\r")
    assert fields[key] == "1i"
    assert fields["v"] == "2.5"
    assert timestamp == BASE_MS


# -- error translation, against a real HTTP server that answers a chosen status --------------------


@dataclass
class _Recorded:
    """Answers every write with `status` and keeps each request body it was sent."""

    status: int
    bodies: list[bytes] = field(default_factory=list)
    url: str = ""


class _StatusHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = state_of(self, _Recorded)
        server.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.send_response(server.status)
        if server.status == 204:
            self.end_headers()
            return
        body = b'{"code":"stub","message":"stub answer"}'
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def _recording_server(status: int, port: int = 0) -> Iterator[_Recorded]:
    recorded = _Recorded(status)
    with HttpReceiver(_StatusHandler, recorded, port=port, name=f"status-{status}") as server:
        recorded.url = server.base_url
        yield recorded


@contextlib.contextmanager
def _status_server(status: int) -> Iterator[str]:
    with _recording_server(status) as server:
        yield server.url


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, SinkRejected),
        (401, SinkUnavailable),
        (403, SinkUnavailable),
        (404, SinkRejected),
        (413, SinkRejected),
        (422, SinkRejected),
        (408, SinkUnavailable),
        (429, SinkUnavailable),
        (500, SinkUnavailable),
        (502, SinkUnavailable),
        (503, SinkUnavailable),
    ],
)
async def test_http_status_translation(status: int, error: type[Exception]) -> None:
    with _status_server(status) as url:
        sink = InfluxSink(url, org="o", bucket="b", token=TOKEN)
        try:
            with pytest.raises(error, match=rf"answered {status}") as caught:
                await sink.write_readings([_reading({"v": 1})])
        finally:
            await sink.close()
    assert isinstance(caught.value.__cause__, ApiException)
    assert TOKEN not in str(caught.value)


async def test_nothing_listening_is_unavailable_and_the_batch_is_written_once_it_listens() -> None:
    port = free_port()
    sink = InfluxSink(f"http://127.0.0.1:{port}", org="o", bucket="b", token=TOKEN)
    batch = [_event()]
    try:
        # connection refused: SinkUnavailable (retry), never SinkRejected (which dead-letters)
        with pytest.raises(SinkUnavailable) as caught:
            await sink.write_events(batch)
        assert not isinstance(caught.value, SinkRejected)
        assert isinstance(caught.value.__cause__, urllib3.exceptions.HTTPError)
        assert TOKEN not in str(caught.value)
        # nothing was lost: the same batch, retried once the server listens, arrives whole
        with _recording_server(204, port) as server:
            await sink.write_events(batch)
        assert server.bodies == [event_line(batch[0]).encode()]
    finally:
        await sink.close()


async def test_an_empty_batch_sends_nothing() -> None:
    # a server that would answer 500 to any request: a write that sent one would raise
    with _recording_server(500) as server:
        sink = InfluxSink(server.url, org="o", bucket="b", token=None)
        try:
            await sink.write_readings([])  # no request: no 500, no SinkUnavailable
            await sink.write_events([])
        finally:
            await sink.close()
    assert server.bodies == []


async def test_an_unwritable_reading_is_rejected_before_sending() -> None:
    sink = InfluxSink(f"http://127.0.0.1:{free_port()}", org="o", bucket="b", token=None)
    try:
        with pytest.raises(SinkRejected, match="not finite"):
            await sink.write_readings([_reading({"v": math.nan})])
    finally:
        await sink.close()


# -- against a real VictoriaMetrics --------------------------------------------------------------


@pytest.fixture
def device_id() -> str:
    """A device id of this test's own: tests share the session's VictoriaMetrics."""
    return f"dev-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def sink(victoria_metrics: VictoriaMetricsServer) -> AsyncIterator[InfluxSink]:
    tsdb = InfluxSink(victoria_metrics.url, org="community-edge", bucket="edge", token=TOKEN)
    yield tsdb
    await tsdb.close()


def _batch(device: DeviceRef, n: int) -> list[Reading]:
    return [
        _reading(
            {"temperature": 20.0 + i / 10, "battery": 90 - i, "alarm": i % 2 == 0},
            at=BASE + timedelta(milliseconds=i),  # one ms apart: each is its own point
            device=device,
        )
        for i in range(n)
    ]


async def test_readings_read_back_exactly(
    sink: InfluxSink, victoria_metrics: VictoriaMetricsServer, device_id: str
) -> None:
    device = _device(device_id, category="air_quality", building="Block A, East=1")
    at = [BASE, BASE + timedelta(milliseconds=1), BASE + timedelta(days=1, microseconds=500)]
    readings = [
        _reading({"co2": 612.25, "pm25": 7, "ok": True, "state": "normal"}, at[0], device),
        _reading({"co2": 0.1, "pm25": -3, "ok": False, "state": "high"}, at[1], device),
        _reading({"co2": 1e-7, "pm25": 2**52, "ok": True, "state": "Not An Enum"}, at[2], device),
    ]
    await sink.write_readings(readings)

    series = {s.name: s for s in victoria_metrics.export(f'{{device_id="{device_id}"}}')}
    ms = [BASE_MS, BASE_MS + 1, BASE_MS + 86_400_000]
    assert series["air_quality_co2"].samples() == [(ms[0], 612.25), (ms[1], 0.1), (ms[2], 1e-7)]
    assert series["air_quality_pm25"].samples() == [(ms[0], 7.0), (ms[1], -3.0), (ms[2], 2.0**52)]
    assert series["air_quality_ok"].samples() == [(ms[0], 1.0), (ms[1], 0.0), (ms[2], 1.0)]
    assert series["air_quality_state_normal"].samples() == [(ms[0], 1.0)]
    assert series["air_quality_state_high"].samples() == [(ms[1], 1.0)]
    # VictoriaMetrics 1.79 keeps no strings: it stores a string field as the number 0.
    assert series["air_quality_state"].samples() == [(ms[0], 0.0), (ms[1], 0.0), (ms[2], 0.0)]
    assert set(series) == {
        "air_quality_co2",
        "air_quality_pm25",
        "air_quality_ok",
        "air_quality_state",
        "air_quality_state_normal",
        "air_quality_state_high",
    }
    for each in series.values():  # org and bucket add no label; the escaped tags read back
        assert each.labels == {
            "building": "Block A, East=1",
            "community": "c1",
            "device_id": device_id,
            "model": "acme-smoke-2",
            "unit": "3-201",
        }


async def test_strings_with_quotes_backslashes_and_line_breaks_keep_their_line(
    sink: InfluxSink, victoria_metrics: VictoriaMetricsServer, device_id: str
) -> None:
    # VictoriaMetrics skips a line it cannot parse and still answers 204: only reading the
    # numeric field back shows that the line was intact.
    evil = 'say "hi" \\ C:\\dir\\\n' + f'evil,device_id={device_id} v=1 0\r\n"'
    await sink.write_readings([_reading({"note": evil, "v": 4.5}, device=_device(device_id))])
    series = {s.name: s for s in victoria_metrics.export(f'{{device_id="{device_id}"}}')}
    assert series["smoke_v"].samples() == [(BASE_MS, 4.5)]
    assert set(series) == {"smoke_v", "smoke_note"}


async def test_alert_events_read_back(
    sink: InfluxSink, victoria_metrics: VictoriaMetricsServer, device_id: str
) -> None:
    events = [
        _event(device_id=device_id, event_id="e1", kind=AlertEventKind.OPENED, count=1),
        _event(
            device_id=device_id,
            event_id="e2",
            kind=AlertEventKind.ACKNOWLEDGED,
            status=AlertStatus.ACKNOWLEDGED,
            count=4,
            at=BASE + timedelta(seconds=30),
        ),
    ]
    await sink.write_events(events)
    series = {
        (s.name, s.metric["kind"]): s
        for s in victoria_metrics.export(f'{{__name__=~"alert_event_.*",device_id="{device_id}"}}')
    }
    assert series["alert_event_count", "opened"].samples() == [(BASE_MS, 1.0)]
    assert series["alert_event_count", "acknowledged"].samples() == [(BASE_MS + 30_000, 4.0)]
    assert series["alert_event_status_code", "acknowledged"].samples() == [(BASE_MS + 30_000, 1.0)]
    assert series["alert_event_status_code", "opened"].labels == {
        "building": "b7",
        "category": "smoke",
        "community": "c1",
        "device_id": device_id,
        "kind": "opened",
        "model": "acme-smoke-2",
        "rule": "smoke-alarm",
        "severity": "critical",
    }


async def test_a_batch_written_twice_is_stored_once(
    sink: InfluxSink, victoria_metrics: VictoriaMetricsServer, device_id: str
) -> None:
    batch = _batch(_device(device_id), 50)
    await sink.write_readings(batch)
    await sink.write_readings(batch)  # the outbox's retry after a lost 2xx
    await sink.write_readings(batch[10:20])
    match = f'{{__name__="smoke_temperature",device_id="{device_id}"}}'
    [series] = victoria_metrics.export(match)
    assert series.timestamps == [BASE_MS + i for i in range(50)]
    assert series.values == [20.0 + i / 10 for i in range(50)]
    assert victoria_metrics.count_samples(f'{{device_id="{device_id}"}}') == 3 * 50


async def test_a_batch_written_twice_is_stored_once_after_a_restart(
    victoria_metrics_factory: VictoriaMetricsFactory, device_id: str
) -> None:
    server = victoria_metrics_factory()
    sink = InfluxSink(server.url, org="o", bucket="b", token=None)
    try:
        batch = _batch(_device(device_id), 20)
        await sink.write_readings(batch)
        server.restart()  # the first copy is on disk now; dedup must hold across parts
        await sink.write_readings(batch)
        server.restart()
        assert server.count_samples(f'{{device_id="{device_id}"}}') == 3 * 20
    finally:
        await sink.close()


async def test_a_killed_server_is_unavailable_then_recovers(
    victoria_metrics_factory: VictoriaMetricsFactory, device_id: str
) -> None:
    server = victoria_metrics_factory()
    sink = InfluxSink(server.url, org="o", bucket="b", token=TOKEN, timeout_s=2.0)
    try:
        batch = _batch(_device(device_id), 5)
        await sink.write_readings(batch)  # the pool now holds a kept-alive connection
        server.kill()
        with pytest.raises(SinkUnavailable) as caught:
            await sink.write_readings(batch)
        assert isinstance(caught.value.__cause__, urllib3.exceptions.HTTPError | OSError)
        assert TOKEN not in str(caught.value)
        server.start()  # same port, same data
        await sink.write_readings(batch)
        assert server.count_samples(f'{{__name__="smoke_battery",device_id="{device_id}"}}') == 5
    finally:
        await sink.close()


async def test_a_hung_server_times_out_as_unavailable(
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    server = victoria_metrics_factory()
    sink = InfluxSink(server.url, org="o", bucket="b", token=None, timeout_s=0.5)
    os.kill(server.pid, signal.SIGSTOP)  # the kernel still accepts; nobody answers
    try:
        with pytest.raises(SinkUnavailable) as caught:
            await sink.write_readings([_reading({"v": 1})])
        assert isinstance(caught.value.__cause__, urllib3.exceptions.ReadTimeoutError)
    finally:
        os.kill(server.pid, signal.SIGCONT)
        await sink.close()


async def test_a_full_disk_is_unavailable(
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    # Read-only storage (less free space than required) answers 503.
    server = victoria_metrics_factory(extra_args=["-storage.minFreeDiskSpaceBytes=1e18"])
    sink = InfluxSink(server.url, org="o", bucket="b", token=None)
    try:
        with pytest.raises(SinkUnavailable, match=r"answered 503.*read-only"):
            await sink.write_readings([_reading({"v": 1})])
    finally:
        await sink.close()


async def test_a_line_over_the_server_limit_is_rejected(
    sink: InfluxSink, victoria_metrics: VictoriaMetricsServer, device_id: str
) -> None:
    # VictoriaMetrics answers 4xx to line protocol only for a request it cannot read: a line over
    # -influx.maxLineSize (256 KiB), a bad gzip body, an unknown path or failed authentication.
    device = _device(device_id)
    before = _reading({"v": 1}, at=BASE, device=device)
    huge = _reading(
        {"v": 2, "blob": "x" * 1_000_000}, at=BASE + timedelta(seconds=1), device=device
    )
    after = _reading({"v": 3}, at=BASE + timedelta(seconds=2), device=device)
    with pytest.raises(SinkRejected, match=r"answered 400.*too long line"):
        await sink.write_readings([before, huge, after])
    # The 400 comes after the lines before the bad one were stored: a rejected batch may be
    # partly written, which is harmless as every point is idempotent.
    [series] = victoria_metrics.export(f'{{__name__="smoke_v",device_id="{device_id}"}}')
    assert series.samples() == [(BASE_MS, 1.0)]


async def test_failed_authentication_is_retried_not_dropped(
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    server = victoria_metrics_factory(
        extra_args=["-httpAuth.username=edge", "-httpAuth.password=right"]
    )
    sink = InfluxSink(server.url, org="o", bucket="b", token=TOKEN)
    try:
        with pytest.raises(SinkUnavailable, match="answered 401") as caught:
            await sink.write_readings([_reading({"v": 1})])
        assert TOKEN not in str(caught.value)
    finally:
        await sink.close()


def test_victoria_metrics_answers_204_to_lines_it_drops(
    victoria_metrics: VictoriaMetricsServer, device_id: str
) -> None:
    # Malformed lines, a missing precision and out-of-range timestamps are skipped with only a
    # log line: the sink can never learn of them, so the builders must be right.
    lines = [
        f"smoke,device_id={device_id} v=1 12x",  # bad timestamp
        f"smoke,device_id={device_id} 1767254400000",  # no field
        f'smoke,device_id={device_id} s="open 1767254400000',  # unterminated string
        f"smoke,device_id={device_id} v=1 7258118400000",  # 2200: over 2 days ahead of now
    ]
    with httpx.Client(base_url=victoria_metrics.url) as client:
        for line in lines:
            response = client.post("/api/v2/write", params={"precision": "ms"}, content=line)
            assert response.status_code == 204, line
    assert victoria_metrics.export(f'{{device_id="{device_id}"}}') == []


async def test_the_store_is_checked_for_deduplication_before_the_first_write(
    sink: InfluxSink, device_id: str
) -> None:
    assert sink.store_problem is None
    await sink.write_readings(_batch(_device(device_id), 1))
    assert sink.store_problem is None  # the test servers run with -dedup.minScrapeInterval=1ms


@pytest.mark.parametrize(
    ("dedup", "problem"),
    [
        (None, "runs without -dedup.minScrapeInterval"),  # VictoriaMetrics' default: off
        ("0s", "runs without -dedup.minScrapeInterval"),
        ("30s", "keeps one sample per series per 30s"),
    ],
)
async def test_victoria_metrics_without_exact_deduplication_is_reported(
    device_id: str, dedup: str | None, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = VictoriaMetricsServer(dedup=dedup)
    server.start()
    sink = InfluxSink(server.url, org="o", bucket="b", token=None)
    try:
        batch = _batch(_device(device_id), 10)
        await sink.write_readings(batch)
        await sink.write_readings(batch)  # a retry after a lost 2xx
        assert sink.store_problem is not None
        assert problem in sink.store_problem
        assert problem in caplog.text
        if dedup != "30s":  # why it matters: the retried batch is there twice
            server.force_flush()
            assert server.count_samples(f'{{device_id="{device_id}"}}') == 2 * 3 * 10
    finally:
        await sink.close()
        server.stop()
