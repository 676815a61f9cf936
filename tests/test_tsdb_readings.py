"""Reading readings back from the time-series server (gateway.tsdb_readings): enum states put
back from their flags, label values quoted, and a server that does not answer is an error that
says where. Against a real VictoriaMetrics in tests/test_console_tsdb_browser.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import pytest

from edge.model import FieldValue
from gateway.tsdb_readings import TsdbReadings, TsdbUnavailable, _put_back_states, _quoted
from tests.http_receiver import HttpReceiver
from tests.servers import free_port


def test_an_enum_field_is_put_back_from_its_flag() -> None:
    points: dict[int, dict[str, FieldValue]] = {
        1: {"action": 0, "action_emergency": 1, "battery": 89},
        2: {"battery": 90, "battery_low": 0},
        3: {"action": 0, "battery": 91},  # free text: no flag, so no value
    }
    _put_back_states(points)
    assert points == {
        1: {"action": "emergency", "battery": 89},
        2: {"battery": 90, "battery_low": 0},  # a bool that was false stays a number
        3: {"battery": 91},
    }


def test_a_number_is_not_taken_for_a_string() -> None:
    points: dict[int, dict[str, FieldValue]] = {1: {"door": 1, "door_open": 1}, 2: {"door": 0}}
    _put_back_states(points)
    assert points == {1: {"door": 1, "door_open": 1}, 2: {"door": 0}}


def test_label_values_are_quoted() -> None:
    assert _quoted('a"b\\c') == '"a\\"b\\\\c"'


async def test_a_server_that_does_not_answer_says_where() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    reader = TsdbReadings(url, token="secret", timeout_s=1.0)
    assert "secret" not in repr(reader)
    now = datetime.now(UTC)
    with pytest.raises(TsdbUnavailable, match=url):
        await reader.query(
            device_id="d1",
            community="c",
            category="sos",
            since=now - timedelta(minutes=5),
            until=now,
            limit=10,
        )


async def test_a_server_without_the_export_api_is_said_to_be_no_victoria_metrics() -> None:
    """InfluxDB takes writes but has no /api/v1/export: the page says why there is no chart."""

    class _NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with HttpReceiver(_NotFound, None) as server:
        reader = TsdbReadings(server.base_url)
        now = datetime.now(UTC)
        with pytest.raises(TsdbUnavailable, match="VictoriaMetrics only"):
            await reader.query(
                device_id="d1", community="c", category="sos", since=now, until=now, limit=1
            )
