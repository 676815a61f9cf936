"""The one retry-or-set-aside decision, pinned as a table, and each HTTP sink (TSDB, central alert
API, webhook, WeCom and DingTalk robots) shown to follow it against a real local HTTP server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from zoneinfo import ZoneInfo

import pytest

from edge.clock import FakeClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, Severity
from edge.outbox import Sink
from edge.sinks import (
    AlertApiSink,
    DingtalkSink,
    InfluxSink,
    NoticeFormat,
    RateWindow,
    WebhookSink,
    WecomSink,
    refusal,
)
from edge.sinks.refusal import RETRIED_4XX
from tests.http_receiver import HttpReceiver

# status -> what every HTTP sink makes of it; the same for all five, none differs today
TABLE: dict[int, type[Exception]] = {
    301: SinkUnavailable,  # redirects are not followed: a POST must not silently go elsewhere
    302: SinkUnavailable,
    400: SinkRejected,
    401: SinkUnavailable,  # a wrong token or secret must not drop alerts
    403: SinkUnavailable,
    404: SinkRejected,
    408: SinkUnavailable,
    409: SinkRejected,
    413: SinkRejected,
    422: SinkRejected,
    429: SinkUnavailable,
    500: SinkUnavailable,
    502: SinkUnavailable,
    503: SinkUnavailable,
    504: SinkUnavailable,
}


@pytest.mark.parametrize(("status", "expected"), TABLE.items())
def test_the_table(status: int, expected: type[Exception]) -> None:
    error = refusal(status, f"answered {status}")
    assert type(error) is expected
    assert str(error) == f"answered {status}"


def test_only_four_client_errors_are_retried() -> None:
    retried = {s for s in range(400, 500) if isinstance(refusal(s, ""), SinkUnavailable)}
    assert retried == set(RETRIED_4XX) == {401, 403, 408, 429}


class _Answer(BaseHTTPRequestHandler):
    status = 500

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error": "no"}'
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if 300 <= type(self).status < 400:
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with HttpReceiver(_Answer, None) as server:
        yield server.base_url


NOW = datetime.now(UTC).replace(microsecond=0)


def _event() -> AlertEvent:
    alert = Alert(
        id="alert-1",
        key="sos|sos-1",
        rule="sos",
        summary="Emergency button pressed",
        severity=Severity.CRITICAL,
        status=AlertStatus.ACTIVE,
        device_id="sos-1",
        model="tuya-sos-button",
        category="sos",
        community="c1",
        building="b1",
        unit="3-201",
        opened_at=NOW,
        updated_at=NOW,
        last_seen_at=NOW,
    )
    return AlertEvent(id="evt-1", kind=AlertEventKind.OPENED, at=NOW, actor="rule", alert=alert)


@pytest.fixture(params=["tsdb", "alert-api", "webhook", "wecom", "dingtalk"])
async def sink(request: pytest.FixtureRequest, server: str) -> AsyncIterator[Sink]:
    clock = FakeClock(NOW)
    notices = NoticeFormat(ZoneInfo("Asia/Shanghai"))
    built: Sink
    match request.param:
        case "tsdb":
            built = InfluxSink(server, "org", "bucket", "token", timeout_s=5)
        case "alert-api":
            built = AlertApiSink("central", server, "token", timeout_s=5)
        case "webhook":
            built = WebhookSink("hook", server + "/hook", "secret", 5, clock=clock)
        case "wecom":
            rate = RateWindow(1000, 60.0, clock)
            built = WecomSink("wecom", "key", notices=notices, rate=rate, base_url=server)
        case _:
            rate = RateWindow(1000, 60.0, clock)
            built = DingtalkSink("ding", "token", notices=notices, rate=rate, base_url=server)
    yield built
    await built.close()


@pytest.mark.parametrize(("status", "expected"), TABLE.items())
async def test_every_http_sink_decides_by_the_table(
    sink: Sink, status: int, expected: type[Exception]
) -> None:
    _Answer.status = status
    with pytest.raises(expected) as raised:
        await asyncio.wait_for(sink.write_events([_event()]), 30)
    assert type(raised.value) is expected  # not a subclass standing in for the other
    assert str(status) in str(raised.value)
